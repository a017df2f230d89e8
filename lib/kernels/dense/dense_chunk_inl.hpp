// The dense kernels' shared machinery (see dense_decode.hpp): the tile loop, the online
// softmax and the software prefetch, in one class template per (ISA, storage type,
// inner loops). Included only by the per-ISA instantiation files (through
// dense_decode_inl.hpp), each built with its ISA's flags.
//
// A tile is up to kSub * W consecutive positions of one block (W = f32 lanes), so its K
// rows and its V rows are contiguous. Query heads go in head tiles of G = 1, 2, 4, .. heads
// (G * P = W with P positions per score batch):
//   1. scores of the G heads over the tile, one batch per P positions: lane h*P + p holds
//      head h's score at position p (the inner loops: dense_xsimd_loops_inl.hpp,
//      dense_rows16.hpp);
//   2. online softmax in base 2 (q carries log2(e)): a head's running max moves only when
//      the tile exceeds it, and then o and l are rescaled once;
//   3. o_h += p_h[pos] * V_pos, each V row widened once for up to kVHeads heads.
// Design notes and measurements: docs/performance.md ("Dense decode").
#pragma once

#include <cstddef>
#include <cstring>
#include <type_traits>

#include "kernels/dense/dense_decode.hpp"
#include "kernels/dense/dense_rows16.hpp"
#include "kernels/simd/load_convert.hpp"
#include "kernels/simd/prefetch_lines.hpp"
#include "kernels/simd/scalar_ops.hpp"
#include "kernels/simd/storage.hpp"
#include "kernels/softmax_range.hpp"

// ODR: nothing here may instantiate a non-Arch-templated inline function (STL algorithms,
// std::max, <cmath> overloads): the linker could keep this ISA's copy for every caller,
// and at -O0 nothing is inlined. Plain loops and xsimd (templated on Arch) only.
namespace sparq::kernels {
namespace dense_detail {
namespace {

constexpr float kInf = kInfF;

template <class Arch, class T, DenseLoops Loops>
class Chunk {
 public:
  using B = fbatch<Arch>;
  static constexpr std::size_t W = B::size;
  static constexpr std::size_t kRegs = W == 16 ? 32 : 16;  // vector registers
  // V: kVHeads heads x VC batches of accumulators, plus VC widened V batches.
  static constexpr std::size_t kVHeads = 4;
  static constexpr std::size_t VC = W == 16 ? 4 : 2;
  // Positions per tile in units of W; the V accumulators are also loaded and stored once
  // per tile, so longer tiles amortize that.
  static constexpr std::size_t kSub = kDenseTileBatches;
  static constexpr bool kRows16 = Loops == DenseLoops::rows16;
  static_assert(!kRows16 || (std::is_same_v<Arch, xsimd::avx512bw> && !std::is_same_v<T, float>));

  explicit Chunk(const DenseChunkArgs& a)
      : v_(*a.view),
        kv_head_(a.kv_head),
        heads_(a.heads),
        d_(v_.head_dim),
        dp_(a.d_pad),
        nc_((v_.head_dim + W - 1) / W),
        paired_(std::is_same_v<T, bf16_t> && v_.head_dim % (2 * W) == 0),
        q_(a.q),
        o_(a.o),
        m_(a.m),
        l_(a.l),
        kf_(a.work),
        vf_(kf_ + kSub * kMaxLanes * a.d_pad),
        qp_(vf_ + kSub * kMaxLanes * a.d_pad),
        sc_(qp_ + a.heads * a.d_pad),
        pr_(sc_ + kSub * kMaxLanes * kMaxLanes),
        mvec_(pr_ + kSub * kMaxLanes * kMaxLanes),
        lsum_(mvec_ + a.heads * kMaxLanes),
        corr_(lsum_ + a.heads * kMaxLanes) {}

  void run(std::size_t begin, std::size_t end);

