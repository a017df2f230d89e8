// Software prefetch of K rows ahead of the AVX-512 dense score loop
// (dense_rows16_avx512.cpp): kAheadBytes past the row being read (past a tile's K rows the
// stream continues into its V rows, read next): 12% faster on one thread
// (docs/performance.md, "AVX512-BF16").
// static: internal linkage, as in row_sums16_avx512.hpp (the users are built with
// different ISA flags).
#pragma once

#include <cstddef>

#include "kernels/simd/prefetch_lines.hpp"

namespace sparq::kernels {

inline constexpr std::size_t kAheadBytes = 4096;

// Prefetches the `lines` 64-byte lines that start kAheadBytes after `row`.
static inline void prefetch_ahead(const void* row, std::size_t lines) noexcept {
  prefetch_lines(static_cast<const char*>(row) + kAheadBytes, 64 * lines);
}

}  // namespace sparq::kernels
