// Top-n choices of Algorithm 1: step 1 (i1, the r largest |q_i|) and step 3 (i2, the
// local window plus the k_eff - window largest approximate scores). A full sort with an
// explicit tie-break: obviously right, and the tie rule (lower index first) is the one
// DESIGN §3 promises for every kernel.
#include <algorithm>
#include <cassert>
#include <numeric>

#include "reference/reference.hpp"

namespace sparq::reference {

std::vector<std::uint32_t> top_n(std::span<const double> x, std::size_t n) {
  assert(n <= x.size());
  std::vector<std::uint32_t> order(x.size());
  std::iota(order.begin(), order.end(), std::uint32_t{0});
  // Larger value first; equal values: lower index first.
  std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    if (x[a] != x[b]) return x[a] > x[b];
    return a < b;
  });
  order.resize(n);
  std::sort(order.begin(), order.end());
  return order;
}

std::vector<std::uint32_t> select_positions(std::span<const double> score, std::size_t k, std::size_t window) {
  const std::size_t S = score.size();
  const std::size_t k_eff = std::min(k, S);
  const std::size_t w = std::min(window, k_eff);
  // Step 3a: the last w positions are always fetched (the window is part of k_eff).
  // Step 3b: the k_eff - w largest scores among positions [0, S - w).
  std::vector<std::uint32_t> chosen = top_n(score.first(S - w), k_eff - w);
  for (std::size_t j = S - w; j < S; ++j) chosen.push_back(static_cast<std::uint32_t>(j));
  assert(std::is_sorted(chosen.begin(), chosen.end()) && chosen.size() == k_eff);
  return chosen;
}

}  // namespace sparq::reference
