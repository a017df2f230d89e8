#include "cache/append_input.hpp"

#include <bit>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>

#include "cache/element.hpp"
#include "common/checked_math.hpp"
#include "sparq/error.hpp"

namespace sparq::append_input {

namespace {

std::string str(std::size_t v) {
  return std::to_string(v);
}

// Shortest text that reads back as the same float (70000, 3.4e+38).
std::string str(float v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string rule(const Shape& s) {
  return std::string(s.layers ? "layers*" : "") + s.count + "*kv_heads*head_dim";
}

// "floats" for f32 sources (the f32 API's word), "f16 elements" otherwise.
std::string units(const Rows& x) {
  return x.dtype() == DType::f32 ? "floats" : std::string(to_string(x.dtype())) + " elements";
}

// Element i of x, widened to f32 (exact).
float widened(const Rows& x, std::size_t i) {
  return element::load(static_cast<const std::byte*>(x.data()), i, x.dtype());
}

// Index of the first element whose magnitude is not below `bound` (NaN included), or
// x.size(); one tight loop per source type.
std::size_t first_unstorable(const Rows& x, float bound) {
  const std::size_t n = x.size();
  std::size_t i = 0;
  if (x.dtype() == DType::f32) {
    const auto* p = static_cast<const float*>(x.data());
    while (i < n && std::fabs(p[i]) < bound) ++i;
  } else {
    const auto* p = static_cast<const std::uint16_t*>(x.data());
    const bool f16 = x.dtype() == DType::f16;
    while (i < n && std::fabs(f16 ? element::f16_to_f32(p[i]) : element::bf16_to_f32(p[i])) < bound) ++i;
  }
  return i;
}

std::string factors(const Shape& s) {
  return (s.layers ? str(*s.layers) + "*" : "") + str(s.n_tokens) + "*" + str(s.kv_heads) + "*" + str(s.head_dim);
}

// Storage limits: values whose magnitude reaches `rounds_to_inf` become inf when
// narrowed with round-to-nearest-even (element.hpp); `largest` is the largest finite.
struct Limits {
  float rounds_to_inf;
  float largest;
};

Limits limits_of(DType t) {
  switch (t) {
    case DType::f16:
      return {65520.0f, 65504.0f};
    case DType::bf16:
      return {std::bit_cast<float>(0x7f7f8000u), std::bit_cast<float>(0x7f7f0000u)};
    case DType::f32:
      break;
  }
  return {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::max()};
}

}  // namespace

void check_size(const Rows& x, const char* name, const Shape& s) {
  const std::optional<std::size_t> want = s.layers ? checked_mul(*s.layers, s.n_tokens, s.kv_heads, s.head_dim)
                                                   : checked_mul(s.n_tokens, s.kv_heads, s.head_dim);
  if (!want)
    throw Error(ErrorCode::shape_mismatch, std::string(name) + " has " + str(x.size()) + " " + units(x) + ", but " +
                                               s.count + "=" + str(s.n_tokens) + " is impossible: " + rule(s) + " = " +
                                               factors(s) + " overflows size_t");
  if (x.size() != *want)
    throw Error(ErrorCode::shape_mismatch, std::string(name) + " has " + str(x.size()) + " " + units(x) +
                                               ", expected " + rule(s) + " = " + str(*want) + " (" + factors(s) + ")");
}

void check_storable(const Rows& rows, const char* name, const Shape& s, DType dtype) {
  const Limits lim = limits_of(dtype);
  const std::size_t i = first_unstorable(rows, lim.rounds_to_inf);
  if (i < rows.size()) {
    const float x = widened(rows, i);
    const std::size_t per_token = s.kv_heads * s.head_dim, per_layer = s.n_tokens * per_token;
    std::string where = std::string(name) + "[";
    if (s.layers) where += "layer " + str(i / per_layer) + ", ";
    where += std::string(s.row) + " " + str(i % per_layer / per_token) + ", head " + str(i % per_token / s.head_dim) +
             ", component " + str(i % s.head_dim) + "]";
    if (!std::isfinite(x))
      throw Error(ErrorCode::non_finite_input,
                  where + " is " + (std::isnan(x) ? "NaN" : "infinite") + ": cached values must be finite");
    throw Error(ErrorCode::non_finite_input, where + " = " + str(x) + " is beyond the range of " +
                                                 std::string(to_string(dtype)) + " storage (largest finite value " +
                                                 str(lim.largest) + "; magnitudes from " + str(lim.rounds_to_inf) +
                                                 " on would be stored as inf): scale it down or use a wider dtype");
  }
}

}  // namespace sparq::append_input
