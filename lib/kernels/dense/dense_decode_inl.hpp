// Definition of DenseChunk<Arch> (see dense_decode.hpp). Included only by the per-ISA
// instantiation files dense_decode_<isa>.cpp, each built with its ISA's flags.
//
// A tile is up to kSub * W consecutive positions of one block (W = f32 lanes), so its K
// rows and its V rows are contiguous. Query heads are processed in head tiles of
// G = 1, 2, 4, .. W heads (G * P = W with P positions per register block):
//   1. scores: a G x P block of dot products accumulates in W registers while each K
//      batch is widened once, in registers, and used by the G heads (no store of widened
//      K); row_sums reduces the W accumulators into one batch whose lane h*P + p is the
//      score of head h at position p. bf16 rows are widened in "pair order" with one
//      full-width load and two integer ops per 2W values (load_bf16_pair); q is permuted
//      to match once per chunk. d-major keys (the slower layout for dense) are read W
//      positions at a time and multiplied by broadcast q components.
//   2. online softmax in base 2 (q carries log2(e)) on those batches: the running max of
//      each head moves only when a tile exceeds it (checked with one compare per batch),
//      and then o and l are rescaled once.
//   3. o_h += p_h[pos] * V_pos: up to VC batches of a V row are widened once into
//      registers and feed the accumulators of up to kVHeads heads; o stays in pair order
//      for bf16 and is put back in natural order at the end of the chunk.
//
// Measured on Zen 5 (AVX-512, 1 core, GQA g = 4, d = 128, bf16, harness around
// DenseChunk, thread CPU time): K/V in L2: 43 cycles per position (13 ns; scores 22,
// softmax 2.5, V 18 against an FMA bound of 16 + 16); the first version (K widened into
// an L1 tile by zero-extend + shift, FMAs from memory, 16-position tiles) took 84.
// Cold (bench/dense_decode_bench, S = 16k, 512 MiB rotation, idle machine): 33 ns per
// position, 15.5 GB/s vs 28 GB/s for the same run's plain read; with the same data in L3
// (4 MiB): 21 ns per position. So the kernel is bound by compute plus cache latency as
// much as by DRAM: the two add up more than they overlap, and the software prefetch
// distance (2-16 KiB, L1 or L2 hint, or none) changes nothing measurable.
// Where the rest goes (S = 64k, 1 core, same process, experiments since reverted): the
// kernel 19-20 ms; with its score and V loops replaced by a loop of the same FMA count
// per byte (8 per 64-byte line, each line into 8 accumulators) 14.4-14.8 ms; that loop
// alone over K and V, no softmax, 12-12.9 ms; a plain read of the same bytes 8.4-8.8 ms
// (86-90% of the read bandwidth). Not explained by instruction count: scores with
// AVX512-BF16 dot products (q split into two bf16 halves, no widening) were no faster,
// nor were V rows read whole (2 heads x 8 batches) instead of in two halves, nor head
// tiles of 2 (P = 8: each step's q loads serve 8 K rows; 16.3-16.8 vs 16.3-17.4 ms),
// although a probe of that structure over a contiguous buffer ran 15-25% faster than
// one of this (what it missed is below).
// bf16 caches on CPUs with AVX512-BF16 take another path (tile_heads -> bf16_dot::scores
// and accumulate_v, dense_bf16_dot.hpp): q of 4 heads fits in registers as bf16, so K is
// read once in address order with no reloads; 20-27% faster cold on one thread (the A/B
// is in dense_bf16_dot.hpp). A probe located the f32 loops' loss: reloading q from L1
// (8 loads per line: -40%) and reading 4 rows interleaved (-30%) both cut the DRAM
// reads in flight, while the same arithmetic over one sequential stream with q in
// registers ran at 90% of a plain read. f16 caches on AVX-512 score with another loop
// that reads K rows in address order (f16_rows::scores, dense_f16_rows.hpp): about 10%
// faster.
#pragma once

#include <cstddef>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/dense/dense_bf16_dot.hpp"
#include "kernels/dense/dense_f16_rows.hpp"
#include "kernels/dense/dense_decode.hpp"
#include "kernels/simd/load_convert.hpp"
#include "kernels/simd/prefetch_lines.hpp"
#include "kernels/simd/storage.hpp"
#include "sparq/isa.hpp"

