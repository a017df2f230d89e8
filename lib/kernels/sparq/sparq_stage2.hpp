// SparQ stage 2 (DESIGN §1 step 5): exact attention of a group of query heads over a
// list of fetched positions, as a partial online-softmax state that the caller merges
// over chunks (log-sum-exp, in chunk order, so the result is thread-count independent).
//
//   x_h[j] = q_h · K[j]  (q_h carries scale·log2(e), so x is in the log2 domain)
//   m_h = max_j x_h[j],  l_h = Σ_j w_h[j],  acc_h = Σ_j w_h[j] V[j],
//   w_h[j] = 2^(x_h[j] - m_h - kWeightShift)  (softmax_range.hpp: x clamped to f32 range)
//
// over j in positions[0, n) (ascending), for heads h < heads; with `member`, head h only
// attends to the positions it selected (per-head selection reads the union of the
// heads' rows once; a non-member contributes exactly 0). Each K and V row is read once
// for all heads. Keys come from the S-major copy, or (cache without it) are gathered
// component by component from the d-major copy: slower, same arithmetic.
//
// Declarations only (baseline-safe); definitions in sparq_stage2_inl.hpp, instantiated
// per ISA by sparq_stage2_{avx512,avx2,generic}.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/simd/arch_list.hpp"
#include "sparq/types.hpp"

namespace sparq::kernels {

// Positions per softmax tile.
inline constexpr std::size_t kSparqStage2Tile = 16;

// Row stride of q and acc: d rounded up to a multiple of every compiled vector width.
namespace {  // internal linkage: also called from the per-ISA code (tools/check-odr.sh)
[[nodiscard]] constexpr std::size_t sparq_padded_dim(std::size_t d) noexcept {
  return (d + kMaxLanes - 1) / kMaxLanes * kMaxLanes;
}
}  // namespace

struct SparqStage2Args {
  // Block b of the KV head is blocks[b * block_stride] (LayerView::block(head, b) with
  // blocks = view.blocks + head and block_stride = view.kv_heads); its values are at
  // value_offset. Its keys are at key_blocks[b * block_stride] + key_offset: the block
  // itself and k_s_major_offset, or its d-major copy (view.d_major_blocks + head) and 0.
  const std::byte* const* blocks = nullptr;
  const std::byte* const* key_blocks = nullptr;
  std::size_t block_stride = 1;
  std::size_t block_tokens = 0;  // B
  std::size_t head_dim = 0;      // d
  DType dtype = DType::f32;
  bool key_d_major = false;  // gather keys from the d-major copy (no S-major copy kept)
  std::size_t key_offset = 0;
  std::size_t key_row_stride = 0;  // d-major: elements from one row of a copy to the next
  std::size_t value_offset = 0;
  // Elements from one position's S-major key (and value) row to the next: d, or 2d when
  // the layout is fused (then a position's key and value are one contiguous run).
  std::size_t row_stride = 0;
  const std::uint32_t* positions = nullptr;  // ascending
  std::size_t n = 0;
  const std::uint8_t* member = nullptr;  // [n][heads] or nullptr (every head attends to all)
  const float* q = nullptr;              // [heads][sparq_padded_dim(d)], zero padded
  std::size_t heads = 0;
  // Output partial state (log2 domain).
  float* m = nullptr;         // [heads]
  float* l = nullptr;         // [heads]
  float* acc = nullptr;       // [heads][sparq_padded_dim(d)] (any float alignment, as q)
  std::byte* tile = nullptr;  // scratch of sparq_stage2_tile_bytes(d, heads), 64-byte aligned
};

[[nodiscard]] constexpr std::size_t sparq_stage2_tile_bytes(std::size_t d, std::size_t heads) noexcept {
  return 2 * kSparqStage2Tile * sparq_padded_dim(d) * 4  // staged K and V rows
         + (2 * kSparqStage2Tile + 1) * heads * 4        // scores, weights, corrections
         + 2 * kSparqStage2Tile * sizeof(void*) + 64;
}

template <class Arch>
struct SparqStage2 {
  void operator()(Arch, const SparqStage2Args& args) const noexcept;
};

#define SPARQ_STAGE2_EXTERN(isa, arch) extern template struct SparqStage2<arch>;
SPARQ_FOR_EACH_ARCH(SPARQ_STAGE2_EXTERN)
#undef SPARQ_STAGE2_EXTERN

}  // namespace sparq::kernels
