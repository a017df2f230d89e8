// Definitions of the SparQ top-k passes (see sparq_topk.hpp). Include only from the
// per-ISA instantiation files.
#pragma once

#include <cstring>

#include "kernels/simd/load_convert.hpp"
#include "kernels/simd/mask.hpp"
#include "kernels/simd/scalar_ops.hpp"
#include "kernels/simd/store_u8.hpp"
#include "kernels/sparq/sparq_topk.hpp"

namespace sparq::kernels {
namespace sparq_topk_detail {
namespace {

template <class Arch>
using ibatch = xsimd::batch<std::int32_t, Arch>;

// Float bits -> int32 that orders like the float (finite values, ±inf); -0 ties with +0.
template <class Arch>
inline ibatch<Arch> key_of(fbatch<Arch> x) noexcept {
  using I = ibatch<Arch>;
  const I i = xsimd::bitwise_cast<I>(x + fbatch<Arch>(0.0f));
  // Negative floats get their magnitude bits flipped: i ^ (sign ? 0x7fffffff : 0), with
  // the mask from an arithmetic shift (xsimd 8.1's select on avx512bw int32 batches does
  // not compile at -O0).
  return i ^ ((i >> 31) & I(0x7fffffff));
}

// The ranking score c (exp mode: Σ_h w_h e_h, heads in order; logits mode: z).
template <class Arch>
inline fbatch<Arch> score_at(const SparqTopkKeysArgs& a, const float* scores, std::size_t stride) noexcept {
  using B = fbatch<Arch>;
  if (!a.weights) return B::load_unaligned(scores);
  B c(0.0f);
  for (std::size_t h = 0; h < a.heads; ++h) c = xsimd::fma(B(a.weights[h]), B::load_unaligned(scores + h * stride), c);
  return c;
}

// First-level bin of c (see sparq_topk.hpp), monotone non-increasing in c.
template <class Arch>
inline ibatch<Arch> bin_of(const SparqTopkKeysArgs& a, fbatch<Arch> c) noexcept {
  using B = fbatch<Arch>;
  using I = ibatch<Arch>;
  constexpr int kMax = int(kSparqTopkBins) - 1;
  if (a.weights) {  // c >= 0: float bits are ordered; 2^20 bit steps = 1/8 octave
    const I d = (I(bits_of(a.top)) - xsimd::bitwise_cast<I>(c)) >> 20;
    return xsimd::min(xsimd::max(d, I(0)), I(kMax));
  }
  const B d = xsimd::min((B(a.top) - c) * B(8.0f), B(float(kMax)));
  return xsimd::max(xsimd::to_int(d), I(0));
}

// Sum over v[0, n) in W lanes (then across lanes); v must have room for W more floats,
// which are overwritten with `pad`.
template <class Arch, bool kExp2>
inline float lane_sum(float* v, std::size_t n, float shift, float pad) noexcept {
  using B = fbatch<Arch>;
  constexpr std::size_t W = B::size;
  fill_n(v + n, W, pad);
  const B bs(shift);
  B acc(0.0f);
  for (std::size_t t = 0; t < n; t += W) {
    const B x = B::load_unaligned(v + t);
    if constexpr (kExp2)
      acc += exp2<Arch>(x - bs);
    else
      acc += x;
  }
  return xsimd::hadd(acc);
}

}  // namespace
}  // namespace sparq_topk_detail

template <class Arch>
void SparqTopkKeys<Arch>::operator()(Arch, const SparqTopkKeysArgs& a) const noexcept {
  using namespace sparq_topk_detail;
  using I = ibatch<Arch>;
  constexpr std::size_t W = fbatch<Arch>::size;
  constexpr std::size_t kSub = 4;
  // Four sub-histograms, lane l counting into sub l % 4: the scores concentrate in a few
  // bins, and one counter per bin would serialize the increments through memory.
  alignas(64) std::uint32_t sub[kSub][kSparqTopkBins] = {};
  alignas(64) std::int32_t lanes[W];
  // Locals: stores through the uint8_t bins may alias `a`, which would reload its fields.
  std::int32_t* const keys = a.keys;
  std::uint8_t* const bins = a.bins;
  auto one = [&](fbatch<Arch> c, std::size_t t, std::size_t count, bool sample) {
    const I key = key_of<Arch>(c);
    const I bin = bin_of<Arch>(a, c);
    if (count == W) {  // compile-time trip counts: unrolled, l % kSub constant
      key.store_unaligned(keys + t);
      // One narrowing store, not W lane extractions and byte stores (docs/performance.md).
      StoreU8<Arch>::store(bin, bins + t);
      if (sample) {
        bin.store_aligned(lanes);
        for (std::size_t l = 0; l < W; ++l) ++sub[l % kSub][lanes[l]];
      }
      return;
    }
    bin.store_aligned(lanes);
    for (std::size_t l = 0; l < count; ++l) {
      bins[t + l] = std::uint8_t(lanes[l]);
      if (sample) ++sub[l % kSub][lanes[l]];
    }
    key.store_aligned(lanes);
    std::memcpy(keys + t, lanes, count * sizeof(std::int32_t));
  };
  const std::size_t n_full = a.n / W * W;
  for (std::size_t t = 0; t < n_full; t += W)
    one(score_at<Arch>(a, a.scores + t, a.score_stride), t, W, (t / W) % kSparqTopkSampleEvery == 0);
  if (n_full < a.n) {  // zero-padded [heads][W] copy of the tail, same arithmetic
    const std::size_t tail = a.n - n_full;
    const std::size_t heads = a.weights ? a.heads : 1;
    fill_n(a.tmp, heads * W, 0.0f);
    for (std::size_t h = 0; h < heads; ++h)
      std::memcpy(a.tmp + h * W, a.scores + h * a.score_stride + n_full, tail * sizeof(float));
    one(score_at<Arch>(a, a.tmp, W), n_full, tail, (n_full / W) % kSparqTopkSampleEvery == 0);
  }
  for (std::size_t b = 0; b < kSparqTopkBins; ++b) a.hist[b] = sub[0][b] + sub[1][b] + sub[2][b] + sub[3][b];
}

template <class Arch>
std::size_t SparqTopkCollect<Arch>::operator()(Arch, const SparqTopkCollectArgs& a) const noexcept {
  using U8 = xsimd::batch<std::uint8_t, Arch>;
  constexpr std::size_t W = U8::size;
  const U8 lo(a.lo), hi(a.hi);
  std::size_t count = 0, above = 0;
  std::size_t t = 0;
  for (; t + W <= a.n; t += W) {
    const U8 b = U8::load_unaligned(a.bins + t);
    above += std::size_t(popcount64(LaneMask<Arch>::below(b, lo)));
    std::uint64_t m = LaneMask<Arch>::in_range(b, lo, hi);
    while (m) {
      const std::size_t i = t + std::size_t(ctz64(m));
      a.positions[count] = a.j_begin + std::uint32_t(i);
      a.out_keys[count] = a.keys[i];
      ++count;
      m &= m - 1;
    }
  }
  for (; t < a.n; ++t) {
    const std::uint8_t b = a.bins[t];
    above += b < a.lo;
    if (b >= a.lo && b <= a.hi) {
      a.positions[count] = a.j_begin + std::uint32_t(t);
      a.out_keys[count] = a.keys[t];
      ++count;
    }
  }
  *a.above = above;
  return count;
}

template <class Arch>
std::size_t SparqTopkEmit<Arch>::operator()(Arch, const SparqTopkEmitArgs& a) const noexcept {
  using namespace sparq_topk_detail;
  using I = ibatch<Arch>;
  constexpr std::size_t W = I::size;
  std::int32_t* keys = a.keys;
  std::size_t count = 0;
  // In-place compaction: the write index never passes the read index, and each vector
  // of keys is loaded before any of its lanes can be overwritten.
  auto compact = [&](std::size_t begin, std::size_t end, std::int32_t thr) {
    if (thr == kMaxI32) return;
    const I vthr(thr);
    std::size_t t = begin;
    for (; t + W <= end; t += W) {
      std::uint32_t m = LaneMask<Arch>::bits(I::load_unaligned(keys + t) >= vthr);
      const std::int32_t base = std::int32_t(a.j_begin + std::uint32_t(t));
      while (m) {  // positions are written after their vector was loaded
        keys[count++] = base + ctz64(m);
        m &= m - 1;
      }
    }
    for (; t < end; ++t) {
      const std::int32_t key = keys[t];
      keys[count] = std::int32_t(a.j_begin + std::uint32_t(t));
      count += key >= thr;
    }
  };
  const std::size_t split = smin(a.split, a.n_ranked);
  compact(0, split, a.thr_lo);
  compact(split, a.n_ranked, a.thr_hi);
  for (std::size_t t = a.n_ranked; t < a.n; ++t) keys[count++] = std::int32_t(a.j_begin + std::uint32_t(t));

  // α partials over the selected positions, summed in W lanes.
  const float pad = a.exp_mode ? 0.0f : -kInfF;
  for (std::size_t h = 0; h < a.heads; ++h) {
    const float* s = a.scores + h * a.score_stride;
    for (std::size_t i = 0; i < count; ++i) a.tmp[i] = s[std::uint32_t(keys[i]) - a.j_begin];
    const float sum =
        a.exp_mode ? lane_sum<Arch, false>(a.tmp, count, 0.0f, pad) : lane_sum<Arch, true>(a.tmp, count, a.shift, pad);
    a.alpha[h] = a.scale[h] * sum;
  }
  return count;
}

}  // namespace sparq::kernels
