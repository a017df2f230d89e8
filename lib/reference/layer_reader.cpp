// Reading stored keys and values out of a LayerView, element by element, for the
// reference. Kernels have their own vectorized readers; this one is deliberately naive.
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cache/element.hpp"
#include "reference/reference.hpp"

namespace sparq::reference {

namespace {

// Address of component i of position j in the S-major key copy.
const std::byte* s_major_element(const LayerView& v, std::size_t head, std::size_t j, std::size_t i) {
  return v.key_row(head, j) + i * size_of(v.dtype);
}

// Address of component i of position j in the d-major key copy (LayerView::key_d_major).
const std::byte* d_major_element(const LayerView& v, std::size_t head, std::size_t j, std::size_t i) {
  return v.key_d_major(head, j, i);
}

bool same_bits(const std::byte* a, const std::byte* b, DType t) {
  return std::memcmp(a, b, size_of(t)) == 0;
}

bool int8_copy(const LayerView& v) {
  return has_d_major(v.layouts) && v.d_major_type == DMajorType::int8;
}

// The int8 copy's element, dequantized: its value times its block's scale.
double dequantized(const LayerView& v, std::size_t head, std::size_t j, std::size_t i) {
  const auto q = static_cast<std::int8_t>(*d_major_element(v, head, j, i));
  return double(q) * double(v.d_major_scale(head, j / v.block_tokens)[i]);
}

}  // namespace

double key(const LayerView& v, std::size_t head, std::size_t j, std::size_t i) {
  assert(head < v.kv_heads && j < v.length && i < v.head_dim);
  if (!has_s_major(v.layouts)) return element::load(d_major_element(v, head, j, i), 0, v.dtype);
  const std::byte* e = s_major_element(v, head, j, i);
  assert(!has_d_major(v.layouts) || int8_copy(v) || same_bits(e, d_major_element(v, head, j, i), v.dtype));
  return element::load(e, 0, v.dtype);
}

double approx_key(const LayerView& v, std::size_t head, std::size_t j, std::size_t i) {
  return int8_copy(v) ? dequantized(v, head, j, i) : key(v, head, j, i);
}

double value(const LayerView& v, std::size_t head, std::size_t j, std::size_t i) {
  assert(head < v.kv_heads && j < v.length && i < v.head_dim);
  return element::load(v.value_row(head, j), i, v.dtype);
}

bool key_copies_agree(const LayerView& v) {
  if (!has_s_major(v.layouts) || !has_d_major(v.layouts)) return true;
  for (std::size_t head = 0; head < v.kv_heads; ++head)
    for (std::size_t j = 0; j < v.length; ++j)
      for (std::size_t i = 0; i < v.head_dim; ++i) {
        if (!int8_copy(v)) {
          if (!same_bits(s_major_element(v, head, j, i), d_major_element(v, head, j, i), v.dtype)) return false;
          continue;
        }
        // int8: the nearest multiple of the block's scale (ties either way), within range.
        const double k = key(v, head, j, i), s = v.d_major_scale(head, j / v.block_tokens)[i];
        const auto q = static_cast<std::int8_t>(*d_major_element(v, head, j, i));
        if (q < -127 || std::abs(k) > 127.0 * s * (1 + 1e-6) || std::abs(double(q) * s - k) > 0.5 * s * (1 + 1e-6))
          return false;
      }
  return true;
}

std::vector<double> recomputed_value_mean(const LayerView& v, std::size_t head) {
  std::vector<double> mean(v.head_dim, 0.0);
  for (std::size_t j = 0; j < v.length; ++j)
    for (std::size_t i = 0; i < v.head_dim; ++i) mean[i] += value(v, head, j, i);
  for (double& m : mean) m /= double(v.length);
  return mean;
}

}  // namespace sparq::reference
