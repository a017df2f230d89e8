// Byte layout of one cache block. A block holds B tokens of one (sequence, layer, KV
// head); it starts on a page boundary (so placement can bind it) and its regions start
// on cache-line boundaries:
//   header   refcount and fill (rows whose value sum is in `value_sum`)
//   value_sum  d doubles: sum of the first `fill` stored value rows
//   k_s_major  [B][d] keys, if kept
//   k_d_major  [d][B] keys, if kept
//   values     [B][d]
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

struct BlockLayout {
  std::size_t value_sum_offset = 0;
  std::size_t k_s_major_offset = LayerView::kNoRegion;
  std::size_t k_d_major_offset = LayerView::kNoRegion;
  std::size_t v_offset = 0;
  std::size_t bytes = 0;       // whole block, a multiple of the page size
  std::size_t data_bytes = 0;  // up to the end of the last region (bytes - data_bytes: page padding)
  std::size_t row_bytes = 0;   // d elements
  std::size_t k_region = 0;    // bytes of one key region ([B][d] or [d][B])

  static BlockLayout for_config(const CacheConfig& c);
};

}  // namespace sparq
