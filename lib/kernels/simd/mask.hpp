// Lane mask of an int32 or uint8 comparison as an integer (bit l = lane l), per ISA: xsimd 8.1
// has no movemask. Include only from per-ISA translation units (a family's *_inl.hpp).
#pragma once

#include <cstdint>

#include <immintrin.h>
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
};

}  // namespace sparq::kernels
