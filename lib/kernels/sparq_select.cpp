// Scalar parts of the SparQ top-k radix select (see sparq_select.hpp): locating the
// boundary bin and refining it to the exact threshold. Built at the x86-64 baseline.
#include <array>
#include <cassert>

#include "kernels/sparq_select.hpp"

namespace sparq::kernels {

SparqBoundary sparq_boundary_bin(std::span<const std::uint32_t> total, std::size_t count) {
  assert(count >= 1);
  std::size_t cum = 0;
  for (std::size_t b = total.size(); b-- > 0;) {
    if (cum + total[b] >= count) return {std::uint32_t(b), cum};
    cum += total[b];
  }
  assert(false && "count exceeds the number of keys");
  return {0, cum};
}

SparqThreshold sparq_refine(std::span<std::uint32_t> positions, std::span<std::int32_t> keys, std::size_t need) {
  assert(need >= 1 && need <= keys.size() && positions.size() == keys.size());
  std::size_t n = keys.size();
  // Levels below the first (bits 31..20): bits 19..8, then 7..0. Filtering keeps
  // position order, so after the last level the first `need` entries (all equal keys)
  // are the ties to take, lowest positions first.
  struct Level {
    unsigned shift;
    std::uint32_t mask;
  };
  constexpr Level kLevels[] = {{8, 0xfffu}, {0, 0xffu}};
  std::array<std::uint32_t, 4096> hist{};
  for (const Level& lv : kLevels) {
    const std::size_t bins = std::size_t(lv.mask) + 1;
    std::fill(hist.begin(), hist.begin() + bins, 0u);
    for (std::size_t i = 0; i < n; ++i) ++hist[(sparq_key_bits(keys[i]) >> lv.shift) & lv.mask];
    const SparqBoundary bd = sparq_boundary_bin({hist.data(), bins}, need);
    need -= bd.above;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (((sparq_key_bits(keys[i]) >> lv.shift) & lv.mask) != bd.bin) continue;
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
