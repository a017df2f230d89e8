// Dense decode, the per-ISA part: exact attention of `heads` query heads that share one
// KV head over a range of positions, reading each K and V row once for all of them.
// Returns an unnormalized partial (m, l, o) that dense_decode.cpp merges with the other
// chunks' by log-sum-exp. Threads, chunking, merging and validation live in
// dense_decode.cpp (built at the baseline); this header declares the Arch-templated
// functors, defined in dense_decode_inl.hpp and instantiated in dense_decode_<isa>.cpp.
//
// Three kernels share the tile loop and the online softmax and differ in their inner
// loops; dense_decode.cpp chooses one per call (dense_loops_for), like the ISA:
//   xsimd     portable f32 loops for every ISA, dtype and key layout;
//   rows16    f16 and bf16 caches on AVX-512: K rows widened in registers in address
//             order, f32 arithmetic (dense_rows16.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/dense/dense_rows16.hpp"
#include "kernels/simd/arch_list.hpp"
#include "sparq/kv_cache.hpp"

namespace sparq::kernels {

struct DenseChunkArgs {
  const LayerView* view = nullptr;
  std::size_t kv_head = 0;
  std::size_t begin = 0;  // positions [begin, end) of the KV head, end <= view->length
  std::size_t end = 0;
  std::size_t heads = 0;     // query heads (g; g * n_new for a causal prefix)
  std::size_t d_pad = 0;     // row stride of q and o: head_dim rounded up to kMaxLanes
  const float* q = nullptr;  // [heads][d_pad], already multiplied by scale * log2(e), zero padded
  float* o = nullptr;        // out [heads][d_pad]: sum_j w_j V_j, w_j = 2^(s_j - m - kWeightShift) (padding 0)
  float* m = nullptr;        // out [heads]: max_j s_j, log2 units
  float* l = nullptr;        // out [heads]: sum_j w_j (softmax_range.hpp)
  float* work = nullptr;     // scratch of dense_work_floats(heads, d_pad) floats, 64-byte aligned
};

// A dense tile is up to kDenseTileBatches * W positions of one block: long tiles keep each
// of the two streams (K rows, then V rows) sequential for longer (docs/performance.md).
inline constexpr std::size_t kDenseTileBatches = 16;

[[nodiscard]] constexpr std::size_t dense_work_floats(std::size_t heads, std::size_t d_pad) noexcept {
  // widened K and V tiles [T][d_pad]; q in pair order [heads][d_pad]; scores and
  // probabilities of a tile [T][W]; running max and sums [heads][W]; corrections [heads].
  constexpr std::size_t L = kMaxLanes, T = kDenseTileBatches * kMaxLanes;
  return 2 * T * d_pad + heads * d_pad + 2 * T * L + 2 * heads * L + (heads + L - 1) / L * L;
}

enum class DenseLoops : std::uint8_t { xsimd, rows16 };

// The kernel for a call: the AVX-512 loops for 16-bit caches with S-major keys (head
// tiles and row lengths they do not take fall back to the portable loops inside them),
// the portable ones otherwise.
[[nodiscard]] constexpr DenseLoops dense_loops_for(Isa isa, DType dtype, KeyLayout layouts) noexcept {
  return isa == Isa::avx512 && has_s_major(layouts) && dtype != DType::f32 ? DenseLoops::rows16 : DenseLoops::xsimd;
}

template <class Arch, DenseLoops Loops = DenseLoops::xsimd>
struct DenseChunk {
  void operator()(Arch, const DenseChunkArgs& args) const;
};

#define SPARQ_EXTERN_DENSE_CHUNK(isa, arch) extern template struct DenseChunk<arch>;
SPARQ_FOR_EACH_ARCH(SPARQ_EXTERN_DENSE_CHUNK)
#undef SPARQ_EXTERN_DENSE_CHUNK
extern template struct DenseChunk<::xsimd::avx512bw, DenseLoops::rows16>;

}  // namespace sparq::kernels
