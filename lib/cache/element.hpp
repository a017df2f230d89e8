// Scalar conversion between f32 and the storage types (IEEE binary16, bfloat16).
// Round-to-nearest-even in both directions' narrowing step; widening is exact. Used by
// the cache (writes) and the reference (reads); SIMD kernels have their own per-ISA
// conversion, tested against this.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sparq/types.hpp"

namespace sparq::element {

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
[[nodiscard]] inline float load(const std::byte* row, std::size_t i, DType t) noexcept {
  switch (t) {
    case DType::f32: {
      float v;
      std::memcpy(&v, row + 4 * i, 4);
      return v;
    }
    case DType::f16: {
      std::uint16_t h;
      std::memcpy(&h, row + 2 * i, 2);
      return f16_to_f32(h);
    }
    case DType::bf16: {
      std::uint16_t h;
      std::memcpy(&h, row + 2 * i, 2);
      return bf16_to_f32(h);
    }
  }
  return 0.0f;
}

// Stores v narrowed to storage type t at element i.
inline void store(std::byte* row, std::size_t i, DType t, float v) noexcept {
  switch (t) {
    case DType::f32:
      std::memcpy(row + 4 * i, &v, 4);
      return;
    case DType::f16: {
      const std::uint16_t h = f32_to_f16(v);
      std::memcpy(row + 2 * i, &h, 2);
      return;
    }
    case DType::bf16: {
      const std::uint16_t h = f32_to_bf16(v);
      std::memcpy(row + 2 * i, &h, 2);
      return;
    }
  }
}

// x in units of `scale` (an int8 d-major copy: scale = absmax / 127), rounded to nearest
// (ties to even) and clamped to [-127, 127]; 0 when scale is 0 (then so is x).
[[nodiscard]] inline std::int8_t to_int8(float x, float scale) noexcept {
  if (!(scale > 0.0f)) return 0;
  const double q = std::nearbyint(double(x) / double(scale));  // exact nearest multiple (float may tie wrong)
  return static_cast<std::int8_t>(q > 127.0 ? 127.0 : q < -127.0 ? -127.0 : q);
}

}  // namespace sparq::element
