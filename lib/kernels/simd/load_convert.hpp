// Register-level helpers shared by the kernel families, all templated on the xsimd
// Arch (so each ISA's TU has its own symbols: no ODR merging across ISA flags):
//   load_as_f32<Arch>(const T* p)  one batch of f32 from storage type T (float, f16_t, bf16_t,
//                                  int8_t: the quantized d-major key copy)
//   exp2<Arch>(x)                  vectorized 2^x, 0 for x <= -127 (so -inf gives 0)
//   clamp_score<Arch>(x, limit)    x clamped to [-limit, limit], NaN kept
//   rank_score<Arch>(x, limit)     the same, NaN to -limit (ranks last)
//   load_bf16_pair<Arch>(p, e, o)  2W bf16 values as two batches in "pair order"
//   row_sums<Arch>(rows)           W batches -> one batch, lane i = sum of rows[i]
//   lane_max<Arch>(x, init)        smax of init and x's lanes, lane 0 first
// Include only from code compiled for one ISA (a family's *_inl.hpp).
#pragma once

#include <cstdint>
#include <type_traits>
#include <xsimd/xsimd.hpp>

#include "kernels/simd/scalar_ops.hpp"
#include "kernels/simd/storage.hpp"

namespace sparq::kernels {
// Default: xsimd's haddp (correct for SSE2 and AVX, see vector_ops_test).
template <class Arch>
struct RowSums {
  static xsimd::batch<float, Arch> sum(const xsimd::batch<float, Arch>* rows) noexcept { return xsimd::haddp(rows); }
};
}  // namespace sparq::kernels

#if XSIMD_WITH_AVX512BW
#include "kernels/simd/convert_avx512.hpp"
#include "kernels/simd/row_sums_avx512.hpp"
#endif
#if XSIMD_WITH_FMA3_AVX2 && defined(__F16C__)
#include "kernels/simd/convert_avx2.hpp"
#endif
#include "kernels/simd/convert_sse2.hpp"

namespace sparq::kernels {

template <class Arch>
using fbatch = xsimd::batch<float, Arch>;

template <class Arch>
inline fbatch<Arch> load_as_f32(const float* p) noexcept {
  return fbatch<Arch>::load_unaligned(p);
}
template <class Arch>
inline fbatch<Arch> load_as_f32(const f16_t* p) noexcept {
  return Convert<Arch>::f16(reinterpret_cast<const std::uint16_t*>(p));
}
template <class Arch>
inline fbatch<Arch> load_as_f32(const bf16_t* p) noexcept {
  return Convert<Arch>::bf16(reinterpret_cast<const std::uint16_t*>(p));
}
template <class Arch>
inline fbatch<Arch> load_as_f32(const std::int8_t* p) noexcept {
  return Convert<Arch>::i8(p);
}

// 2W bf16 values widened with one full-width load and two integer ops, no shuffle (the
// zero-extend of load_as_f32 is a shuffle, ~2x slower per element: 1.40 vs 2.05 cycles
// per 16 values converted and stored, AVX-512, Zen 5). The result is in "pair order":
// even = elements 0, 2, .., 2W-2; odd = elements 1, 3, .., 2W-1. Callers permute the
// other operand (q) and un-permute their accumulators (o) accordingly.
template <class Arch>
inline void load_bf16_pair(const bf16_t* p, fbatch<Arch>& even, fbatch<Arch>& odd) noexcept {
  using U = xsimd::batch<std::uint32_t, Arch>;
  const U x = U::load_unaligned(reinterpret_cast<const std::uint32_t*>(p));
  even = xsimd::bitwise_cast<fbatch<Arch>>(x << 16);
  odd = xsimd::bitwise_cast<fbatch<Arch>>(x & U(0xffff0000u));
}

template <class Arch>
inline fbatch<Arch> row_sums(const fbatch<Arch>* rows) noexcept {
  return RowSums<Arch>::sum(rows);
}

// Once per tile or chunk, not per vector: a store and W scalar maxima.
template <class Arch>
inline float lane_max(fbatch<Arch> x, float init) noexcept {
  alignas(64) float lanes[fbatch<Arch>::size];
  x.store_aligned(lanes);
  for (float v : lanes) init = smax(init, v);
  return init;
}

// 2^x. Range reduction x = n + r, |r| <= 1/2, then the degree-7 Taylor polynomial of
// 2^r (truncation error 5e-9, below f32 rounding), and 2^n built in the exponent field.
// x is clamped to [-127, 127]: n = -127 gives an exponent field of 0, i.e. exactly 0,
// which is what masked (-inf) scores must contribute. Measured against xsimd::exp2
// (which handles every special case with extra selects): see bench/dense_decode_bench.
template <class Arch>
inline fbatch<Arch> exp2_taylor(fbatch<Arch> r) noexcept {
  using B = fbatch<Arch>;
  // ln2^k / k!
  B p = B(1.5252733804059841e-05f);
  p = xsimd::fma(p, r, B(1.5403530393381606e-04f));
  p = xsimd::fma(p, r, B(1.3333558146428443e-03f));
  p = xsimd::fma(p, r, B(9.6181291076284772e-03f));
  p = xsimd::fma(p, r, B(5.5504108664821580e-02f));
  p = xsimd::fma(p, r, B(2.4022650695910071e-01f));
  p = xsimd::fma(p, r, B(6.9314718055994531e-01f));
  return xsimd::fma(p, r, B(1.0f));
}

template <class Arch>
inline fbatch<Arch> exp2(fbatch<Arch> x) noexcept {
  using B = fbatch<Arch>;
#if XSIMD_WITH_AVX512BW
  if constexpr (std::is_same_v<Arch, xsimd::avx512bw>) {
    // vscalefps builds p * 2^n in one op (the generic path takes four), and a zeroing
    // mask gives 0 for x <= -127 or NaN: softmax and SparQ's ranking run this once per
    // score (docs/performance.md, "Fewer vector ops per position").
    const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-127.0f), _CMP_GT_OQ);
    const __m512 xc = _mm512_min_ps(x, _mm512_set1_ps(127.0f));
    const __m512 n = _mm512_roundscale_ps(xc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const B p = exp2_taylor<Arch>(B(_mm512_sub_ps(xc, n)));
    return B(_mm512_maskz_scalef_ps(live, p, n));
  } else
#endif
  {
    using I = xsimd::batch<std::int32_t, Arch>;
    x = xsimd::min(xsimd::max(x, B(-127.0f)), B(127.0f));
    const B n = xsimd::nearbyint(x);
    const I bits = (xsimd::to_int(n) + I(127)) << 23;
    return exp2_taylor<Arch>(x - n) * xsimd::bitwise_cast<B>(bits);
  }
}

// x clamped to [-limit, limit]. x86 max and min return their second operand when either
// is NaN (on every ISA here: tests/kernels/vector_ops_test.cpp), so the operand order
// decides: clamp_score keeps a NaN lane NaN (for the caller to flag), rank_score makes
// it -limit.
template <class Arch>
inline fbatch<Arch> clamp_score(fbatch<Arch> x, float limit) noexcept {
  using B = fbatch<Arch>;
  return xsimd::min(B(limit), xsimd::max(B(-limit), x));
}
template <class Arch>
inline fbatch<Arch> rank_score(fbatch<Arch> x, float limit) noexcept {
  using B = fbatch<Arch>;
  return xsimd::min(xsimd::max(x, B(-limit)), B(limit));
}

}  // namespace sparq::kernels
