#include "eval/equal_bytes.hpp"

#include <algorithm>

#include "sparq/method.hpp"

namespace sparq::eval {

std::size_t equal_bytes_budget(std::size_t head_dim, std::size_t seq_len, double ratio) {
  const SparQResolved p = SparQ::for_ratio(ratio).resolve(head_dim, seq_len, 1);
  const std::size_t budget = (seq_len * p.r + 2 * p.k * head_dim) / (2 * head_dim);
  return std::min(seq_len, budget);
}

std::size_t sparq_model_bytes(std::size_t head_dim, std::size_t seq_len, double ratio, std::size_t elem_bytes,
                              bool reallocation) {
  const SparQResolved p = SparQ::for_ratio(ratio).resolve(head_dim, seq_len, 1);
  const std::size_t k_eff = std::min(p.k, seq_len);
  return seq_len * p.r * elem_bytes + 2 * k_eff * head_dim * elem_bytes + (reallocation ? 4 * head_dim : 0);
}

std::size_t rows_model_bytes(std::size_t head_dim, std::size_t positions, std::size_t elem_bytes) {
  return 2 * positions * head_dim * elem_bytes;
}

}  // namespace sparq::eval
