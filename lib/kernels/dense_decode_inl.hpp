// Definition of DenseChunk<Arch> (see dense_decode.hpp). Included only by the per-ISA
// instantiation files dense_decode_<isa>.cpp, each built with its ISA's flags.
//
// Work per tile of W positions (W = lanes of one f32 batch, a tile never crosses a block):
//   1. scores s[h][p] = q_h . K_p for all heads of the group. S-major: each K row is
//      widened to f32 once into an L1 tile (shared by the g heads), W dot products per
//      head accumulate in W registers and are reduced together by row_sums (a transposing reduction).
//      d-major only (slower layout for dense): the d rows of the block are read W
//      positions at a time and broadcast q components multiply them, no reduction needed.
//   2. online softmax in base 2 (q carries log2(e)): the running max only moves when a
//      tile exceeds it, and then o, l are rescaled once for the tile.
//   3. o_h += p[h][pos] * V_pos: each V chunk of W elements is widened once in a register
//      and used by up to 8 heads' accumulators.
#pragma once

#include <cstddef>
#include <cstring>
#include <limits>

#include "kernels/dense_decode.hpp"
#include "kernels/load_convert.hpp"
#include "kernels/storage.hpp"

// ODR: nothing here may instantiate a non-Arch-templated inline function (STL algorithms,
// std::max, <cmath> overloads): the linker could keep this ISA's copy for every caller,
// and at -O0 nothing is inlined. Plain loops and xsimd (templated on Arch) only.
namespace sparq::kernels {
namespace dense_detail {

inline constexpr float kInf = std::numeric_limits<float>::infinity();

// Heads whose V accumulators live in registers at once (8 x 1 batch, plus the V chunk).
inline constexpr std::size_t kHeadTile = 8;

template <class Arch, class T>
class Chunk {
 public:
  using B = fbatch<Arch>;
  static constexpr std::size_t W = B::size;

  explicit Chunk(const DenseChunkArgs& a)
      : a_(a),
        v_(*a.view),
        d_(v_.head_dim),
        dw_((v_.head_dim + W - 1) / W * W),
        kf_(a.work),
        vf_(a.work + kMaxLanes * a.d_pad),
        sc_(vf_ + kMaxLanes * a.d_pad),
        pr_(sc_ + a.heads * kMaxLanes),
        lsum_(pr_ + a.heads * kMaxLanes),
        corr_(lsum_ + a.heads * kMaxLanes) {}

  void run();

 private:
  void tile(std::size_t pos, std::size_t n);
  void scores_s_major(std::size_t pos, std::size_t n);
  void scores_d_major(std::size_t pos, std::size_t n);
  template <std::size_t HT>
  void scores_d_major_heads(std::size_t h0, const T* kd, std::size_t off, std::size_t n);
  bool softmax(std::size_t n);
  template <class R>
  void accumulate_v(const R* const* vrow, std::size_t n, bool rescale);
  template <std::size_t HT, class R>
  void accumulate_v_heads(std::size_t h0, const R* const* vrow, std::size_t n, bool rescale);
  // Widens one row of d elements into dst[0, dw_), zero beyond d.
  void widen_row(const T* src, float* dst) const;

