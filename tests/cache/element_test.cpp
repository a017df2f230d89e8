// Scalar f16/bf16 conversion: exact on every representable value, round to nearest
// even, and the special values.
#include "cache/element.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace sparq::element {
namespace {

TEST(ElementTest, EveryHalfAndBfloatPatternRoundTrips) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f16 = f16_to_f32(std::uint16_t(h));
    const float b16 = bf16_to_f32(std::uint16_t(h));
    if (std::isnan(f16))
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f16)))) << std::hex << h;
    else
      EXPECT_EQ(f32_to_f16(f16), h) << std::hex << h;
    if (std::isnan(b16))
      EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(b16)))) << std::hex << h;
    else
      EXPECT_EQ(f32_to_bf16(b16), h) << std::hex << h;
  }
}

TEST(ElementTest, KnownValues) {
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xc040), -3.0f);
}

TEST(ElementTest, RoundsToNearestEven) {
  // 1 + 2^-11 lies halfway between f16 1.0 and 1 + 2^-10: ties to even (1.0).
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3c01);
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  // Overflow to infinity, underflow through subnormals to zero.
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie -> even (0)
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25) * 1.5f), 0x0001);
  EXPECT_EQ(f32_to_f16(-std::ldexp(1.0f, -14) * (1023.5f / 1024.0f)), 0x8400);  // rounds up to the smallest normal
}

}  // namespace
}  // namespace sparq::element
