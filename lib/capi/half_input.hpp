// 16-bit (IEEE binary16, bfloat16) queries and outputs for the Python binding: q is
// widened to f32 (exact) and f32 results narrowed once. Appends take 16-bit keys and
// values directly (sparq::Rows), with no widening.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sparq::capi {

enum class Half : std::uint8_t { f16, bf16 };

// out[i] = in[i] widened to f32 (exact), for i < n.
void widen(Half type, const std::uint16_t* in, float* out, std::size_t n) noexcept;
// out[i] = in[i] rounded to nearest even (NaN stays NaN, overflow to Inf), for i < n.
void narrow(Half type, const float* in, std::uint16_t* out, std::size_t n) noexcept;

}  // namespace sparq::capi
