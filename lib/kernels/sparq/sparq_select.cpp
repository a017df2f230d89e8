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
  // The candidates come from a few neighbouring first-level bins, so their keys usually
  // share their top one or two bytes: start at the first byte where they differ (the
  // levels above would keep every candidate).
  const std::uint32_t first = sparq_key_bits(keys[0]);
  std::uint32_t differ = 0;
  for (std::size_t i = 0; i < n; ++i) differ |= sparq_key_bits(keys[i]) ^ first;
  const int top_shift = differ == 0 ? 0 : (31 - __builtin_clz(differ)) / 8 * 8;
  // Four interleaved sub-histograms: runs of equal bytes would otherwise serialize the
  // increments on one counter through memory.
  std::array<std::array<std::uint32_t, 256>, 4> sub{};
  std::array<std::uint32_t, 256> hist{};
  for (int shift = top_shift; shift >= 0; shift -= 8) {
    for (auto& h : sub) h.fill(0);
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4)
      for (std::size_t l = 0; l < 4; ++l) ++sub[l][(sparq_key_bits(keys[i + l]) >> shift) & 0xffu];
    for (; i < n; ++i) ++sub[0][(sparq_key_bits(keys[i]) >> shift) & 0xffu];
    for (std::size_t b = 0; b < 256; ++b) hist[b] = sub[0][b] + sub[1][b] + sub[2][b] + sub[3][b];
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
