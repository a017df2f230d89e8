// Scalar loads and stores of the storage types (f32, f16, bf16; int8 for the d-major
// copy), over common/half_float.hpp's conversions. Used by the cache (writes) and the
// reference (reads).
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/half_float.hpp"
#include "sparq/types.hpp"

namespace sparq::element {

using half::bf16_to_f32;
using half::f16_to_f32;
using half::f32_to_bf16;
using half::f32_to_f16;

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
