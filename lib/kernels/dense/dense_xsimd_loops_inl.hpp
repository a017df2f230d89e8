// The dense kernels' portable f32 inner loops (members of dense_detail::Chunk, see
// dense_chunk_inl.hpp): scores of a head tile by the rows of the tile's K (S-major) or by
// components (d-major), and V accumulation. Every batch of a row is widened once, in
// registers (bf16 in "pair order" with one full-width load and two integer ops per 2W
// values: load_bf16_pair; q is permuted to match once per chunk), and feeds the G heads
// of the tile. Included only through dense_decode_inl.hpp.
#pragma once

#include "kernels/dense/dense_chunk_inl.hpp"

namespace sparq::kernels {
namespace dense_detail {
namespace {

template <class Arch, class T, DenseLoops Loops>
void Chunk<Arch, T, Loops>::widen_row(const T* src, float* dst) const {
  const std::size_t full = d_ / W;
  for (std::size_t c = 0; c < full; ++c) load_as_f32<Arch>(src + c * W).store_unaligned(dst + c * W);
  if (full < nc_) {
    T tmp[W] = {};
    std::memcpy(tmp, src + full * W, (d_ - full * W) * sizeof(T));
    load_as_f32<Arch>(tmp).store_unaligned(dst + full * W);
  }
}

template <class Arch, class T, DenseLoops Loops>
void Chunk<Arch, T, Loops>::to_pair_order(const float* src, float* dst) const {
  for (std::size_t c = 0; c < d_; c += 2 * W)
    for (std::size_t j = 0; j < W; ++j) {
      dst[c + j] = src[c + 2 * j];
      dst[c + W + j] = src[c + 2 * j + 1];
    }
}

template <class Arch, class T, DenseLoops Loops>
void Chunk<Arch, T, Loops>::from_pair_order(const float* src, float* dst) const {
  for (std::size_t c = 0; c < d_; c += 2 * W)
    for (std::size_t j = 0; j < W; ++j) {
      dst[c + 2 * j] = src[c + j];
      dst[c + 2 * j + 1] = src[c + W + j];
    }
}

template <class Arch, class T, DenseLoops Loops>
template <class F>
void Chunk<Arch, T, Loops>::with_rows(const T* rows, float* widened, std::size_t n, F&& f) {
  if (d_ % W != 0) {
    const std::size_t stride = nc_ * W;
    for (std::size_t p = 0; p < n; ++p) widen_row(rows + p * d_, widened + p * stride);
    f.template operator()<false>(static_cast<const float*>(widened), stride);
  } else if constexpr (std::is_same_v<T, bf16_t>) {
    if (paired_)
      f.template operator()<true>(rows, d_);
    else
      f.template operator()<false>(rows, d_);
  } else {
    f.template operator()<false>(rows, d_);
  }
}

template <class Arch, class T, DenseLoops Loops>
template <std::size_t G>
void Chunk<Arch, T, Loops>::scores(std::size_t h0, const std::byte* block, std::size_t off, std::size_t n) {
  if (!keeps_s_major(v_.layouts)) {
    scores_d_major<G>(h0, reinterpret_cast<const T*>(kd_), off, n);
    return;
  }
  const T* k = reinterpret_cast<const T*>(block + v_.k_s_major_offset) + off * d_;
  if constexpr (kRows16 && G <= rows16::kMaxHeads) {
    if (rows16::handles(G, d_)) {
      const auto* k16 = reinterpret_cast<const std::uint16_t*>(k);
      if constexpr (std::is_same_v<T, bf16_t>)
        rows16::scores_bf16(k16, d_, n, G, qp_ + h0 * dp_, dp_, sc_);  // paired_: q in pair order
      else
        rows16::scores(k16, d_, n, G, q_ + h0 * dp_, dp_, sc_);
      return;
    }
  }
  with_rows(k, kf_, n, [&]<bool Paired>(const auto* rows, std::size_t stride) {
    scores_rows<G, Paired>(h0, rows, stride, n, Paired ? qp_ : q_);
  });
}

template <class Arch, class T, DenseLoops Loops>
template <std::size_t G, bool Paired, class R>
void Chunk<Arch, T, Loops>::scores_rows(std::size_t h0, const R* k, std::size_t stride, std::size_t n, const float* q) {
  constexpr std::size_t P = W / G;
  constexpr std::size_t S = Paired ? 2 : 1;  // batches per step
  // q of the G heads held in registers while the P rows stream by, when they fit.
  constexpr bool kHoistQ = S * G + W + 2 * S <= kRegs;
  const float* qh = q + h0 * dp_;
  // Prefetch only when reading the cache's rows (not a widened copy).
  const std::byte* pf_k = std::is_same_v<R, T> ? reinterpret_cast<const std::byte*>(k) : nullptr;
  for (std::size_t b = 0; b * P < n; ++b) {  // batch b: positions b*P .. b*P + P - 1
    // Rows past n (partial tile) repeat row 0; softmax masks their lanes.
    const R* rows[P];
    for (std::size_t pl = 0; pl < P; ++pl) {
      const std::size_t p = b * P + pl;
      rows[pl] = k + (p < n ? p : 0) * stride;
      if (h0 == 0 && pf_k) prefetch_ahead(pf_k, n, pf_.k, p);
    }
    B acc[G * P];
    for (std::size_t i = 0; i < G * P; ++i) acc[i] = B(0.0f);
    for (std::size_t c = 0; c < nc_; c += S) {
      if constexpr (kHoistQ) {
        B qv[G][S];
        for (std::size_t h = 0; h < G; ++h)
          for (std::size_t s = 0; s < S; ++s) qv[h][s] = B::load_unaligned(qh + h * dp_ + (c + s) * W);
        for (std::size_t pl = 0; pl < P; ++pl) {
          B kv[S];
          if constexpr (Paired)
            load_bf16_pair<Arch>(rows[pl] + c * W, kv[0], kv[1]);
          else
            kv[0] = load_as_f32<Arch>(rows[pl] + c * W);
          for (std::size_t h = 0; h < G; ++h)
            for (std::size_t s = 0; s < S; ++s) acc[h * P + pl] = xsimd::fma(qv[h][s], kv[s], acc[h * P + pl]);
        }
      } else {
        B kv[P][S];
        for (std::size_t pl = 0; pl < P; ++pl) {
          if constexpr (Paired)
            load_bf16_pair<Arch>(rows[pl] + c * W, kv[pl][0], kv[pl][1]);
          else
            kv[pl][0] = load_as_f32<Arch>(rows[pl] + c * W);
        }
        for (std::size_t h = 0; h < G; ++h)
          for (std::size_t s = 0; s < S; ++s) {
            const B qv = B::load_unaligned(qh + h * dp_ + (c + s) * W);
            for (std::size_t pl = 0; pl < P; ++pl) acc[h * P + pl] = xsimd::fma(qv, kv[pl][s], acc[h * P + pl]);
          }
      }
    }
    row_sums<Arch>(acc).store_unaligned(sc_ + b * W);
  }
}

template <class Arch, class T, DenseLoops Loops>
template <std::size_t HT>
void Chunk<Arch, T, Loops>::scores_d_major_heads(std::size_t h0, const T* kd, std::size_t off, std::size_t n,
                                                 float* out) {
  const std::size_t bt = v_.block_tokens;
  B acc[HT];
  for (std::size_t hh = 0; hh < HT; ++hh) acc[hh] = B(0.0f);
  const float* q = q_ + h0 * dp_;
  const bool full = off + W <= bt;
  for (std::size_t i = 0; i < d_; ++i) {
    const T* src = kd + i * v_.d_major_stride + off;
    B kv;
    if (full) {
      kv = load_as_f32<Arch>(src);
    } else {  // the block's row ends inside this tile: never read past it
      T tmp[W] = {};
      std::memcpy(tmp, src, n * sizeof(T));
      kv = load_as_f32<Arch>(tmp);
    }
    for (std::size_t hh = 0; hh < HT; ++hh) acc[hh] = xsimd::fma(B(q[hh * dp_ + i]), kv, acc[hh]);
  }
  for (std::size_t hh = 0; hh < HT; ++hh) acc[hh].store_unaligned(out + hh * W);
}

template <class Arch, class T, DenseLoops Loops>
template <std::size_t G>
void Chunk<Arch, T, Loops>::scores_d_major(std::size_t h0, const T* kd, std::size_t off, std::size_t n) {
  // Scores by head ([G][W], lanes = positions) into kf_, then into the tile layout.
  constexpr std::size_t P = W / G;
  for (std::size_t sub = 0; sub * W < n; ++sub) {
    const std::size_t ns = n - sub * W < W ? n - sub * W : W;
    for (std::size_t h = 0; h < G; h += 4) {
      if constexpr (G >= 4)
        scores_d_major_heads<4>(h0 + h, kd, off + sub * W, ns, kf_ + h * W);
      else
        scores_d_major_heads<G>(h0 + h, kd, off + sub * W, ns, kf_ + h * W);
    }
    float* sc = sc_ + sub * G * W;
    for (std::size_t grp = 0; grp < G; ++grp)
      for (std::size_t h = 0; h < G; ++h)
        for (std::size_t pl = 0; pl < P; ++pl) sc[grp * W + h * P + pl] = kf_[h * W + grp * P + pl];
  }
}

template <class Arch, class T, DenseLoops Loops>
template <std::size_t G, std::size_t HT, std::size_t NV, bool Paired, class R>
void Chunk<Arch, T, Loops>::accumulate_v_block(std::size_t h0, std::size_t hs, std::size_t c0, const R* v,
                                               std::size_t stride, std::size_t n, bool rescale) {
  constexpr std::size_t P = W / G;
  float* o = o_ + (h0 + hs) * dp_ + c0 * W;
  // One flat array: GCC 12 keeps it in registers (a 2-D one went through the stack
  // around the loop, +50% time of this function).
  B acc[HT * NV];
  for (std::size_t hh = 0; hh < HT; ++hh) {
    const B cr(rescale ? corr_[h0 + hs + hh] : 1.0f);
    for (std::size_t c = 0; c < NV; ++c) acc[hh * NV + c] = B::load_unaligned(o + hh * dp_ + c * W) * cr;
  }
  const R* row = v + c0 * W;
  const float* pr = pr_ + hs * P;
  const bool pf = std::is_same_v<R, T> && h0 + hs + c0 == 0;
  for (std::size_t p = 0; p < n; ++p, row += stride) {
    if (pf) prefetch_ahead(reinterpret_cast<const std::byte*>(v), n, pf_.v, p);
    B vv[NV];
    if constexpr (Paired) {
      for (std::size_t c = 0; c < NV; c += 2) load_bf16_pair<Arch>(row + c * W, vv[c], vv[c + 1]);
    } else {
      for (std::size_t c = 0; c < NV; ++c) vv[c] = load_as_f32<Arch>(row + c * W);
    }
    const float* w = pr + (p / P) * W + p % P;
    for (std::size_t hh = 0; hh < HT; ++hh) {
      const B wb(w[hh * P]);
      for (std::size_t c = 0; c < NV; ++c) acc[hh * NV + c] = xsimd::fma(wb, vv[c], acc[hh * NV + c]);
    }
  }
  for (std::size_t hh = 0; hh < HT; ++hh)
    for (std::size_t c = 0; c < NV; ++c) acc[hh * NV + c].store_unaligned(o + hh * dp_ + c * W);
}

template <class Arch, class T, DenseLoops Loops>
template <std::size_t G, bool Paired, class R>
void Chunk<Arch, T, Loops>::accumulate_v(std::size_t h0, const R* v, std::size_t stride, std::size_t n, bool rescale) {
  constexpr std::size_t HT = G < kVHeads ? G : kVHeads;
  for (std::size_t hs = 0; hs < G; hs += HT) {
    std::size_t c0 = 0;
    for (; c0 + VC <= nc_; c0 += VC) accumulate_v_block<G, HT, VC, Paired>(h0, hs, c0, v, stride, n, rescale);
    // Remaining batches (an even number when paired).
    if constexpr (Paired) {
      for (; c0 < nc_; c0 += 2) accumulate_v_block<G, HT, 2, true>(h0, hs, c0, v, stride, n, rescale);
    } else {
      for (; c0 < nc_; ++c0) accumulate_v_block<G, HT, 1, false>(h0, hs, c0, v, stride, n, rescale);
    }
  }
}

}  // namespace
}  // namespace dense_detail
}  // namespace sparq::kernels
