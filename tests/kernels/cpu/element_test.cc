// The branch-free conversions against independent references: the
// compiler's _Float16 for fp16, and a nearest-value search in double for bf16.
#include "kernels/cpu/element.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "tests/kernels/cpu/reference_rounding.h"

namespace zshard::kernels::cpu {
namespace {

bool sameOrBothNan(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || floatToBits(a) == floatToBits(b);
}

TEST(Element, Fp16ToFloatMatchesFloat16ForAllValues) {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    _Float16 h;
    const uint16_t b16 = static_cast<uint16_t>(bits);
    std::memcpy(&h, &b16, 2);
    ASSERT_TRUE(sameOrBothNan(toFloat(Fp16{b16}), static_cast<float>(h))) << std::hex << bits;
  }
}

TEST(Element, FloatToFp16MatchesFloat16) {
  std::mt19937 rng(3);
  auto check = [](float f) {
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t expect;
    std::memcpy(&expect, &h, 2);
    const uint16_t got = fromFloat<Fp16>(f).bits;
    if (std::isnan(f)) return ((got & 0x7c00) == 0x7c00) && (got & 0x3ff) != 0;
    return got == expect;
  };
  // Every float whose top 20 bits vary (all exponents, signs, rounding cases)...
  for (uint32_t top = 0; top < (1u << 20); ++top) {
    const uint32_t low = rng() & 0xfffu;
    for (uint32_t u :
         {top << 12, (top << 12) | 0x1000u - 1, (top << 12) | low, (top << 12) | 0x800u}) {
      ASSERT_TRUE(check(bitsToFloat(u))) << std::hex << u;
    }
  }
  // ...and exact ties around every half.
  for (uint32_t bits = 0; bits < 0x7c00; ++bits) {
    const float a = toFloat(Fp16{static_cast<uint16_t>(bits)});
    const float b = toFloat(Fp16{static_cast<uint16_t>(bits + 1)});
    ASSERT_TRUE(check((a + b) / 2)) << bits;
  }
}

TEST(Element, FloatToBf16RoundsToNearestEven) {
  std::mt19937 rng(5);
  for (int i = 0; i < 2000000; ++i) {
    const uint32_t u = rng();
    const float f = bitsToFloat(u);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(toFloat(fromFloat<Bf16>(f))));
      continue;
    }
    ASSERT_EQ(fromFloat<Bf16>(f).bits, zshard::testing::bf16Nearest(f)) << std::hex << u;
  }
  EXPECT_EQ(fromFloat<Bf16>(1.0f).bits, 0x3f80);
  EXPECT_EQ(toFloat(Bf16{0x3f80}), 1.0f);
}

}  // namespace
}  // namespace zshard::kernels::cpu