  const DenseChunkArgs& a_;
  const LayerView& v_;
  const std::size_t d_;   // head_dim
  const std::size_t dw_;  // head_dim rounded up to W
  float* const kf_;       // [W][d_pad] widened K rows of the tile
  float* const vf_;       // [W][d_pad] widened V rows (only when d is not a multiple of W)
  float* const sc_;       // [heads][W] scores of the tile
  float* const pr_;       // [heads][W] 2^(s - m)
  float* const lsum_;     // [heads][W] running sums of pr, reduced at the end
  float* const corr_;     // [heads] rescaling factor of this tile
};

template <class Arch, class T>
void Chunk<Arch, T>::widen_row(const T* src, float* dst) const {
  std::size_t i = 0;
  for (; i + W <= d_; i += W) load_as_f32<Arch>(src + i).store_unaligned(dst + i);
  if (i < d_) {
    T tmp[W] = {};
    std::memcpy(tmp, src + i, (d_ - i) * sizeof(T));
    load_as_f32<Arch>(tmp).store_unaligned(dst + i);
  }
}

template <class Arch, class T>
void Chunk<Arch, T>::run() {
  const std::size_t heads = a_.heads;
  for (std::size_t i = 0; i < heads * a_.d_pad; ++i) a_.o[i] = 0.0f;
  for (std::size_t h = 0; h < heads; ++h) a_.m[h] = -kInf;
  for (std::size_t i = 0; i < heads * W; ++i) lsum_[i] = 0.0f;
  const std::size_t bt = v_.block_tokens;
  for (std::size_t pos = a_.begin; pos < a_.end;) {
    std::size_t n = bt - pos % bt;  // a tile stays inside one block
    if (n > a_.end - pos) n = a_.end - pos;
    if (n > W) n = W;
    tile(pos, n);
    pos += n;
  }
  for (std::size_t h = 0; h < heads; ++h) a_.l[h] = xsimd::hadd(B::load_unaligned(lsum_ + h * W));
}

template <class Arch, class T>
void Chunk<Arch, T>::tile(std::size_t pos, std::size_t n) {
  if (has_s_major(v_.layouts))
    scores_s_major(pos, n);
  else
    scores_d_major(pos, n);
  const bool rescale = softmax(n);
  const T* vraw[W];
  for (std::size_t p = 0; p < n; ++p) vraw[p] = reinterpret_cast<const T*>(v_.value_row(a_.kv_head, pos + p));
  if (d_ % W == 0) {
    accumulate_v(vraw, n, rescale);
  } else {
    const float* vrow[W];
    for (std::size_t p = 0; p < n; ++p) {
      widen_row(vraw[p], vf_ + p * a_.d_pad);
      vrow[p] = vf_ + p * a_.d_pad;
    }
    accumulate_v(vrow, n, rescale);
  }
}

template <class Arch, class T>
void Chunk<Arch, T>::scores_s_major(std::size_t pos, std::size_t n) {
  // Rows of the tile as f32; missing rows of a partial tile repeat row 0 (their lanes are
  // masked in softmax), so the W-wide reduction below never branches.
  const float* krow[W] = {};
  for (std::size_t p = 0; p < n; ++p) {
    const T* src = reinterpret_cast<const T*>(v_.key_row(a_.kv_head, pos + p));
    if constexpr (std::is_same_v<T, float>) {
      if (d_ % W == 0) {
        krow[p] = src;
        continue;
      }
    }
    widen_row(src, kf_ + p * a_.d_pad);
    krow[p] = kf_ + p * a_.d_pad;
  }
  for (std::size_t p = n; p < W; ++p) krow[p] = krow[0];

  for (std::size_t h = 0; h < a_.heads; ++h) {
    const float* q = a_.q + h * a_.d_pad;
    B acc[W];
    for (std::size_t p = 0; p < W; ++p) acc[p] = B(0.0f);
    for (std::size_t i = 0; i < dw_; i += W) {
      const B qv = B::load_unaligned(q + i);
#pragma GCC unroll 16
      for (std::size_t p = 0; p < W; ++p) acc[p] = xsimd::fma(qv, B::load_unaligned(krow[p] + i), acc[p]);
    }
    row_sums<Arch>(acc).store_unaligned(sc_ + h * W);
  }
}

template <class Arch, class T>
template <std::size_t HT>
void Chunk<Arch, T>::scores_d_major_heads(std::size_t h0, const T* kd, std::size_t off, std::size_t n) {
  const std::size_t bt = v_.block_tokens;
  B acc[HT];
  for (std::size_t hh = 0; hh < HT; ++hh) acc[hh] = B(0.0f);
  const float* q = a_.q + h0 * a_.d_pad;
  for (std::size_t i = 0; i < d_; ++i) {
    const T* src = kd + i * bt + off;
    B kv;
    if (off + W <= bt) {
      kv = load_as_f32<Arch>(src);
    } else {  // the block's row ends inside this tile: never read past it
      T tmp[W] = {};
      std::memcpy(tmp, src, n * sizeof(T));
      kv = load_as_f32<Arch>(tmp);
    }
    for (std::size_t hh = 0; hh < HT; ++hh) acc[hh] = xsimd::fma(B(q[hh * a_.d_pad + i]), kv, acc[hh]);
  }
  for (std::size_t hh = 0; hh < HT; ++hh) acc[hh].store_unaligned(sc_ + (h0 + hh) * W);
}

template <class Arch, class T>
void Chunk<Arch, T>::scores_d_major(std::size_t pos, std::size_t n) {
  const std::size_t bt = v_.block_tokens;
  const T* kd = reinterpret_cast<const T*>(v_.key_block_d_major(a_.kv_head, pos / bt));
  const std::size_t off = pos % bt;
  for (std::size_t h0 = 0; h0 < a_.heads; h0 += kHeadTile) {
    switch (a_.heads - h0) {
      case 1: scores_d_major_heads<1>(h0, kd, off, n); break;
      case 2: scores_d_major_heads<2>(h0, kd, off, n); break;
      case 3: scores_d_major_heads<3>(h0, kd, off, n); break;
      case 4: scores_d_major_heads<4>(h0, kd, off, n); break;
      case 5: scores_d_major_heads<5>(h0, kd, off, n); break;
      case 6: scores_d_major_heads<6>(h0, kd, off, n); break;
      case 7: scores_d_major_heads<7>(h0, kd, off, n); break;
      default: scores_d_major_heads<8>(h0, kd, off, n); break;
    }
  }
}

// Turns the tile's scores into probabilities relative to the running max; returns
// whether any head's max moved (then o and l were/are rescaled by corr_).
template <class Arch, class T>
bool Chunk<Arch, T>::softmax(std::size_t n) {
  alignas(64) static constexpr float kLane[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  const auto valid = B::load_aligned(kLane) < B(float(n));
  const B neg_inf(-kInf);
  bool rescale = false;
  for (std::size_t h = 0; h < a_.heads; ++h) {
    B s = xsimd::select(valid, B::load_unaligned(sc_ + h * W), neg_inf);
    float mh = a_.m[h];
    corr_[h] = 1.0f;
    if (xsimd::any(s > B(mh))) {
      alignas(64) float lanes[W];
      s.store_aligned(lanes);
      float mx = mh;
      for (std::size_t p = 0; p < n; ++p) mx = lanes[p] > mx ? lanes[p] : mx;
      corr_[h] = exp2<Arch>(B(mh - mx)).get(0);
      (B::load_unaligned(lsum_ + h * W) * B(corr_[h])).store_unaligned(lsum_ + h * W);
      a_.m[h] = mh = mx;
      rescale = true;
    }
    const B p = exp2<Arch>(s - B(mh));
    p.store_unaligned(pr_ + h * W);
    (B::load_unaligned(lsum_ + h * W) + p).store_unaligned(lsum_ + h * W);
  }
  return rescale;
}

template <class Arch, class T>
template <std::size_t HT, class R>
void Chunk<Arch, T>::accumulate_v_heads(std::size_t h0, const R* const* vrow, std::size_t n, bool rescale) {
  const std::size_t dp = a_.d_pad;
  float* o = a_.o + h0 * dp;
  const float* pr = pr_ + h0 * W;
  for (std::size_t i = 0; i < dw_; i += W) {
    B acc[HT];
    for (std::size_t hh = 0; hh < HT; ++hh) acc[hh] = B::load_unaligned(o + hh * dp + i);
    if (rescale)
      for (std::size_t hh = 0; hh < HT; ++hh) acc[hh] *= B(corr_[h0 + hh]);
    for (std::size_t p = 0; p < n; ++p) {
      const B vv = load_as_f32<Arch>(vrow[p] + i);
      for (std::size_t hh = 0; hh < HT; ++hh) acc[hh] = xsimd::fma(B(pr[hh * W + p]), vv, acc[hh]);
    }
    for (std::size_t hh = 0; hh < HT; ++hh) acc[hh].store_unaligned(o + hh * dp + i);
  }
}

template <class Arch, class T>
template <class R>
void Chunk<Arch, T>::accumulate_v(const R* const* vrow, std::size_t n, bool rescale) {
  for (std::size_t h0 = 0; h0 < a_.heads; h0 += kHeadTile) {
    switch (a_.heads - h0) {
      case 1: accumulate_v_heads<1>(h0, vrow, n, rescale); break;
      case 2: accumulate_v_heads<2>(h0, vrow, n, rescale); break;
      case 3: accumulate_v_heads<3>(h0, vrow, n, rescale); break;
      case 4: accumulate_v_heads<4>(h0, vrow, n, rescale); break;
      case 5: accumulate_v_heads<5>(h0, vrow, n, rescale); break;
      case 6: accumulate_v_heads<6>(h0, vrow, n, rescale); break;
      case 7: accumulate_v_heads<7>(h0, vrow, n, rescale); break;
      default: accumulate_v_heads<8>(h0, vrow, n, rescale); break;
    }
  }
}

}  // namespace dense_detail

template <class Arch>
void DenseChunk<Arch>::operator()(Arch, const DenseChunkArgs& args) const {
  visit_dtype(args.view->dtype, [&](auto t) { dense_detail::Chunk<Arch, decltype(t)>(args).run(); });
}

}  // namespace sparq::kernels
