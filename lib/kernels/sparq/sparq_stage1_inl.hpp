// Definition of SparqStage1 (see sparq_stage1.hpp). Include only from the per-ISA
// instantiation files: everything here is templated on Arch, so each ISA's object file
// has its own symbols.
#pragma once

#include <cstring>
#include <type_traits>

#include "kernels/simd/load_convert.hpp"
#include "kernels/simd/prefetch_lines.hpp"
#include "kernels/simd/scalar_ops.hpp"
#include "kernels/simd/storage.hpp"
#include "kernels/softmax_range.hpp"
#include "kernels/sparq/head_groups.hpp"
#include "kernels/sparq/sparq_stage1.hpp"

namespace sparq::kernels {
namespace sparq_stage1_detail {
namespace {

// Registers allow HG heads × NV vectors of positions as accumulators (half the register
// file, leaving room for the key vectors and the broadcast coefficient).
template <class Arch, std::size_t HG>
constexpr std::size_t vectors_per_tile() {
  constexpr std::size_t regs = fbatch<Arch>::size >= 16 ? 32 : 16;
  constexpr std::size_t nv = regs / 2 / HG;
  return nv < 1 ? 1 : (nv > 4 ? 4 : nv);
}

// Software prefetch distance along each d-major row, in bytes: the rows are n_rows
// streams read side by side, more than the hardware prefetcher follows; 512 B was the
// best distance measured (docs/performance.md, "SparQ decode").
constexpr std::size_t kRowAheadBytes = 512;

// z[h][t .. t + NV·W) for HG heads: one pass over the n_rows rows, each row's NV vectors
// converted once and used by every head (a GQA group reads each row once). kPrefetch:
// the rows continue in memory (d-major cache rows, not a staged copy). vmax[h] takes the
// max of what is stored, while it is in registers (a separate pass over z cost 4% of a
// SparQ call).
template <class Arch, class T, std::size_t HG, std::size_t NV, bool kPrefetch>
inline void approx_tile(const T* const* rows, std::size_t n_rows, const float* q, std::size_t q_stride, std::size_t t,
                        float* z, std::size_t z_stride, fbatch<Arch>* vmax) noexcept {
  using B = fbatch<Arch>;
  constexpr std::size_t W = B::size;
  B acc[HG][NV];
  for (std::size_t h = 0; h < HG; ++h)
    for (std::size_t v = 0; v < NV; ++v) acc[h][v] = B(0.0f);
  for (std::size_t u = 0; u < n_rows; ++u) {
    if constexpr (kPrefetch) {
      // Past a row's last block the address lies in the next row or past the area: a
      // prefetch never faults, and the cost is one line.
      prefetch_lines(reinterpret_cast<const char*>(rows[u] + t) + kRowAheadBytes, NV * W * sizeof(T));
    }
    B k[NV];
    for (std::size_t v = 0; v < NV; ++v) k[v] = load_as_f32<Arch>(rows[u] + t + v * W);
    for (std::size_t h = 0; h < HG; ++h) {
      const B qb(q[h * q_stride + u]);
      for (std::size_t v = 0; v < NV; ++v) acc[h][v] = xsimd::fma(qb, k[v], acc[h][v]);
    }
  }
  for (std::size_t h = 0; h < HG; ++h)
    for (std::size_t v = 0; v < NV; ++v) {
      const B score = rank_score<Arch>(acc[h][v], kScoreLimit);
      score.store_unaligned(z + h * z_stride + t + v * W);
      vmax[h] = xsimd::max(vmax[h], score);
    }
}

// Positions [0, n) with n a multiple of W, heads [0, HG); zmax[h] <- max(zmax[h], z[h][0, n)).
template <class Arch, class T, std::size_t HG, bool kPrefetch>
inline void approx_span(const T* const* rows, std::size_t n_rows, std::size_t n, const float* q, std::size_t q_stride,
                        float* z, std::size_t z_stride, float* zmax) noexcept {
  using B = fbatch<Arch>;
  constexpr std::size_t W = B::size;
  constexpr std::size_t NV = vectors_per_tile<Arch, HG>();
  B vmax[HG];
  for (std::size_t h = 0; h < HG; ++h) vmax[h] = B(-kInfF);
  std::size_t t = 0;
  for (; t + NV * W <= n; t += NV * W)
    approx_tile<Arch, T, HG, NV, kPrefetch>(rows, n_rows, q, q_stride, t, z, z_stride, vmax);
  for (; t < n; t += W) approx_tile<Arch, T, HG, 1, kPrefetch>(rows, n_rows, q, q_stride, t, z, z_stride, vmax);
  for (std::size_t h = 0; h < HG; ++h) zmax[h] = lane_max<Arch>(vmax[h], zmax[h]);
}

struct Scratch {
  const void** row_ptrs;    // [n_rows]
  const void** stage_ptrs;  // [n_rows]
  std::byte* stage;         // [n_rows][kMaxLanes] elements (tails)
  std::byte* gather;        // [n_rows][kSparqStage1Tile] elements (S-major gather)
  float* coef;              // [heads][n_rows] an int8 block's coefficients
};

Scratch carve(std::byte* p, std::size_t n_rows) noexcept {
  Scratch s;
  s.row_ptrs = reinterpret_cast<const void**>(p);
  s.stage_ptrs = s.row_ptrs + n_rows;
  s.stage = reinterpret_cast<std::byte*>(s.stage_ptrs + n_rows);
  s.gather = s.stage + n_rows * kMaxLanes * 4;
  s.coef = reinterpret_cast<float*>(s.gather + n_rows * kSparqStage1Tile * 4);
  return s;
}

// z[h][0, n) for all heads from `rows` (each n contiguous elements), and zmax[h] <-
// max(zmax[h], z[h][0, n)). A tail of fewer than W positions is staged through a
// zero-padded copy, so it runs the same arithmetic.
template <class Arch, class T, bool kPrefetch>
void approx_run(const T* const* rows, std::size_t n_rows, std::size_t n, const float* q, std::size_t heads, float* z,
                std::size_t z_stride, float* zmax, const Scratch& s) noexcept {
  using B = fbatch<Arch>;
  constexpr std::size_t W = B::size;
  const std::size_t n_full = n / W * W;
  if (n_full > 0)
    sparq_for_head_groups(heads, [&]<std::size_t HG>(std::size_t h0) {
      approx_span<Arch, T, HG, kPrefetch>(rows, n_rows, n_full, q + h0 * n_rows, n_rows, z + h0 * z_stride, z_stride,
                                          zmax + h0);
    });
  if (n_full == n) return;
  const std::size_t tail = n - n_full;
  T* stage = reinterpret_cast<T*>(s.stage);
  const T** ptrs = reinterpret_cast<const T**>(s.stage_ptrs);
  for (std::size_t u = 0; u < n_rows; ++u) {
    T* dst = stage + u * W;
    std::memcpy(dst, rows[u] + n_full, tail * sizeof(T));
    std::memset(static_cast<void*>(dst + tail), 0, (W - tail) * sizeof(T));
    ptrs[u] = dst;
  }
  alignas(64) float tmp[8 * W];
  sparq_for_head_groups(heads, [&]<std::size_t HG>(std::size_t h0) {
    B unused[HG];  // the padding lanes must not count: the tail's max is taken below
    for (std::size_t h = 0; h < HG; ++h) unused[h] = B(-kInfF);
    approx_tile<Arch, T, HG, 1, false>(ptrs, n_rows, q + h0 * n_rows, n_rows, 0, tmp, W, unused);
    for (std::size_t h = 0; h < HG; ++h) {
      std::memcpy(z + (h0 + h) * z_stride + n_full, tmp + h * W, tail * sizeof(float));
      for (std::size_t i = 0; i < tail; ++i) zmax[h0 + h] = smax(zmax[h0 + h], tmp[h * W + i]);
    }
  });
}

// Σ 2^(z - m) and optionally z <- 2^(z - m) over z[0, n), n >= 1, with m = max z.
template <class Arch>
void summarize(float* z, std::size_t n, float m, bool store_exp, float& sum_out) noexcept {
  using B = fbatch<Arch>;
  constexpr std::size_t W = B::size;
  const std::size_t n_full = n / W * W;
  constexpr float kNegInf = -kInfF;
  const B bm(m);
  B vsum(0.0f);
  for (std::size_t t = 0; t < n_full; t += W) {
    const B e = exp2<Arch>(B::load_unaligned(z + t) - bm);
    vsum += e;
    if (store_exp) e.store_unaligned(z + t);
  }
  if (n_full < n) {  // padded with -inf, which contributes 2^-inf = 0
    alignas(64) float tail[W];
    fill_n(tail, W, kNegInf);
    std::memcpy(tail, z + n_full, (n - n_full) * sizeof(float));
    const B e = exp2<Arch>(B::load_aligned(tail) - bm);
    vsum += e;
    if (store_exp) {
      e.store_aligned(tail);
      std::memcpy(z + n_full, tail, (n - n_full) * sizeof(float));
    }
  }
  sum_out = xsimd::hadd(vsum);
}

template <class Arch, class T>
void stage1(const SparqStage1Args& a) noexcept {
  const Scratch s = carve(a.tile, a.n_rows);
  const std::size_t B = a.block_tokens;
  for (std::size_t h = 0; h < a.heads; ++h) a.chunk_max[h] = -kInfF;
  const T** rows = reinterpret_cast<const T**>(s.row_ptrs);
  if (a.d_major) {
    // Block by block: n_rows runs of up to B contiguous elements each, row_stride apart.
    // A block's runs are short (8 lines for B = 256 bf16), but the cache puts consecutive
    // blocks' runs side by side where it can (BlockPool::d_major), so each row is one
    // stream across blocks, prefetched kRowAheadBytes ahead as it is read.
    for (std::size_t j = a.j_begin; j < a.j_end;) {
      const std::size_t b = j / B;
      const std::size_t n = smin(B, a.j_end - j);
      const T* base = reinterpret_cast<const T*>(a.blocks[b * a.block_stride] + a.key_offset);
      for (std::size_t u = 0; u < a.n_rows; ++u) rows[u] = base + std::size_t(a.rows[u]) * a.row_stride;
      const float* qsel = a.qsel;
      if constexpr (std::is_same_v<T, std::int8_t>) {  // the block's scales fold into q
        const float* scale = a.scales[b * a.block_stride];
        for (std::size_t h = 0; h < a.heads; ++h)
          for (std::size_t u = 0; u < a.n_rows; ++u)
            s.coef[h * a.n_rows + u] = a.qsel[h * a.n_rows + u] * scale[a.rows[u]];
        qsel = s.coef;
      }
      approx_run<Arch, T, true>(rows, a.n_rows, n, qsel, a.heads, a.z + (j - a.j_begin), a.z_stride, a.chunk_max, s);
      j += n;
    }
  } else if constexpr (!std::is_same_v<T, std::int8_t>) {  // an int8 copy is always d-major
    // S-major only: copy the selected components of kSparqStage1Tile positions into a
    // d-major tile, then the same arithmetic as the fast path.
    T* tile = reinterpret_cast<T*>(s.gather);
    constexpr std::size_t TW = kSparqStage1Tile;
    for (std::size_t u = 0; u < a.n_rows; ++u) rows[u] = tile + u * TW;
    for (std::size_t j = a.j_begin; j < a.j_end; j += TW) {
      const std::size_t n = smin(TW, a.j_end - j);
      for (std::size_t t = 0; t < n; ++t) {
        const std::size_t p = j + t;
        const T* krow =
            reinterpret_cast<const T*>(a.blocks[p / B * a.block_stride] + a.key_offset) + (p % B) * a.s_major_stride;
        for (std::size_t u = 0; u < a.n_rows; ++u) tile[u * TW + t] = krow[a.rows[u]];
      }
      approx_run<Arch, T, false>(rows, a.n_rows, n, a.qsel, a.heads, a.z + (j - a.j_begin), a.z_stride, a.chunk_max, s);
    }
  }
  const std::size_t n = a.j_end - a.j_begin;
  for (std::size_t h = 0; h < a.heads; ++h)
    summarize<Arch>(a.z + h * a.z_stride, n, a.chunk_max[h], a.store_exp, a.chunk_sum[h]);
}

}  // namespace
}  // namespace sparq_stage1_detail

template <class Arch>
void SparqStage1<Arch>::operator()(Arch, const SparqStage1Args& args) const noexcept {
  if (args.scales) return sparq_stage1_detail::stage1<Arch, std::int8_t>(args);
  visit_dtype(args.dtype, [&](auto t) { sparq_stage1_detail::stage1<Arch, decltype(t)>(args); });
}

}  // namespace sparq::kernels
