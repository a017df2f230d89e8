// Scalar conversion between f32 and IEEE binary16 / bfloat16: exact widening, narrowing
// rounded to nearest even (as torch's .to() does). The one scalar conversion of the
// library and the tools; SIMD kernels have their own per-ISA conversion, tested against it.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace sparq::half {

[[nodiscard]] inline float bf16_to_f32(std::uint16_t h) noexcept {
  return std::bit_cast<float>(std::uint32_t(h) << 16);
}

[[nodiscard]] inline std::uint16_t f32_to_bf16(float f) noexcept {
  std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);                                              // round to nearest even
  return std::uint16_t(u >> 16);
}

[[nodiscard]] inline float f16_to_f32(std::uint16_t h) noexcept {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  const std::uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (man << 13));
  if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112) << 23) | (man << 13));
  // Subnormal or zero: man * 2^-24, exact in f32.
  const float mag = float(man) * 0x1p-24f;
  return sign ? -mag : mag;
}

[[nodiscard]] inline std::uint16_t f32_to_f16(float f) noexcept {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  const std::uint16_t sign = std::uint16_t((u >> 16) & 0x8000u);
  const std::uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;   // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65536: Inf
  if (abs >= 0x38800000u) {                       // normal f16 range (>= 2^-14)
    const std::uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
    return sign | std::uint16_t((rounded - (112u << 23)) >> 13);
  }
  // Subnormal f16: value / 2^-24 (exact in f32), rounded to nearest even by the default
  // rounding mode. A result of 1024 is the encoding of the smallest normal, as it should be.
  return sign | std::uint16_t(std::nearbyint(std::bit_cast<float>(abs) * 0x1p24f));
}

// Element i of a row of storage type t, widened to f32.

}  // namespace sparq::half