 private:
  static xsimd::batch_bool<float, Arch> s_nan_false() noexcept { return B(0.0f) != B(0.0f); }
  // Head tiles: the largest power of two <= min(remaining, W), at most 8 for the AVX-512
  // loops.
  std::size_t head_tile(std::size_t remaining) const {
    std::size_t g = kRows16 ? rows16::kMaxHeads : W;
    while (g > remaining) g /= 2;
    return g;
  }
  void tile(const std::byte* block, std::size_t off, std::size_t n);
  template <std::size_t G>
  void tile_heads(std::size_t h0, const std::byte* block, std::size_t off, std::size_t n);
  template <std::size_t G>
  bool softmax(std::size_t h0, std::size_t n);
  // Software prefetch kAheadBytes ahead in row order of one stream (this tile's rows
  // `cur`, then the next tile's `next`), for the row at tile position p + ahead_rows_.
  void prefetch_ahead(const std::byte* cur, std::size_t n, const std::byte* next, std::size_t p) const {
    const std::size_t row = d_ * sizeof(T);
    std::size_t q = p + ahead_rows_;
    const std::byte* base = cur;
    if (q >= n) {
      q -= n;
      base = next;
      if (!base || q >= pf_.n) return;
    }
    prefetch_lines(base + q * row, row);
  }
  struct NextTile {
    const std::byte* k = nullptr;  // S-major K rows of the next tile (nullptr: none)
    const std::byte* v = nullptr;  // its V rows
    std::size_t n = 0;
  };

  // The portable f32 loops (dense_xsimd_loops_inl.hpp); the rows16 kernel uses them for
  // V and for the head tiles its score loop does not take.
  template <class F>
  void with_rows(const T* rows, float* widened, std::size_t n, F&& f);
  template <std::size_t G>
  void scores(std::size_t h0, const std::byte* block, std::size_t off, std::size_t n);
  template <std::size_t G, bool Paired, class R>
  void scores_rows(std::size_t h0, const R* k, std::size_t stride, std::size_t n, const float* q);
  template <std::size_t G>
  void scores_d_major(std::size_t h0, const T* kd, std::size_t off, std::size_t n);
  template <std::size_t HT>
  void scores_d_major_heads(std::size_t h0, const T* kd, std::size_t off, std::size_t n, float* out);
  template <std::size_t G, bool Paired, class R>
  void accumulate_v(std::size_t h0, const R* v, std::size_t stride, std::size_t n, bool rescale);
  template <std::size_t G, std::size_t HT, std::size_t NV, bool Paired, class R>
  void accumulate_v_block(std::size_t h0, std::size_t hs, std::size_t c0, const R* v, std::size_t stride, std::size_t n,
                          bool rescale);
  void widen_row(const T* src, float* dst) const;
  // Pair order <-> natural order of one row of d values (see load_bf16_pair).
  void to_pair_order(const float* src, float* dst) const;
  void from_pair_order(const float* src, float* dst) const;


