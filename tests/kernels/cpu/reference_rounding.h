#pragma once

// Rounding references for tests, independent of kernels/cpu/element.h:
// fp16 through the compiler's _Float16, bf16 by picking the nearer of the
// two bf16 neighbours in double (ties to even, the exponent unbounded).
#include <cmath>
#include <cstdint>
#include <cstring>

namespace zshard::testing {

inline float bf16BitsToFloat(uint16_t bits) {
  const uint32_t u = uint32_t(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t bf16Nearest(float f) {
  if (std::isnan(f)) return 0x7fc0;
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t down = static_cast<uint16_t>(u >> 16);
  if ((u & 0xffffu) == 0) return down;
  const uint16_t up = static_cast<uint16_t>(down + 1);
  // Past the largest finite bf16 the next value is 2^128, not inf.
  const double up_value = std::isinf(bf16BitsToFloat(up)) ? std::copysign(std::ldexp(1.0, 128), f)
                                                          : double(bf16BitsToFloat(up));
  const double dd = std::fabs(double(f) - double(bf16BitsToFloat(down)));
  const double du = std::fabs(up_value - double(f));
  if (dd != du) return dd < du ? down : up;
  return (down & 1) ? up : down;
}

inline uint16_t fp16Nearest(float f) {
  const _Float16 h = static_cast<_Float16>(f);
  uint16_t bits;
  std::memcpy(&bits, &h, 2);
  return bits;
}

}  // namespace zshard::testing
