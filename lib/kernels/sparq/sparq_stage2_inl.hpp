// Definition of SparqStage2 (see sparq_stage2.hpp). Include only from the per-ISA
// instantiation files.
#pragma once

#include <cstring>

#include "kernels/simd/load_convert.hpp"
#include "kernels/simd/prefetch_lines.hpp"
#include "kernels/simd/scalar_ops.hpp"
#include "kernels/simd/storage.hpp"
#include "kernels/softmax_range.hpp"
#include "kernels/sparq/head_groups.hpp"
#include "kernels/sparq/sparq_stage2.hpp"

namespace sparq::kernels {
namespace sparq_stage2_detail {
namespace {

constexpr std::size_t T = kSparqStage2Tile;
constexpr float kNegInf = -kInfF;

struct Scratch {
  std::byte* k_stage;  // [T][dp] elements
  std::byte* v_stage;  // [T][dp] elements
  float* s;            // [heads][T] scores, then weights 2^(x - m)
  float* corr;         // [heads]
  const void** kp;     // [T]
  const void** vp;     // [T]
};

Scratch carve(std::byte* p, std::size_t dp, std::size_t heads) noexcept {
  Scratch s;
  s.k_stage = p;
  s.v_stage = p + T * dp * 4;
  s.s = reinterpret_cast<float*>(s.v_stage + T * dp * 4);
  s.corr = s.s + 2 * T * heads;
  const std::size_t ptr_at = (T * dp * 8 + (2 * T + 1) * heads * 4 + 7) / 8 * 8;
  s.kp = reinterpret_cast<const void**>(p + ptr_at);
  s.vp = s.kp + T;
  return s;
}

// Scores of HG heads for positions [0, nt) of the tile. P = W / HG positions at a time:
// HG x P accumulators (lane sums of q_h . k_p) reduced together by one row_sums, which
// costs about two vector ops per accumulator where a horizontal add per head and position
// cost about ten (docs/performance.md, "Fewer vector ops per position").
// kp must hold ceil(nt / P) * P rows; lanes past nt are rewritten by the softmax.
template <class Arch, class E, std::size_t HG>
inline void tile_scores(const E* const* kp, std::size_t nt, std::size_t nvec, const float* q, std::size_t dp,
                        float* s) noexcept {
  using B = fbatch<Arch>;
  constexpr std::size_t W = B::size;
  if constexpr (HG > W) {  // 8 heads on 4 lanes: sub-groups of W heads
    for (std::size_t h = 0; h < HG; h += W) tile_scores<Arch, E, W>(kp, nt, nvec, q + h * dp, dp, s + h * T);
  } else {
    constexpr std::size_t P = W / HG;
    for (std::size_t t = 0; t < nt; t += P) {
      B acc[W];
      for (auto& a : acc) a = B(0.0f);
      for (std::size_t v = 0; v < nvec; ++v) {
        B k[P];
        for (std::size_t p = 0; p < P; ++p) k[p] = load_as_f32<Arch>(kp[t + p] + v * W);
        for (std::size_t h = 0; h < HG; ++h) {
          const B qv = B::load_unaligned(q + h * dp + v * W);
          for (std::size_t p = 0; p < P; ++p) acc[h * P + p] = xsimd::fma(qv, k[p], acc[h * P + p]);
        }
      }
      alignas(64) float sums[W];
      row_sums<Arch>(acc).store_aligned(sums);
      for (std::size_t h = 0; h < HG; ++h)
        for (std::size_t p = 0; p < P; ++p) s[h * T + t + p] = sums[h * P + p];
    }
  }
}

// acc_h <- corr_h · acc_h + Σ_t p_h[t] · V[t] for HG heads, NV vectors of d at a time
// (from vector v0) so that the accumulators stay in registers across the tile.
template <class Arch, class E, std::size_t HG, std::size_t NV>
inline void tile_values_at(const E* const* vp, std::size_t nt, std::size_t v0, const float* p, const float* corr,
                           float* acc, std::size_t dp) noexcept {
  using B = fbatch<Arch>;
  constexpr std::size_t W = B::size;
  B a[HG * NV];
  for (std::size_t h = 0; h < HG; ++h)
    for (std::size_t c = 0; c < NV; ++c) a[h * NV + c] = B::load_unaligned(acc + h * dp + (v0 + c) * W) * B(corr[h]);
  for (std::size_t t = 0; t < nt; ++t) {
    B x[NV];
    for (std::size_t c = 0; c < NV; ++c) x[c] = load_as_f32<Arch>(vp[t] + (v0 + c) * W);
    for (std::size_t h = 0; h < HG; ++h) {
      const B w(p[h * T + t]);
      for (std::size_t c = 0; c < NV; ++c) a[h * NV + c] = xsimd::fma(w, x[c], a[h * NV + c]);
    }
  }
  for (std::size_t h = 0; h < HG; ++h)
    for (std::size_t c = 0; c < NV; ++c) a[h * NV + c].store_unaligned(acc + h * dp + (v0 + c) * W);
}

// Each accumulator takes one FMA per position, so HG of them alone would wait on the
// FMA latency: NV vectors at a time give HG x NV independent chains (half the register
// file; docs/performance.md, "Fewer vector ops per position").
template <class Arch, class E, std::size_t HG>
inline void tile_values(const E* const* vp, std::size_t nt, std::size_t nvec, const float* p, const float* corr,
                        float* acc, std::size_t dp) noexcept {
  constexpr std::size_t kChains = fbatch<Arch>::size >= 16 ? 16 : 8;
  constexpr std::size_t NV = HG >= kChains ? 1 : (kChains / HG > 4 ? 4 : kChains / HG);
  std::size_t v = 0;
  for (; v + NV <= nvec; v += NV) tile_values_at<Arch, E, HG, NV>(vp, nt, v, p, corr, acc, dp);
  for (; v < nvec; ++v) tile_values_at<Arch, E, HG, 1>(vp, nt, v, p, corr, acc, dp);
}

// Rows are prefetched kPrefetchTiles tiles ahead into L1; the hints, distances and
// spreads tried made no measurable difference (docs/performance.md, "SparQ decode").
constexpr std::size_t kPrefetchTiles = 1;

template <class Arch, class E>
void stage2(const SparqStage2Args& a) noexcept {
  using B = fbatch<Arch>;
  constexpr std::size_t W = B::size;
  const std::size_t d = a.head_dim, dp = sparq_padded_dim(d), Bt = a.block_tokens;
  const std::size_t nvec = (d + W - 1) / W;
  const bool pad_rows = d % W != 0;  // rows are staged through zero-padded copies
  const Scratch s = carve(a.tile, dp, a.heads);
  E* k_stage = reinterpret_cast<E*>(s.k_stage);
  E* v_stage = reinterpret_cast<E*>(s.v_stage);
  const E** kp = reinterpret_cast<const E**>(s.kp);
  const E** vp = reinterpret_cast<const E**>(s.vp);
  float* sc = s.s;  // [heads][T]

  if (pad_rows || a.key_d_major) {
    std::memset(static_cast<void*>(k_stage), 0, T * dp * sizeof(E));
    std::memset(static_cast<void*>(v_stage), 0, T * dp * sizeof(E));
  }
  for (std::size_t h = 0; h < a.heads; ++h) {
    a.m[h] = kNegInf;
    a.l[h] = 0.0f;
    fill_n(a.acc + h * dp, dp, 0.0f);
  }
  auto key_row = [&](std::uint32_t j) {
    return reinterpret_cast<const E*>(a.key_blocks[j / Bt * a.block_stride] + a.key_offset) +
           std::size_t(j % Bt) * a.row_stride;
  };
  auto value_row = [&](std::uint32_t j) {
    return reinterpret_cast<const E*>(a.blocks[j / Bt * a.block_stride] + a.value_offset) +
           std::size_t(j % Bt) * a.row_stride;
  };

  for (std::size_t t0 = 0; t0 < a.n; t0 += T) {
    const std::size_t nt = smin(T, a.n - t0);
    const std::uint32_t* pos = a.positions + t0;
    // Prefetch the next tile's rows: random rows of d·b bytes each, too short and too
    // scattered for the hardware prefetcher.
    const std::size_t pf_begin = t0 == 0 ? T : t0 + kPrefetchTiles * T;
    for (std::size_t t = pf_begin; t < smin(a.n, t0 + (kPrefetchTiles + 1) * T); ++t) {
      if (!a.key_d_major) prefetch_lines(key_row(a.positions[t]), d * sizeof(E));
      prefetch_lines(value_row(a.positions[t]), d * sizeof(E));
    }
    for (std::size_t t = 0; t < nt; ++t) {
      const std::uint32_t j = pos[t];
      if (a.key_d_major) {
        const E* col = reinterpret_cast<const E*>(a.key_blocks[j / Bt * a.block_stride] + a.key_offset) + j % Bt;
        E* dst = k_stage + t * dp;
        for (std::size_t i = 0; i < d; ++i) dst[i] = col[i * a.key_row_stride];
        kp[t] = dst;
      } else if (pad_rows) {
        std::memcpy(k_stage + t * dp, key_row(j), d * sizeof(E));
        kp[t] = k_stage + t * dp;
      } else {
        kp[t] = key_row(j);
      }
      if (pad_rows) {
        std::memcpy(v_stage + t * dp, value_row(j), d * sizeof(E));
        vp[t] = v_stage + t * dp;
      } else {
        vp[t] = value_row(j);
      }
    }
    for (std::size_t t = nt; t < T; ++t) kp[t] = kp[0];  // read by tile_scores' last step

    sparq_for_head_groups(a.heads, [&]<std::size_t HG>(std::size_t h0) {
      tile_scores<Arch, E, HG>(kp, nt, nvec, a.q + h0 * dp, dp, sc + h0 * T);
    });

    // Online softmax per head over the tile (vectors of W scores; T is a multiple of W).
    for (std::size_t h = 0; h < a.heads; ++h) {
      float* x = sc + h * T;
      for (std::size_t t = 0; t < nt; t += W)  // clamped (softmax_range.hpp); lanes >= nt rewritten below
        clamp_score<Arch>(B::load_unaligned(x + t), kScoreLimit).store_unaligned(x + t);
      for (std::size_t t = nt; t < T; ++t) x[t] = kNegInf;
      if (a.member)
        for (std::size_t t = 0; t < nt; ++t)
          if (!a.member[(t0 + t) * a.heads + h]) x[t] = kNegInf;
      B vmax(kNegInf);
      auto nan = B(0.0f) != B(0.0f);
      for (std::size_t t = 0; t < T; t += W) {
        const B v = B::load_unaligned(x + t);
        nan = nan || xsimd::isnan(v);  // not v != v: xsimd compares ordered on AVX and AVX-512
        vmax = xsimd::max(vmax, v);
      }
      if (xsimd::any(nan)) a.l[h] = __builtin_nanf("");  // a NaN logit: reported by decode(), never hidden
      const float m_new = smax(a.m[h], lane_max<Arch>(vmax, kNegInf));
      if (m_new == kNegInf) {  // nothing attended yet by this head
        fill_n(x, T, 0.0f);
        s.corr[h] = 1.0f;
        continue;
      }
      // 2^(-inf) = 0 (exp2 clamps), so the first tile's correction of the empty state is 0.
      alignas(64) float lanes[W];
      exp2<Arch>(B(a.m[h] - m_new)).store_aligned(lanes);
      const float corr = lanes[0];
      const B bm(m_new);
      B sum(0.0f);
      for (std::size_t t = 0; t < T; t += W) {
        const B p = exp2<Arch>(B::load_unaligned(x + t) - bm) * B(kWeightScale);
        sum += p;
        p.store_unaligned(x + t);
      }
      a.l[h] = a.l[h] * corr + xsimd::hadd(sum);
      a.m[h] = m_new;
      s.corr[h] = corr;
    }

    sparq_for_head_groups(a.heads, [&]<std::size_t HG>(std::size_t h0) {
      tile_values<Arch, E, HG>(vp, nt, nvec, sc + h0 * T, s.corr + h0, a.acc + h0 * dp, dp);
    });
  }
}

}  // namespace
}  // namespace sparq_stage2_detail

template <class Arch>
void SparqStage2<Arch>::operator()(Arch, const SparqStage2Args& args) const noexcept {
  visit_dtype(args.dtype, [&](auto e) { sparq_stage2_detail::stage2<Arch, decltype(e)>(args); });
}

}  // namespace sparq::kernels
