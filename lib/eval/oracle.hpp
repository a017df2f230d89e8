// Exact top-k' oracle: the k' positions with the largest true dense attention, then exact
// softmax over them. The best any method that attends over k' positions can do in
// captured mass. For a GQA group the positions are chosen once per KV head, by the sum
// of the group's attention probabilities, so it moves the same rows as any other
// per-KV-head method at equal bytes (with g = 1 this is the per-head oracle).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace sparq::eval {

// `mass[j]` = Σ_h p_h[j] over the group (or one head's probabilities). Returns the
// min(budget, S) positions with the largest mass, ties to the lower position, ascending.
// Throws sparq::Error when mass is empty or budget = 0.
[[nodiscard]] std::vector<std::uint32_t> oracle_positions(std::span<const double> mass, std::size_t budget);

}  // namespace sparq::eval
