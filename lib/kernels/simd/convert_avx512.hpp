// f16/bf16 -> f32 widening for AVX-512 (16 lanes). Included only through
// load_convert.hpp, and only in TUs built with the AVX-512 flags (XSIMD_WITH_AVX512BW).
// xsimd 8.1 has neither type, hence the intrinsics. F16C's vcvtph2ps is part of AVX-512F.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <xsimd/xsimd.hpp>

namespace sparq::kernels {

template <class Arch>
struct Convert;

template <>
struct Convert<xsimd::avx512bw> {
  using batch = xsimd::batch<float, xsimd::avx512bw>;
  // bf16 is the top half of an f32: zero-extend to 32 bits and shift left by 16.
  static batch bf16(const std::uint16_t* p) noexcept {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static batch f16(const std::uint16_t* p) noexcept {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static batch i8(const std::int8_t* p) noexcept {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
};

}  // namespace sparq::kernels
