// Store of an int32 batch whose lanes lie in [0, 255] as W bytes, per ISA: xsimd 8.1 has
// no narrowing conversion. Include only from per-ISA translation units (a family's
// *_inl.hpp), like mask.hpp.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <xsimd/xsimd.hpp>

namespace sparq::kernels {

template <class Arch>
struct StoreU8;

#if XSIMD_WITH_AVX512BW
template <>
struct StoreU8<xsimd::avx512bw> {
  static void store(xsimd::batch<std::int32_t, xsimd::avx512bw> x, std::uint8_t* dst) noexcept {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm512_cvtepi32_epi8(x));
  }
};
#endif
#if XSIMD_WITH_FMA3_AVX2
template <>
struct StoreU8<xsimd::fma3<xsimd::avx2>> {
  static void store(xsimd::batch<std::int32_t, xsimd::fma3<xsimd::avx2>> x, std::uint8_t* dst) noexcept {
    const __m256i v = x;
    const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), _mm_packus_epi16(w, w));
  }
};
#endif
template <>
struct StoreU8<xsimd::sse2> {
  static void store(xsimd::batch<std::int32_t, xsimd::sse2> x, std::uint8_t* dst) noexcept {
    const __m128i w = _mm_packs_epi32(x, x);  // lanes <= 255: signed saturation keeps them
    const int bytes = _mm_cvtsi128_si32(_mm_packus_epi16(w, w));
    __builtin_memcpy(dst, &bytes, 4);
  }
};

}  // namespace sparq::kernels