// ODR: nothing here may instantiate a non-Arch-templated inline function (STL algorithms,
// std::max, <cmath> overloads): the linker could keep this ISA's copy for every caller,
// and at -O0 nothing is inlined. Plain loops and xsimd (templated on Arch) only.
namespace sparq::kernels {
namespace dense_detail {

inline constexpr float kInf = std::numeric_limits<float>::infinity();

template <class Arch, class T>
class Chunk {
 public:
  using B = fbatch<Arch>;
  static constexpr std::size_t W = B::size;
  static constexpr std::size_t kRegs = W == 16 ? 32 : 16;  // vector registers
  // V: kVHeads heads x VC batches of accumulators, plus VC widened V batches.
  static constexpr std::size_t kVHeads = 4;
  static constexpr std::size_t VC = W == 16 ? 4 : 2;
  // Positions per tile in units of W (see kDenseTileBatches); the V accumulators are
  // also loaded and stored once per tile, so longer tiles amortize that.
  static constexpr std::size_t kSub = kDenseTileBatches;

  explicit Chunk(const DenseChunkArgs& a)
      : v_(*a.view),
        kv_head_(a.kv_head),
        heads_(a.heads),
        d_(v_.head_dim),
        dp_(a.d_pad),
        nc_((v_.head_dim + W - 1) / W),
        dot_(kDotCapable && bf16_dot::handles(v_.head_dim) && has_s_major(v_.layouts) && bf16_dot_active()),
        paired_(!dot_ && std::is_same_v<T, bf16_t> && v_.head_dim % (2 * W) == 0),
        f16_rows_(kF16RowsCapable && has_s_major(v_.layouts)),
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
  // This instantiation can run the AVX512-BF16 loops (dense_bf16_dot.hpp).
  static constexpr bool kDotCapable = std::is_same_v<Arch, xsimd::avx512bw> && std::is_same_v<T, bf16_t>;
  // ... and the f16 score loop (dense_f16_rows.hpp).
  static constexpr bool kF16RowsCapable = std::is_same_v<Arch, xsimd::avx512bw> && std::is_same_v<T, f16_t>;

  // Largest power of two <= min(remaining, W) (8 for the bf16 dot and f16 row loops):
  // the head tiles.
  std::size_t head_tile(std::size_t remaining) const {
    std::size_t g = dot_ || f16_rows_ ? bf16_dot::kMaxHeads : W;
    while (g > remaining) g /= 2;
    return g;
  }
  void tile(const std::byte* block, std::size_t off, std::size_t n);
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
  template <std::size_t G>
  void tile_heads(std::size_t h0, const std::byte* block, std::size_t off, std::size_t n);
  // Calls f.template operator()<Paired>(rows, stride) with the tile's n rows as the f32
  // loops read them: widened into `widened` (d not a multiple of W), in pair order
  // (paired_ bf16) or as stored.
  template <class F>
  void with_rows(const T* rows, float* widened, std::size_t n, F&& f);
  // Scores of heads h0 .. h0 + G - 1 over the tile into sc_, by the loop for the key
  // layout, element type and shape.
  template <std::size_t G>
  void scores(std::size_t h0, const std::byte* block, std::size_t off, std::size_t n);
  template <std::size_t G, bool Paired, class R>
  void scores_rows(std::size_t h0, const R* k, std::size_t stride, std::size_t n, const float* q);
  template <std::size_t G>
  void scores_d_major(std::size_t h0, const T* kd, std::size_t off, std::size_t n);
  template <std::size_t HT>
  void scores_d_major_heads(std::size_t h0, const T* kd, std::size_t off, std::size_t n, float* out);
  template <std::size_t G>
  bool softmax(std::size_t h0, std::size_t n);
  template <std::size_t G, bool Paired, class R>
  void accumulate_v(std::size_t h0, const R* v, std::size_t stride, std::size_t n, bool rescale);
  template <std::size_t G, std::size_t HT, std::size_t NV, bool Paired, class R>
  void accumulate_v_block(std::size_t h0, std::size_t hs, std::size_t c0, const R* v, std::size_t stride,
                          std::size_t n, bool rescale);
  // Widens one row of d elements into dst[0, nc_ * W), zero beyond d.
  void widen_row(const T* src, float* dst) const;
  // q of all heads in bf16 ([heads][d]) for the dot loops, in qp_'s space.
  std::uint16_t* q_bf16() const { return reinterpret_cast<std::uint16_t*>(qp_); }
  // Pair order <-> natural order of one row of d values (see load_bf16_pair).
  void to_pair_order(const float* src, float* dst) const;
  void from_pair_order(const float* src, float* dst) const;

