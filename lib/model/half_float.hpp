// f16 and bf16 <-> f32 conversions for checkpoint files and cache rows (plain integer
// code, exact widening, narrowing rounded to nearest even as torch's .to() does).
#pragma once

#include <bit>
#include <cstdint>

namespace sparq::model {

[[nodiscard]] inline float bf16_to_f32(std::uint16_t h) noexcept {
  return std::bit_cast<float>(std::uint32_t{h} << 16);
}

[[nodiscard]] inline std::uint16_t f32_to_bf16(float f) noexcept {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((u >> 16) | 0x40);  // NaN stays NaN
  return std::uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

[[nodiscard]] inline float f16_to_f32(std::uint16_t h) noexcept {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));  // Inf, NaN
  if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
  // Zero or subnormal: mant * 2^-24, exact in f32.
  const float v = float(mant) * 5.9604644775390625e-8f;
  return sign ? -v : v;
}

[[nodiscard]] inline std::uint16_t f32_to_f16(float f) noexcept {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  const std::uint16_t sign = std::uint16_t((u >> 16) & 0x8000u);
  const std::uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00u;   // NaN
  if (a >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: Inf
  if (a >= 0x38800000u) {                       // normal f16
    const std::uint32_t r = a - 0x38000000u;    // rebias exponent 127 -> 15
    return sign | std::uint16_t((r + 0xfffu + ((r >> 13) & 1u)) >> 13);
  }
  // Subnormal f16 (or zero): round a * 2^24 to an integer, ties to even.
  const float scaled = std::bit_cast<float>(a) * 16777216.0f;  // exact
  const std::uint32_t i = std::uint32_t(scaled);
  const float frac = scaled - float(i);
  const std::uint32_t m = i + ((frac > 0.5f || (frac == 0.5f && (i & 1u))) ? 1u : 0u);
  return sign | std::uint16_t(m);
}

}  // namespace sparq::model
