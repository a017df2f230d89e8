// Validation of the keys and values given to an append, before the cache changes:
// sizes computed without wrapping, and every element representable in the storage type.
#pragma once

#include <cstddef>
#include <optional>

#include "sparq/rows.hpp"
#include "sparq/types.hpp"

namespace sparq::append_input {

// The shape of an append's keys (or values): [layers][n_tokens][kv_heads][head_dim], or
// [n_tokens][kv_heads][head_dim] when `layers` is empty (a one-layer append).
struct Shape {
  std::optional<std::size_t> layers;
  std::size_t n_tokens = 0;
  std::size_t kv_heads = 0;
  std::size_t head_dim = 0;
  const char* count = "n_tokens";  // what n_tokens counts, in messages ("n_seqs" for a batch)
  const char* row = "token";       // one of them, in positions ("batch row")
};

// Throws Error(shape_mismatch) naming `name`, its size and the expected product; also
// when that product overflows size_t (a huge n_tokens), rather than letting it wrap.
void check_size(const Rows& x, const char* name, const Shape& shape);

// Throws Error(non_finite_input) at the first element (of any source type, widened
// exactly) that is NaN or infinite, or finite
// but beyond what `dtype` can hold (it would be stored as inf: |x| >= 65520 in f16,
// >= 3.3961775e38 in bf16), naming its position [layer, token, head, component], its
// value and the storage's largest finite value. Requires check_size to have passed.
void check_storable(const Rows& x, const char* name, const Shape& shape, DType dtype);

}  // namespace sparq::append_input
