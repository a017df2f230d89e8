// Lane mask of an int32 or uint8 comparison as an integer (bit l = lane l), per ISA: xsimd 8.1
// has no movemask. Include only from per-ISA translation units (a family's *_inl.hpp).
// below / in_range compare unsigned bytes with intrinsics: xsimd's uint8 comparisons on
// AVX2 forward to SSE halves, which would put SSE-level xsimd symbols compiled with AVX2
// flags into the avx2 objects (tools/check-odr.sh).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <xsimd/xsimd.hpp>

namespace sparq::kernels {

template <class Arch>
struct LaneMask;

#if XSIMD_WITH_AVX512BW
template <>
struct LaneMask<xsimd::avx512bw> {
  static std::uint32_t bits(xsimd::batch_bool<std::int32_t, xsimd::avx512bw> m) noexcept {
    return static_cast<__mmask16>(m);
  }
  static std::uint64_t bits(xsimd::batch_bool<std::uint8_t, xsimd::avx512bw> m) noexcept {
    return static_cast<__mmask64>(m);
  }
  using U8 = xsimd::batch<std::uint8_t, xsimd::avx512bw>;
  static std::uint64_t below(U8 b, U8 lo) noexcept { return _mm512_cmplt_epu8_mask(b, lo); }
  static std::uint64_t in_range(U8 b, U8 lo, U8 hi) noexcept {
    return _mm512_cmpge_epu8_mask(b, lo) & _mm512_cmple_epu8_mask(b, hi);
  }
};
#endif
#if XSIMD_WITH_FMA3_AVX2
template <>
struct LaneMask<xsimd::fma3<xsimd::avx2>> {
  static std::uint32_t bits(xsimd::batch_bool<std::int32_t, xsimd::fma3<xsimd::avx2>> m) noexcept {
    return std::uint32_t(_mm256_movemask_ps(_mm256_castsi256_ps(static_cast<__m256i>(m))));
  }
  static std::uint64_t bits(xsimd::batch_bool<std::uint8_t, xsimd::fma3<xsimd::avx2>> m) noexcept {
    return std::uint32_t(_mm256_movemask_epi8(static_cast<__m256i>(m)));
  }
  using U8 = xsimd::batch<std::uint8_t, xsimd::fma3<xsimd::avx2>>;
  // b >= x exactly where max(b, x) == b; b <= x where min(b, x) == b.
  static std::uint64_t at_least(__m256i b, __m256i x) noexcept {
    return std::uint32_t(_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_max_epu8(b, x), b)));
  }
  static std::uint64_t at_most(__m256i b, __m256i x) noexcept {
    return std::uint32_t(_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_min_epu8(b, x), b)));
  }
  static std::uint64_t below(U8 b, U8 lo) noexcept { return ~at_least(b, lo) & 0xffffffffu; }
  static std::uint64_t in_range(U8 b, U8 lo, U8 hi) noexcept { return at_least(b, lo) & at_most(b, hi); }
};
#endif
template <>
struct LaneMask<xsimd::sse2> {
  static std::uint32_t bits(xsimd::batch_bool<std::int32_t, xsimd::sse2> m) noexcept {
    return std::uint32_t(_mm_movemask_ps(_mm_castsi128_ps(static_cast<__m128i>(m))));
  }
  static std::uint64_t bits(xsimd::batch_bool<std::uint8_t, xsimd::sse2> m) noexcept {
    return std::uint32_t(_mm_movemask_epi8(static_cast<__m128i>(m)));
  }
  using U8 = xsimd::batch<std::uint8_t, xsimd::sse2>;
  static std::uint64_t at_least(__m128i b, __m128i x) noexcept {
    return std::uint32_t(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(b, x), b)));
  }
  static std::uint64_t at_most(__m128i b, __m128i x) noexcept {
    return std::uint32_t(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(b, x), b)));
  }
  static std::uint64_t below(U8 b, U8 lo) noexcept { return ~at_least(b, lo) & 0xffffu; }
  static std::uint64_t in_range(U8 b, U8 lo, U8 hi) noexcept { return at_least(b, lo) & at_most(b, hi); }
};

}  // namespace sparq::kernels
