// SparQ stage 1 (DESIGN §1 step 2): approximate logits of one chunk of positions of one
// KV head from r query components, and the chunk's softmax summary.
//
//   z_h[j] = Σ_{u} qsel[h][u] · K[j][rows[u]]     for j in [j_begin, j_end), h < heads
//
// qsel carries log2(e)/τ_h already, so z is in the log2 domain (2^z is the unnormalized
// ŝ). A head that does not use a row (per-head selection reads the union of the heads'
// rows) has qsel = 0 there, which adds exactly +0. Keys come from the d-major copy (fast
// path: `rows.size()` contiguous runs of B elements per block) or, when the cache keeps
// only S-major keys, from the selected components of each S-major row (slow path, same
// arithmetic: the components are first copied into a d-major tile).
//
// Chunk summary: max_h = max_j z_h[j] and sum_h = Σ_j 2^(z_h[j] - max_h). With
// store_exp the kernel overwrites z by 2^(z - max_h) (GQA-shared selection ranks by the
// sum of the heads' ŝ, which needs these, see sparq_topk.hpp).
//
// Declarations only (baseline-safe); definitions in sparq_stage1_inl.hpp, instantiated
// per ISA by sparq_stage1_{avx512,avx2,generic}.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/simd/arch_list.hpp"
#include "sparq/types.hpp"

namespace sparq::kernels {

struct SparqStage1Args {
  // Key storage of one KV head: block b's keys are at blocks[b * block_stride] +
  // key_offset (S-major rows: blocks = view.blocks + head, key_offset =
  // view.k_s_major_offset; d-major copies: blocks = view.d_major_blocks + head,
  // key_offset = 0; block_stride = view.kv_heads).
  const std::byte* const* blocks = nullptr;
  std::size_t block_stride = 1;
  std::size_t block_tokens = 0;  // B
  std::size_t head_dim = 0;      // d
  DType dtype = DType::f32;
  bool d_major = true;  // read the d-major copy; false: components of S-major rows
  // An int8 d-major copy (CacheConfig::d_major_type): its elements are int8 and block b's
  // component i is worth scales[b * block_stride][i] times its value. Null: the copy
  // holds `dtype` like the rest of the cache.
  const float* const* scales = nullptr;
  std::size_t key_offset = 0;
  std::size_t row_stride = 0;      // d-major: elements from one row of a copy to the next
  std::size_t s_major_stride = 0;  // S-major: elements from one position's key row to the next
  // Positions [j_begin, j_end); j_begin is a multiple of B when d_major.
  std::size_t j_begin = 0;
  std::size_t j_end = 0;
  // Components read, ascending, and per head their coefficients.
  const std::uint32_t* rows = nullptr;
  std::size_t n_rows = 0;
  const float* qsel = nullptr;  // [heads][n_rows]
  std::size_t heads = 0;
  // Output: z[h * z_stride + (j - j_begin)].
  float* z = nullptr;
  std::size_t z_stride = 0;
  bool store_exp = false;
  float* chunk_max = nullptr;  // [heads]
  float* chunk_sum = nullptr;  // [heads]
  // Scratch of at least sparq_stage1_tile_bytes(n_rows, heads) bytes, 16-byte aligned (tails, the
  // S-major gather and an int8 copy's per-block coefficients).
  std::byte* tile = nullptr;
};

// The S-major gather stages kSparqStage1Tile positions at a time through a d-major tile;
// block tails shorter than a vector are staged through a zero-padded copy.
inline constexpr std::size_t kSparqStage1Tile = 64;
[[nodiscard]] constexpr std::size_t sparq_stage1_tile_bytes(std::size_t n_rows, std::size_t heads) noexcept {
  return n_rows * (2 * sizeof(void*) + kMaxLanes * 4 + kSparqStage1Tile * 4 + heads * 4);
}

template <class Arch>
struct SparqStage1 {
  void operator()(Arch, const SparqStage1Args& args) const noexcept;
};

#define SPARQ_STAGE1_EXTERN(isa, arch) extern template struct SparqStage1<arch>;
SPARQ_FOR_EACH_ARCH(SPARQ_STAGE1_EXTERN)
#undef SPARQ_STAGE1_EXTERN

}  // namespace sparq::kernels
