#pragma once

// Branch-free conversions between fp32 and the 16-bit formats, written so
// that compilers vectorise them (selects, no calls). Round to nearest even;
// nan stays a quiet nan; overflow goes to inf. Checked exhaustively against
// the compiler's _Float16 and a bit-exact bf16 reference in tests.
//
// Everything here has internal linkage (anonymous namespace): the file is
// compiled with different ISA flags per translation unit, and a shared
// inline definition would let the linker mix them.
#include <cstdint>
#include <cstring>

namespace zshard::kernels::cpu {
namespace {

struct Bf16 {
  uint16_t bits;
};
struct Fp16 {
  uint16_t bits;
};

inline float bitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint32_t floatToBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float toFloat(float x) {
  return x;
}
inline float toFloat(Bf16 x) {
  return bitsToFloat(uint32_t(x.bits) << 16);
}

inline float toFloat(Fp16 x) {
  const uint32_t h = x.bits;
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t magnitude = h & 0x7fffu;
  // Normal and subnormal halves: shift into a float and rescale by 2^112.
  const uint32_t finite = floatToBits(bitsToFloat(magnitude << 13) * 0x1p112f);
  const uint32_t special = (magnitude << 13) | 0x7f800000u;  // inf / nan
  return bitsToFloat((magnitude >= 0x7c00u ? special : finite) | sign);
}

template <typename T>
T fromFloat(float f);

template <>
inline float fromFloat<float>(float f) {
  return f;
}

template <>
inline Bf16 fromFloat<Bf16>(float f) {
  const uint32_t u = floatToBits(f);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
  return Bf16{static_cast<uint16_t>(nan ? ((u >> 16) | 0x40u) : rounded)};
}

template <>
inline Fp16 fromFloat<Fp16>(float f) {
  const uint32_t u = floatToBits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7fffffffu;
  // |f| >= 65536: inf, or nan for nan inputs.
  const uint32_t overflow = a > 0x7f800000u ? 0x7e00u : 0x7c00u;
  // |f| < 2^-14: adding 0.5 aligns the half subnormal's bits (RNE by the FPU).
  const uint32_t subnormal = floatToBits(bitsToFloat(a) + 0.5f) - 0x3f000000u;
  // Normal: rebias the exponent and round the 13 dropped bits to even.
  const uint32_t normal = (a + 0xc8000fffu + ((a >> 13) & 1u)) >> 13;
  const uint32_t h = a >= 0x47800000u ? overflow : (a < 0x38800000u ? subnormal : normal);
  return Fp16{static_cast<uint16_t>(h | sign)};
}

// Marks "no output" in kernels with an optional model copy.
struct NoStore {};

}  // namespace
}  // namespace zshard::kernels::cpu