  const LayerView& v_;
  const std::size_t kv_head_;
  const std::size_t heads_;
  const std::size_t d_;   // head_dim
  const std::size_t dp_;  // row stride of q and o
  const std::size_t nc_;  // batches per row: ceil(d / W)
  const bool paired_;     // bf16 rows read in pair order (d a multiple of 2W)
  const float* const q_;  // [heads][dp], natural order
  float* const o_;        // [heads][dp], pair order while paired_
  float* const m_;        // [heads]
  float* const l_;        // [heads]
  float* const kf_;       // [kSub*W][nc*W] widened K tile (odd d); scratch otherwise
  float* const vf_;       // [kSub*W][nc*W] widened V tile (odd d)
  float* const qp_;       // [heads][dp] q in pair order (paired_)
  float* const sc_;       // [kSub*G][W] scores of the tile, lane h*P + p of batch b = position b*P + p
  float* const pr_;       // [kSub*G][W] weights 2^(s - m - kWeightShift), same layout
  float* const mvec_;     // per head tile at h0*W: running max of head h in lanes h*P .. h*P+P-1
  float* const lsum_;     // per head tile at h0*W: running sums, same layout
  float* const corr_;     // [heads] rescaling factor of this tile
  NextTile pf_;
  bool nan_score_ = false;  // a NaN logit: the chunk's sums become NaN, and decode() reports it
  const std::byte* kd_ = nullptr;  // the current block's d-major key copy (no S-major keys kept)
  // The hardware prefetchers stop at 4 KiB page ends and the loops' access order trains
  // them poorly; a 4 KiB software prefetch stream helps (docs/performance.md).
  static constexpr std::size_t kAheadBytes = 4096;
  const std::size_t ahead_rows_ = (kAheadBytes + d_ * sizeof(T) - 1) / (d_ * sizeof(T));
};

template <class Arch, class T, DenseLoops Loops>
void Chunk<Arch, T, Loops>::run(std::size_t begin, std::size_t end) {
  for (std::size_t i = 0; i < heads_ * dp_; ++i) o_[i] = 0.0f;
  for (std::size_t h = 0; h < heads_; ++h) m_[h] = -kInf;
  for (std::size_t i = 0; i < heads_ * W; ++i) {
    lsum_[i] = 0.0f;
    mvec_[i] = -kInf;
  }
  if (paired_)
    for (std::size_t h = 0; h < heads_; ++h) to_pair_order(q_ + h * dp_, qp_ + h * dp_);
  const std::size_t bt = v_.block_tokens;
  const bool s_major = keeps_s_major(v_.layouts);
  auto tile_len = [&](std::size_t pos) {
    std::size_t n = bt - pos % bt;  // a tile stays inside one block
    if (n > end - pos) n = end - pos;
    return n < kSub * W ? n : kSub * W;
  };
  for (std::size_t pos = begin; pos < end;) {
    const std::size_t n = tile_len(pos);
    // Where the prefetch stream continues after this tile.
    pf_ = {};
    if (const std::size_t next = pos + n; next < end) {
      const std::byte* nb = block_of(v_, kv_head_, next / bt);
      const std::size_t row = d_ * sizeof(T);
      pf_.k = s_major ? nb + v_.k_s_major_offset + (next % bt) * row : nullptr;
      pf_.v = nb + v_.v_offset + (next % bt) * row;
      pf_.n = tile_len(next);
    }
    if (!s_major) kd_ = d_major_block_of(v_, kv_head_, pos / bt);
    tile(block_of(v_, kv_head_, pos / bt), pos % bt, n);
    pos += n;
  }
  for (std::size_t h0 = 0; h0 < heads_;) {
    const std::size_t g = head_tile(heads_ - h0), p = W / g;
    for (std::size_t h = 0; h < g; ++h) {
      float l = 0.0f;
      for (std::size_t j = 0; j < p; ++j) l += lsum_[h0 * W + h * p + j];
      l_[h0 + h] = nan_score_ ? __builtin_nanf("") : l;
    }
    h0 += g;
  }
  if (paired_)
    for (std::size_t h = 0; h < heads_; ++h) {
      for (std::size_t i = 0; i < d_; ++i) kf_[i] = o_[h * dp_ + i];
      from_pair_order(kf_, o_ + h * dp_);
    }
}

template <class Arch, class T, DenseLoops Loops>
void Chunk<Arch, T, Loops>::tile(const std::byte* block, std::size_t off, std::size_t n) {
  for (std::size_t h0 = 0; h0 < heads_;) {
    const std::size_t g = head_tile(heads_ - h0);
    switch (g) {
      case 1:
        tile_heads<1>(h0, block, off, n);
        break;
      case 2:
        tile_heads<2>(h0, block, off, n);
        break;
      case 4:
        tile_heads<4>(h0, block, off, n);
        break;
      case 8:
        if constexpr (W >= 8) tile_heads<8>(h0, block, off, n);
        break;
      default:
        if constexpr (W >= 16 && !kRows16) tile_heads<16>(h0, block, off, n);
        break;
    }
    h0 += g;
  }
}

template <class Arch, class T, DenseLoops Loops>
template <std::size_t G>
void Chunk<Arch, T, Loops>::tile_heads(std::size_t h0, const std::byte* block, std::size_t off, std::size_t n) {
  scores<G>(h0, block, off, n);
  const bool rescale = softmax<G>(h0, n);
  const T* v = reinterpret_cast<const T*>(block + v_.v_offset) + off * d_;
  with_rows(v, vf_, n, [&]<bool Paired>(const auto* rows, std::size_t stride) {
    accumulate_v<G, Paired>(h0, rows, stride, n, rescale);
  });
}

// Turns the tile's scores into probabilities relative to the running max; returns
// whether any head's max moved (then l was, and o is about to be, rescaled by corr_).
template <class Arch, class T, DenseLoops Loops>
template <std::size_t G>
bool Chunk<Arch, T, Loops>::softmax(std::size_t h0, std::size_t n) {
  constexpr std::size_t P = W / G;
  // Lane i of a batch holds position (batch * P + i % P).
  alignas(64) static constexpr float kLanePos[16] = {0 % P, 1 % P, 2 % P,  3 % P,  4 % P,  5 % P,  6 % P,  7 % P,
                                                     8 % P, 9 % P, 10 % P, 11 % P, 12 % P, 13 % P, 14 % P, 15 % P};
  float* mv = mvec_ + h0 * W;
  float* ls = lsum_ + h0 * W;
  B mb = B::load_unaligned(mv);
  const std::size_t nb = (n + P - 1) / P;  // batches of the tile
  // Lane-wise max over the tile's batches; each head's max is then the max of its P lanes
  // (cheaper than scanning each head's scores whenever a max moves: docs/performance.md).
  B tile_max(-kInf);
  auto nan = s_nan_false();
  for (std::size_t b = 0; b < nb; ++b) {
    B s = clamp_score<Arch>(B::load_unaligned(sc_ + b * W), kScoreLimit);  // softmax_range.hpp
    if ((b + 1) * P > n) s = xsimd::select(B::load_aligned(kLanePos) + B(float(b * P)) < B(float(n)), s, B(-kInf));
    s.store_unaligned(sc_ + b * W);
    nan = nan || xsimd::isnan(s);  // not s != s: xsimd compares ordered on AVX and AVX-512
    tile_max = xsimd::max(tile_max, s);  // a NaN lane never moves the max below; its weight is 0
  }
  if (xsimd::any(nan)) nan_score_ = true;
  B lsum = B::load_unaligned(ls);
  bool rescale = false;
  if (xsimd::any(tile_max > mb)) {
    alignas(64) float cv[W];
    alignas(64) float lane_max[W];
    tile_max.store_aligned(lane_max);
    for (std::size_t h = 0; h < G; ++h) {
      const float mh = m_[h0 + h];
      float mx = mh;
      for (std::size_t pl = 0; pl < P; ++pl) mx = lane_max[h * P + pl] > mx ? lane_max[h * P + pl] : mx;
      float c = 1.0f;
      if (mx > mh) {
        c = exp2<Arch>(B(mh - mx)).get(0);
        m_[h0 + h] = mx;
        rescale = true;
      }
      corr_[h0 + h] = c;
      for (std::size_t pl = 0; pl < P; ++pl) {
        mv[h * P + pl] = m_[h0 + h];
        cv[h * P + pl] = c;
      }
    }
    mb = B::load_unaligned(mv);
    lsum *= B::load_aligned(cv);
  }
  for (std::size_t b = 0; b < nb; ++b) {
    const B p = exp2<Arch>(B::load_unaligned(sc_ + b * W) - mb) * B(kWeightScale);
    p.store_unaligned(pr_ + b * W);
    lsum += p;
  }
  lsum.store_unaligned(ls);
  return rescale;
}

}  // namespace
}  // namespace dense_detail
}  // namespace sparq::kernels
