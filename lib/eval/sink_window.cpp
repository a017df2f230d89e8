#include "eval/sink_window.hpp"

#include <algorithm>
#include <string>

#include "sparq/error.hpp"

namespace sparq::eval {

std::vector<std::uint32_t> sink_window_positions(std::size_t seq_len, std::size_t budget, std::size_t sinks) {
  if (seq_len == 0) throw Error(ErrorCode::empty_sequence, "sink-window: sequence length S=0");
  if (budget == 0) throw Error(ErrorCode::invalid_argument, "sink-window: budget k'=0 must be at least 1");
  std::vector<std::uint32_t> out;
  const std::size_t keep = std::min(budget, seq_len);
  const std::size_t n_sinks = keep == seq_len ? 0 : std::min(sinks, keep - 1);
  out.reserve(keep);
  for (std::size_t j = 0; j < n_sinks; ++j) out.push_back(static_cast<std::uint32_t>(j));
  for (std::size_t j = seq_len - (keep - n_sinks); j < seq_len; ++j) out.push_back(static_cast<std::uint32_t>(j));
  return out;
}

}  // namespace sparq::eval
