// f16/bf16/int8 -> f32 widening at the x86-64 baseline (SSE2, 4 lanes, no F16C).
#pragma once

#include <emmintrin.h>

#include <cstdint>
#include <xsimd/xsimd.hpp>

namespace sparq::kernels {

template <class Arch>
struct Convert;

template <>
struct Convert<xsimd::sse2> {
  using batch = xsimd::batch<float, xsimd::sse2>;
  static __m128i load4(const std::uint16_t* p) noexcept { return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)); }
  // Interleaving zeros below each 16-bit value is the shift by 16.
  static batch bf16(const std::uint16_t* p) noexcept {
    return _mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), load4(p)));
  }
  // Without F16C: move exponent and mantissa into f32 position and rebias by multiplying
  // with 2^112, which is exact for normals and for subnormals alike; Inf and NaN (exponent
  // 31) get the all-ones f32 exponent instead, keeping the payload. Sign is OR-ed back.
  static batch f16(const std::uint16_t* p) noexcept {
    const __m128i h = _mm_unpacklo_epi16(load4(p), _mm_setzero_si128());
    const __m128i sign = _mm_slli_epi32(_mm_and_si128(h, _mm_set1_epi32(0x8000)), 16);
    const __m128i mag = _mm_slli_epi32(_mm_and_si128(h, _mm_set1_epi32(0x7fff)), 13);
    const __m128 scaled = _mm_mul_ps(_mm_castsi128_ps(mag), _mm_castsi128_ps(_mm_set1_epi32(0x77800000)));  // 2^112
    const __m128i is_special = _mm_cmpeq_epi32(_mm_and_si128(h, _mm_set1_epi32(0x7c00)), _mm_set1_epi32(0x7c00));
    const __m128 special = _mm_castsi128_ps(_mm_or_si128(mag, _mm_set1_epi32(0x7f800000)));
    const __m128 mask = _mm_castsi128_ps(is_special);
    const __m128 value = _mm_or_ps(_mm_and_ps(mask, special), _mm_andnot_ps(mask, scaled));
    return _mm_or_ps(value, _mm_castsi128_ps(sign));
  }
  // Each byte copied into the top of its 32-bit lane, then an arithmetic shift: the sign
  // extension that SSE2 lacks an instruction for.
  static batch i8(const std::int8_t* p) noexcept {
    std::int32_t w;
    __builtin_memcpy(&w, p, 4);
    __m128i x = _mm_cvtsi32_si128(w);
    x = _mm_unpacklo_epi8(x, x);
    x = _mm_unpacklo_epi16(x, x);
    return _mm_cvtepi32_ps(_mm_srai_epi32(x, 24));
  }
};

}  // namespace sparq::kernels
