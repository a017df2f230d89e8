// Byte layout of one cache block. A block holds B tokens of one (sequence, layer, KV
// head) and starts on a page boundary (so placement can bind it); its regions start on
// cache-line boundaries, from the block's first byte:
//   k_s_major  [B][d] keys, if kept
//   values     [B][d]
// or, in the fused layout, one region [B][key | value] (row_stride_bytes = 2 rows).
// The d-major key copy (d rows of B elements), if kept, is not in the block: it lives in
// its slab's d-major area, interleaved row by row with the copies of the slab's other
// blocks (BlockPool::d_major says how and why), and the block's header
// (refcount, fill) and value sum live in the slab's metadata area (BlockPool::header /
// value_sum). One KV head's blocks sit back to back in a slab, so with nothing between
// them dense decode reads the S-major keys and values of consecutive blocks as one
// unbroken stream: each break restarts the hardware prefetchers (a metadata page between
// blocks cost dense decode 10%, the d-major copy there 6-14%: docs/performance.md).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "sparq/kv_cache.hpp"

namespace sparq {

struct BlockHeader {
  std::atomic<std::uint32_t> refcount;  // sequences sharing this block (forks)
  std::uint32_t fill;                   // rows covered by the block's value_sum
};
static_assert(sizeof(BlockHeader) <= 8);

struct BlockLayout {
  std::size_t k_s_major_offset = LayerView::kNoRegion;
  std::size_t v_offset = 0;
  std::size_t bytes = 0;             // whole block, a multiple of the page size
  std::size_t data_bytes = 0;        // up to the end of the last region (bytes - data_bytes: page padding)
  std::size_t row_bytes = 0;         // d elements
  std::size_t row_stride_bytes = 0;  // from one position's key (or value) row to the next
  std::size_t k_region = 0;          // bytes of B key (or value) rows, rounded to lines
  // The d-major copy: d_major_rows rows (d, or 0 when the copy is not kept) of
  // d_major_run bytes (B elements of d_major_elem bytes) each.
  std::size_t d_major_rows = 0;
  std::size_t d_major_run = 0;
  std::size_t d_major_elem = 0;
  // Per-block metadata outside the block: BlockHeader, then d doubles (the value sum of
  // the first `fill` rows), then for an int8 d-major copy d floats (its scales); a
  // multiple of the cache line.
  std::size_t meta_bytes = 0;
  static constexpr std::size_t kValueSumOffset = 8;  // in the metadata, after the header
  std::size_t scales_offset = 0;                     // in the metadata; 0: no scales

  static BlockLayout for_config(const CacheConfig& c);
  // Bytes one block takes from the system: the block, its d-major copy, its metadata.
  [[nodiscard]] std::size_t system_bytes() const noexcept { return bytes + d_major_rows * d_major_run + meta_bytes; }
};

// Blocks in the pool of a config: layers * kv_heads * ceil(capacity_tokens / block_tokens).
// CacheConfig::validate() checks that this, and its size in bytes, fit in size_t.
[[nodiscard]] std::size_t pool_blocks(const CacheConfig& c) noexcept;

}  // namespace sparq
