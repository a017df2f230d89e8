// Exact attention of one trace query over a chosen set of positions, in double: the
// true dense probabilities (for recall and captured mass) and the outputs of the
// baselines, which attend over the positions they keep. Reads the trace arrays
// directly (the baselines are not library methods).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "sparq/tools/eval/trace.hpp"

namespace sparq::eval {

// softmax_j( scale · q[pos][head] · K[j][head / g] ) over j in `positions` (non-empty).
[[nodiscard]] std::vector<double> attention_probs(const TraceLayer& t, std::size_t pos, std::size_t head,
                                                  std::span<const std::uint32_t> positions, double scale);
// The same over every position [0, pos] (dense attention of decode step pos).
[[nodiscard]] std::vector<double> dense_probs(const TraceLayer& t, std::size_t pos, std::size_t head, double scale);

// out = Σ_i probs[i] · V[positions[i]][kv_head]  ([head_dim]).
void weighted_values(const TraceLayer& t, std::size_t kv_head, std::span<const std::uint32_t> positions,
                     std::span<const double> probs, std::span<double> out);

}  // namespace sparq::eval