  const LayerView& v_;
  const std::size_t kv_head_;
  const std::size_t heads_;
  const std::size_t d_;      // head_dim
  const std::size_t dp_;     // row stride of q and o
  const std::size_t nc_;     // batches per row: ceil(d / W)
  const bool dot_;           // bf16 dot-product loops (q_bf16() in qp_, o in unpack order)
  const bool paired_;        // bf16 rows read in pair order (d a multiple of 2W)
  const bool f16_rows_;      // f16 scores by f16_rows::scores where it handles the tile's shape
  const float* const q_;     // [heads][dp], natural order
  float* const o_;           // [heads][dp], pair order while paired_
  float* const m_;           // [heads]
  float* const l_;           // [heads]
  float* const kf_;          // [kSub*W][nc*W] widened K tile (odd d); scratch otherwise
  float* const vf_;          // [kSub*W][nc*W] widened V tile (odd d)
  float* const qp_;          // [heads][dp] q in pair order (paired_)
  float* const sc_;          // [kSub*G][W] scores of the tile, lane h*P + p of batch b = position b*P + p
  float* const pr_;          // [kSub*G][W] 2^(s - m), same layout
  float* const mvec_;        // per head tile at h0*W: running max of head h in lanes h*P .. h*P+P-1
  float* const lsum_;        // per head tile at h0*W: running sums, same layout
  float* const corr_;        // [heads] rescaling factor of this tile
  NextTile pf_;
  const std::byte* kd_ = nullptr;  // the current block's d-major key copy (no S-major keys kept)
  // The hardware prefetchers stop at 4 KiB page ends, and the kernel's access order (P
  // rows at a time for K, two passes of half rows for V) trains them poorly: a plain read
  // of the same blocks in this order ran at 16 GB/s vs 20 sequentially (per CPU-second,
  // loaded machine), 18 with a 4 KiB software prefetch stream.
  static constexpr std::size_t kAheadBytes = 4096;
  const std::size_t ahead_rows_ = (kAheadBytes + d_ * sizeof(T) - 1) / (d_ * sizeof(T));
};

template <class Arch, class T>
void Chunk<Arch, T>::widen_row(const T* src, float* dst) const {
  const std::size_t full = d_ / W;
  for (std::size_t c = 0; c < full; ++c) load_as_f32<Arch>(src + c * W).store_unaligned(dst + c * W);
  if (full < nc_) {
    T tmp[W] = {};
    std::memcpy(tmp, src + full * W, (d_ - full * W) * sizeof(T));
    load_as_f32<Arch>(tmp).store_unaligned(dst + full * W);
  }
}

template <class Arch, class T>
void Chunk<Arch, T>::to_pair_order(const float* src, float* dst) const {
  for (std::size_t c = 0; c < d_; c += 2 * W)
    for (std::size_t j = 0; j < W; ++j) {
      dst[c + j] = src[c + 2 * j];
      dst[c + W + j] = src[c + 2 * j + 1];
    }
}

template <class Arch, class T>
void Chunk<Arch, T>::from_pair_order(const float* src, float* dst) const {
  for (std::size_t c = 0; c < d_; c += 2 * W)
    for (std::size_t j = 0; j < W; ++j) {
      dst[c + 2 * j] = src[c + j];
      dst[c + 2 * j + 1] = src[c + W + j];
    }
}

template <class Arch, class T>
void Chunk<Arch, T>::run(std::size_t begin, std::size_t end) {
  for (std::size_t i = 0; i < heads_ * dp_; ++i) o_[i] = 0.0f;
  for (std::size_t h = 0; h < heads_; ++h) m_[h] = -kInf;
  for (std::size_t i = 0; i < heads_ * W; ++i) {
    lsum_[i] = 0.0f;
    mvec_[i] = -kInf;
  }
  if (paired_)
    for (std::size_t h = 0; h < heads_; ++h) to_pair_order(q_ + h * dp_, qp_ + h * dp_);
  if (dot_) bf16_dot::round_rows(q_, dp_, heads_, d_, q_bf16());
  const std::size_t bt = v_.block_tokens;
  const bool s_major = has_s_major(v_.layouts);
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
      const std::byte* nb = v_.block(kv_head_, next / bt);
      const std::size_t row = d_ * sizeof(T);
      pf_.k = s_major ? nb + v_.k_s_major_offset + (next % bt) * row : nullptr;
      pf_.v = nb + v_.v_offset + (next % bt) * row;
      pf_.n = tile_len(next);
    }
    if (!s_major) kd_ = v_.key_block_d_major(kv_head_, pos / bt);
    tile(v_.block(kv_head_, pos / bt), pos % bt, n);
    pos += n;
  }
  for (std::size_t h0 = 0; h0 < heads_;) {
    const std::size_t g = head_tile(heads_ - h0), p = W / g;
    for (std::size_t h = 0; h < g; ++h) {
      float l = 0.0f;
      for (std::size_t j = 0; j < p; ++j) l += lsum_[h0 * W + h * p + j];
      l_[h0 + h] = l;
    }
    h0 += g;
  }
  if (paired_ || dot_)
    for (std::size_t h = 0; h < heads_; ++h) {
      for (std::size_t i = 0; i < d_; ++i) kf_[i] = o_[h * dp_ + i];
      if (dot_)
        bf16_dot::to_natural_order(kf_, o_ + h * dp_, d_);
      else
        from_pair_order(kf_, o_ + h * dp_);
    }
}

