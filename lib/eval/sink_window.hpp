// Sink + local window (StreamingLLM, Xiao et al. 2023; LM-Infinite, Han et al. 2023):
// attend over the first few "attention sink" positions and the most recent ones.
//
// With S cached positions and a budget of k' rows: if k' >= S every position; else the
// first min(sinks, k' - 1) positions plus the last k' - that many (at least the current
// token itself is always kept, since a query attends to its own key). Ascending.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sparq::eval {

inline constexpr std::size_t kDefaultSinks = 4;

// Throws sparq::Error when seq_len = 0 or budget = 0.
[[nodiscard]] std::vector<std::uint32_t> sink_window_positions(std::size_t seq_len, std::size_t budget,
                                                               std::size_t sinks = kDefaultSinks);

}  // namespace sparq::eval
