// f16/bf16 -> f32 widening for AVX2 (8 lanes). Included only through load_convert.hpp in
// TUs built with -mavx2 -mfma -mf16c; isa.cpp only selects this variant when the CPU has
// F16C.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <xsimd/xsimd.hpp>

namespace sparq::kernels {

template <class Arch>
struct Convert;

template <>
struct Convert<xsimd::fma3<xsimd::avx2>> {
  using batch = xsimd::batch<float, xsimd::fma3<xsimd::avx2>>;
  static batch bf16(const std::uint16_t* p) noexcept {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static batch f16(const std::uint16_t* p) noexcept {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static batch i8(const std::int8_t* p) noexcept {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
};

}  // namespace sparq::kernels