template <class Arch, class T>
void Chunk<Arch, T>::tile(const std::byte* block, std::size_t off, std::size_t n) {
  for (std::size_t h0 = 0; h0 < heads_;) {
    const std::size_t g = head_tile(heads_ - h0);
    switch (g) {
      case 1: tile_heads<1>(h0, block, off, n); break;
      case 2: tile_heads<2>(h0, block, off, n); break;
      case 4: tile_heads<4>(h0, block, off, n); break;
      case 8:
        if constexpr (W >= 8) tile_heads<8>(h0, block, off, n);
        break;
      default:
        if constexpr (W >= 16) tile_heads<16>(h0, block, off, n);
        break;
    }
    h0 += g;
  }
}

template <class Arch, class T>
template <std::size_t G>
void Chunk<Arch, T>::tile_heads(std::size_t h0, const std::byte* block, std::size_t off, std::size_t n) {
  if constexpr (kDotCapable && G <= bf16_dot::kMaxHeads) {
    if (dot_) {
      const auto rows = [&](std::size_t offset) {
        return reinterpret_cast<const std::uint16_t*>(block + offset) + off * d_;
      };
      bf16_dot::scores(rows(v_.k_s_major_offset), d_, n, G, q_bf16() + h0 * d_, sc_);
      const bool rescale = softmax<G>(h0, n);
      bf16_dot::accumulate_v(rows(v_.v_offset), d_, n, G, pr_, reinterpret_cast<std::uint32_t*>(kf_), o_ + h0 * dp_,
                             dp_, rescale ? corr_ + h0 : nullptr);
      return;
    }
  }
  scores<G>(h0, block, off, n);
  const bool rescale = softmax<G>(h0, n);
  const T* v = reinterpret_cast<const T*>(block + v_.v_offset) + off * d_;
  with_rows(v, vf_, n, [&]<bool Paired>(const auto* rows, std::size_t stride) {
    accumulate_v<G, Paired>(h0, rows, stride, n, rescale);
  });
}

