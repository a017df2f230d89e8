// Scalar parts of the SparQ top-k radix select (see sparq_select.hpp): locating the
// boundary bin and refining it to the exact threshold. Built at the x86-64 baseline.
#include "kernels/sparq/sparq_select.hpp"

#include <array>
#include <cassert>

namespace sparq::kernels {

SparqBoundary sparq_boundary_bin(std::span<const std::uint32_t> hist, std::size_t count, bool best_last) {
  assert(count >= 1);
  std::size_t cum = 0;
  const std::size_t n = hist.size();
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t b = best_last ? n - 1 - i : i;
    if (cum + hist[b] >= count) return {std::uint32_t(b), cum};
    cum += hist[b];
  }
  assert(false && "count exceeds the number of keys");
  return {0, cum};
}

SparqThreshold sparq_refine(std::span<std::uint32_t> positions, std::span<std::int32_t> keys, std::size_t need) {
  assert(need >= 1 && need <= keys.size() && positions.size() == keys.size());
  std::size_t n = keys.size();
  // 8 key bits per level, most significant first (unsigned order of the key with its
  // sign flipped = order of the key). Filtering keeps position order, so after the last
  // level the first `need` entries (all equal keys) are the ties taken, lowest first.
  std::array<std::uint32_t, 256> hist{};
  for (int shift = 24; shift >= 0; shift -= 8) {
    hist.fill(0);
    for (std::size_t i = 0; i < n; ++i) ++hist[(sparq_key_bits(keys[i]) >> shift) & 0xffu];
    const SparqBoundary bd = sparq_boundary_bin(hist, need, true);
    need -= bd.above;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (((sparq_key_bits(keys[i]) >> shift) & 0xffu) != bd.bin) continue;
      keys[kept] = keys[i];
      positions[kept] = positions[i];
      ++kept;
    }
    n = kept;
  }
  assert(need >= 1 && need <= n);
  return {keys[0], positions[need - 1], true};
}

}  // namespace sparq::kernels
