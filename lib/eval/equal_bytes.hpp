// How many positions k' a baseline that reads only whole key and value rows may attend
// over so that it moves the same bytes as SparQ at compression ratio c (docs/eval-traces.md,
// "Equal bytes"): per KV head, SparQ moves S·r·b + 2·k·d·b (reallocation's v̄ aside) and
// a baseline 2·k'·d·b, so
//   k' = min(S, floor((S·r + 2·k·d) / (2·d))) = min(S, k + floor(S·r / (2·d)))
// with r and k from SparQ's defaults for (d, S). The element size b cancels.
#pragma once

#include <cstddef>

namespace sparq::eval {

// Throws sparq::Error for ratio < 1, head_dim = 0 or seq_len = 0 (as SparQ::resolve).
[[nodiscard]] std::size_t equal_bytes_budget(std::size_t head_dim, std::size_t seq_len, double ratio);

// Bytes per KV head that SparQ (shared selection) moves by DESIGN §1's model, and that a
// baseline attending over `positions` rows moves: for reports and tests.
[[nodiscard]] std::size_t sparq_model_bytes(std::size_t head_dim, std::size_t seq_len, double ratio,
                                            std::size_t elem_bytes, bool reallocation);
[[nodiscard]] std::size_t rows_model_bytes(std::size_t head_dim, std::size_t positions, std::size_t elem_bytes);

}  // namespace sparq::eval
