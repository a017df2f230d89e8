// Definitions of the SparQ top-k passes (see sparq_topk.hpp). Include only from the
// per-ISA instantiation files.
#pragma once

#include <algorithm>
#include <cstring>
#include <limits>

#include "kernels/load_convert.hpp"
#include "kernels/sparq_topk.hpp"

namespace sparq::kernels {
namespace sparq_topk_detail {

template <class Arch>
using ibatch = xsimd::batch<std::int32_t, Arch>;

// Float bits -> int32 that orders like the float (finite values, ±inf); -0 ties with +0.
template <class Arch>
inline ibatch<Arch> key_of(fbatch<Arch> x) noexcept {
  using I = ibatch<Arch>;
  const I i = xsimd::bitwise_cast<I>(x + fbatch<Arch>(0.0f));
  return xsimd::select(i < I(0), i ^ I(0x7fffffff), i);
}

template <class Arch>
inline ibatch<Arch> keys_at(const SparqTopkKeysArgs& a, const float* scores, std::size_t stride) noexcept {
  using B = fbatch<Arch>;
  if (!a.weights) return key_of<Arch>(B::load_unaligned(scores));
  B c(0.0f);
  for (std::size_t h = 0; h < a.heads; ++h)
    c = xsimd::fma(B(a.weights[h]), B::load_unaligned(scores + h * stride), c);
  return key_of<Arch>(c);
}

// Sum over v[0, n) in W lanes (then across lanes); v must have room for W more floats,
// which are overwritten with `pad`.
template <class Arch, bool kExp2>
inline float lane_sum(float* v, std::size_t n, float shift, float pad) noexcept {
  using B = fbatch<Arch>;
  constexpr std::size_t W = B::size;
  std::fill(v + n, v + n + W, pad);
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

}  // namespace sparq_topk_detail

template <class Arch>
void SparqTopkKeys<Arch>::operator()(Arch, const SparqTopkKeysArgs& a) const noexcept {
  using namespace sparq_topk_detail;
  constexpr std::size_t W = fbatch<Arch>::size;
  const std::size_t n_full = a.n / W * W;
  for (std::size_t t = 0; t < n_full; t += W) keys_at<Arch>(a, a.scores + t, a.score_stride).store_unaligned(a.keys + t);
  if (n_full < a.n) {  // zero-padded [heads][W] copy of the tail, same arithmetic
    const std::size_t tail = a.n - n_full;
    const std::size_t heads = a.weights ? a.heads : 1;
    std::fill(a.tmp, a.tmp + heads * W, 0.0f);
    for (std::size_t h = 0; h < heads; ++h)
      std::memcpy(a.tmp + h * W, a.scores + h * a.score_stride + n_full, tail * sizeof(float));
    alignas(64) std::int32_t out[W];
    keys_at<Arch>(a, a.tmp, W).store_aligned(out);
    std::memcpy(a.keys + n_full, out, tail * sizeof(std::int32_t));
  }
  std::fill(a.hist, a.hist + kSparqTopkBins, 0u);
  for (std::size_t t = 0; t < a.n; ++t) ++a.hist[sparq_key_bits(a.keys[t]) >> kSparqTopkShift];
}

template <class Arch>
std::size_t SparqTopkCollect<Arch>::operator()(Arch, const SparqTopkCollectArgs& a) const noexcept {
  using I = sparq_topk_detail::ibatch<Arch>;
  constexpr std::size_t W = I::size;
  const I lo(a.lo), hi(a.hi);
  std::size_t count = 0;
  std::size_t t = 0;
  for (; t + W <= a.n; t += W) {
    const I k = I::load_unaligned(a.keys + t);
    if (!xsimd::any((k >= lo) & (k <= hi))) continue;
    for (std::size_t l = 0; l < W; ++l) {
      const std::int32_t key = a.keys[t + l];
      if (key >= a.lo && key <= a.hi) {
        a.positions[count] = a.j_begin + std::uint32_t(t + l);
        a.out_keys[count] = key;
        ++count;
      }
    }
  }
  for (; t < a.n; ++t) {
    const std::int32_t key = a.keys[t];
    if (key >= a.lo && key <= a.hi) {
      a.positions[count] = a.j_begin + std::uint32_t(t);
      a.out_keys[count] = key;
      ++count;
    }
  }
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
    if (thr == std::numeric_limits<std::int32_t>::max()) return;
    const I vthr(thr);
    alignas(64) std::int32_t lanes[W];
    std::size_t t = begin;
    for (; t + W <= end; t += W) {
      const I k = I::load_unaligned(keys + t);
      if (!xsimd::any(k >= vthr)) continue;
      k.store_aligned(lanes);
      for (std::size_t l = 0; l < W; ++l) {
        keys[count] = std::int32_t(a.j_begin + std::uint32_t(t + l));
        count += lanes[l] >= thr;
      }
    }
    for (; t < end; ++t) {
      const std::int32_t key = keys[t];
      keys[count] = std::int32_t(a.j_begin + std::uint32_t(t));
      count += key >= thr;
    }
  };
  const std::size_t split = std::min(a.split, a.n_ranked);
  compact(0, split, a.thr_lo);
  compact(split, a.n_ranked, a.thr_hi);
  for (std::size_t t = a.n_ranked; t < a.n; ++t) keys[count++] = std::int32_t(a.j_begin + std::uint32_t(t));

  // α partials over the selected positions, summed in W lanes.
  const float pad = a.exp_mode ? 0.0f : -std::numeric_limits<float>::infinity();
  for (std::size_t h = 0; h < a.heads; ++h) {
    const float* s = a.scores + h * a.score_stride;
    for (std::size_t i = 0; i < count; ++i) a.tmp[i] = s[std::uint32_t(keys[i]) - a.j_begin];
    const float sum = a.exp_mode ? lane_sum<Arch, false>(a.tmp, count, 0.0f, pad)
                                 : lane_sum<Arch, true>(a.tmp, count, a.shift, pad);
    a.alpha[h] = a.scale[h] * sum;
  }
  return count;
}

}  // namespace sparq::kernels
