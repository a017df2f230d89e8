// int8 -> f32 widening of one register's worth (W values for W f32 lanes), per ISA.
// Included only by matvec_kernels_inl.hpp; each specialization is used only in the
// translation unit built for its ISA (symbols differ per Arch: no ODR merging).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <xsimd/xsimd.hpp>

namespace sparq::e2e {

template <class Arch>
struct WidenI8;

#if XSIMD_WITH_AVX512BW
template <>
struct WidenI8<xsimd::avx512bw> {
  // vpmovsxbd from memory + vcvtdq2ps: 16 values.
  static xsimd::batch<float, xsimd::avx512bw> load(const std::int8_t* p) noexcept {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
};
#endif

#if XSIMD_WITH_FMA3_AVX2
template <>
struct WidenI8<xsimd::fma3<xsimd::avx2>> {
  static xsimd::batch<float, xsimd::fma3<xsimd::avx2>> load(const std::int8_t* p) noexcept {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
};
#endif

template <>
struct WidenI8<xsimd::sse2> {
  // SSE2 has no pmovsx: put each byte in the top of a 32-bit lane, then shift right
  // arithmetically by 24.
  static xsimd::batch<float, xsimd::sse2> load(const std::int8_t* p) noexcept {
    std::int32_t bits;
    std::memcpy(&bits, p, 4);
    const __m128i b = _mm_cvtsi32_si128(bits);
    const __m128i w = _mm_unpacklo_epi8(b, b);
    const __m128i d = _mm_unpacklo_epi16(w, w);
    return _mm_cvtepi32_ps(_mm_srai_epi32(d, 24));
  }
};

}  // namespace sparq::e2e
