// Internal: key and value rows of a cache view widened to f32 (for the attention code
// of the model runtime that is not a library method: the baselines and H2O's scores).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "common/half_float.hpp"
#include "sparq/kv_cache.hpp"

namespace sparq::model {

inline void widen_row(const std::byte* src, DType t, std::size_t d, float* out) {
  if (t == DType::f32) {
    std::memcpy(out, src, d * sizeof(float));
    return;
  }
  for (std::size_t i = 0; i < d; ++i) {
    std::uint16_t u;
    std::memcpy(&u, src + 2 * i, 2);
    out[i] = t == DType::bf16 ? half::bf16_to_f32(u) : half::f16_to_f32(u);
  }
}

// Key of position j (S-major copy when kept, else gathered from the d-major copy).
inline void read_key_row(const LayerView& v, std::size_t head, std::size_t j, float* out) {
  if (has_s_major(v.layouts)) return widen_row(v.key_row(head, j), v.dtype, v.head_dim, out);
  for (std::size_t i = 0; i < v.head_dim; ++i) widen_row(v.key_d_major(head, j, i), v.dtype, 1, out + i);
}

inline void read_value_row(const LayerView& v, std::size_t head, std::size_t j, float* out) {
  widen_row(v.value_row(head, j), v.dtype, v.head_dim, out);
}

// Keys (or values) of positions [j0, j1) into out [j1 - j0][d].
inline void read_rows(const LayerView& v, std::size_t head, bool keys, std::size_t j0, std::size_t j1, float* out) {
  const std::size_t d = v.head_dim;
  if (v.dtype == DType::f32 && (!keys || has_s_major(v.layouts))) {
    // Whole runs inside each block are contiguous.
    for (std::size_t j = j0; j < j1;) {
      const std::size_t end = std::min(j1, (j / v.block_tokens + 1) * v.block_tokens);
      const std::byte* src = keys ? v.key_row(head, j) : v.value_row(head, j);
      std::memcpy(out + (j - j0) * d, src, (end - j) * d * sizeof(float));
      j = end;
    }
    return;
  }
  for (std::size_t j = j0; j < j1; ++j) {
    if (keys)
      read_key_row(v, head, j, out + (j - j0) * d);
    else
      read_value_row(v, head, j, out + (j - j0) * d);
  }
}

inline void gather_rows(const LayerView& v, std::size_t head, bool keys, std::span<const std::uint32_t> positions,
                        float* out) {
  for (std::size_t n = 0; n < positions.size(); ++n) {
    if (keys)
      read_key_row(v, head, positions[n], out + n * v.head_dim);
    else
      read_value_row(v, head, positions[n], out + n * v.head_dim);
  }
}

}  // namespace sparq::model
