// Software prefetch into L1 of every 64-byte line of [p, p + bytes): the kernels' gathers
// and row streams (SparQ stages 1 and 2, the dense kernel's xsimd loops). The builtin
// never faults, so p may run past the data. static: internal linkage, as in
// row_sums16_avx512.hpp (the users are built with different ISA flags).
#pragma once

#include <cstddef>

namespace sparq::kernels {

static inline void prefetch_lines(const void* p, std::size_t bytes) noexcept {
  for (std::size_t off = 0; off < bytes; off += 64) __builtin_prefetch(static_cast<const char*>(p) + off, 0, 3);
}

}  // namespace sparq::kernels
