// Argument checks shared by the reference's entry points (internal to lib/reference).
#pragma once

#include <cstddef>

#include "sparq/kv_cache.hpp"

namespace sparq::reference::detail {

// Throws sparq::Error unless the view is non-empty, [kv_begin, kv_end) is a non-empty
// range of its KV heads, group >= 1, scale is finite and q holds n_rows · n_q · d floats
// with n_q = (kv_end - kv_begin) · group. Returns n_q.
std::size_t check_call(const LayerView& v, std::size_t q_size, std::size_t n_rows, std::size_t kv_begin,
                       std::size_t kv_end, std::size_t group, double scale);

}  // namespace sparq::reference::detail