template <class Arch, class T>
template <class F>
void Chunk<Arch, T>::with_rows(const T* rows, float* widened, std::size_t n, F&& f) {
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

template <class Arch, class T>
template <std::size_t G>
void Chunk<Arch, T>::scores(std::size_t h0, const std::byte* block, std::size_t off, std::size_t n) {
  if (!has_s_major(v_.layouts)) {
    scores_d_major<G>(h0, reinterpret_cast<const T*>(kd_), off, n);
    return;
  }
  const T* k = reinterpret_cast<const T*>(block + v_.k_s_major_offset) + off * d_;
  if constexpr (kF16RowsCapable && G <= bf16_dot::kMaxHeads) {
    if (f16_rows_ && f16_rows::handles(G, d_)) {
      f16_rows::scores(reinterpret_cast<const std::uint16_t*>(k), d_, n, G, q_ + h0 * dp_, dp_, sc_);
      return;
    }
  }
  with_rows(k, kf_, n, [&]<bool Paired>(const auto* rows, std::size_t stride) {
    scores_rows<G, Paired>(h0, rows, stride, n, Paired ? qp_ : q_);
  });
}

template <class Arch, class T>
template <std::size_t G, bool Paired, class R>
void Chunk<Arch, T>::scores_rows(std::size_t h0, const R* k, std::size_t stride, std::size_t n, const float* q) {
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

template <class Arch, class T>
template <std::size_t HT>
void Chunk<Arch, T>::scores_d_major_heads(std::size_t h0, const T* kd, std::size_t off, std::size_t n, float* out) {
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

template <class Arch, class T>
template <std::size_t G>
void Chunk<Arch, T>::scores_d_major(std::size_t h0, const T* kd, std::size_t off, std::size_t n) {
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

// Turns the tile's scores into probabilities relative to the running max; returns
// whether any head's max moved (then l was, and o is about to be, rescaled by corr_).
template <class Arch, class T>
template <std::size_t G>
bool Chunk<Arch, T>::softmax(std::size_t h0, std::size_t n) {
  constexpr std::size_t P = W / G;
  // Lane i of a batch holds position (batch * P + i % P).
  alignas(64) static constexpr float kLanePos[16] = {0 % P,  1 % P,  2 % P,  3 % P,  4 % P,  5 % P,
                                                     6 % P,  7 % P,  8 % P,  9 % P,  10 % P, 11 % P,
                                                     12 % P, 13 % P, 14 % P, 15 % P};
  float* mv = mvec_ + h0 * W;
  float* ls = lsum_ + h0 * W;
  B mb = B::load_unaligned(mv);
  const std::size_t nb = (n + P - 1) / P;  // batches of the tile
  // Lane-wise max over the tile's batches; each head's max is then the max of its P lanes.
  // (Scanning the scores of each head in scalar code whenever a max moved, which happens
  // in most tiles of a chunk, took 18% of the kernel's samples with the data in L3; this
  // way dense runs about 10% faster there and 8% faster cold on one thread, bf16, 64k.)
  B tile_max(-kInf);
  for (std::size_t b = 0; b < nb; ++b) {
    B s = B::load_unaligned(sc_ + b * W);
    if ((b + 1) * P > n) {
      s = xsimd::select(B::load_aligned(kLanePos) + B(float(b * P)) < B(float(n)), s, B(-kInf));
      s.store_unaligned(sc_ + b * W);
    }
    tile_max = xsimd::max(tile_max, s);
  }
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
    const B p = exp2<Arch>(B::load_unaligned(sc_ + b * W) - mb);
    p.store_unaligned(pr_ + b * W);
    lsum += p;
  }
  lsum.store_unaligned(ls);
  return rescale;
}

template <class Arch, class T>
template <std::size_t G, std::size_t HT, std::size_t NV, bool Paired, class R>
void Chunk<Arch, T>::accumulate_v_block(std::size_t h0, std::size_t hs, std::size_t c0, const R* v,
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

template <class Arch, class T>
template <std::size_t G, bool Paired, class R>
void Chunk<Arch, T>::accumulate_v(std::size_t h0, const R* v, std::size_t stride, std::size_t n, bool rescale) {
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

}  // namespace dense_detail

template <class Arch>
void DenseChunk<Arch>::operator()(Arch, const DenseChunkArgs& args) const {
  visit_dtype(args.view->dtype,
              [&](auto t) { dense_detail::Chunk<Arch, decltype(t)>(args).run(args.begin, args.end); });
}

}  // namespace sparq::kernels
