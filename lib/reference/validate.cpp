#include "reference/validate.hpp"

#include <cmath>
#include <string>

#include "sparq/error.hpp"

namespace sparq::reference::detail {

std::size_t check_call(const LayerView& v, std::size_t q_size, std::size_t n_rows, std::size_t kv_begin,
                       std::size_t kv_end, std::size_t group, double scale) {
  using std::to_string;
  if (v.length == 0) throw Error(ErrorCode::empty_sequence, "S=0: attention needs at least one position");
  if (v.head_dim == 0 || v.block_tokens == 0 || v.blocks == nullptr)
    throw Error(ErrorCode::invalid_argument,
                "the LayerView is not a view of a cache (head_dim, block_tokens or blocks unset)");
  if (kv_begin >= kv_end || kv_end > v.kv_heads)
    throw Error(ErrorCode::invalid_argument, "KV heads [" + to_string(kv_begin) + ", " + to_string(kv_end) +
                                                 ") must be a non-empty range within [0, " + to_string(v.kv_heads) +
                                                 ")");
  if (group == 0) throw Error(ErrorCode::invalid_argument, "group=0: must be at least 1");
  if (!std::isfinite(scale)) throw Error(ErrorCode::non_finite_input, "scale is not finite");
  const std::size_t n_q = (kv_end - kv_begin) * group;
  if (q_size != n_rows * n_q * v.head_dim)
    throw Error(ErrorCode::shape_mismatch, "q has " + to_string(q_size) + " floats: expected " + to_string(n_rows) +
                                               " x " + to_string(n_q) +
                                               " query heads x head_dim=" + to_string(v.head_dim));
  return n_q;
}

}  // namespace sparq::reference::detail
