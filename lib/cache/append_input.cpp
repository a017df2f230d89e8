#include "cache/append_input.hpp"

#include <bit>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>

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
  return std::string(s.layers ? "layers*" : "") + "n_tokens*kv_heads*head_dim";
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

void check_size(std::span<const float> x, const char* name, const Shape& s) {
  const std::optional<std::size_t> want = s.layers ? checked_mul(*s.layers, s.n_tokens, s.kv_heads, s.head_dim)
                                                   : checked_mul(s.n_tokens, s.kv_heads, s.head_dim);
  if (!want)
    throw Error(ErrorCode::shape_mismatch, std::string(name) + " has " + str(x.size()) +
                                               " floats, but n_tokens=" + str(s.n_tokens) +
                                               " is impossible: " + rule(s) + " = " + factors(s) + " overflows size_t");
  if (x.size() != *want)
    throw Error(ErrorCode::shape_mismatch, std::string(name) + " has " + str(x.size()) + " floats, expected " +
                                               rule(s) + " = " + str(*want) + " (" + factors(s) + ")");
}

void check_storable(std::span<const float> x, const char* name, const Shape& s, DType dtype) {
  const Limits lim = limits_of(dtype);
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (std::fabs(x[i]) < lim.rounds_to_inf) [[likely]]
      continue;  // false for NaN too
    const std::size_t per_token = s.kv_heads * s.head_dim, per_layer = s.n_tokens * per_token;
    std::string where = std::string(name) + "[";
    if (s.layers) where += "layer " + str(i / per_layer) + ", ";
    where += "token " + str(i % per_layer / per_token) + ", head " + str(i % per_token / s.head_dim) + ", component " +
             str(i % s.head_dim) + "]";
    if (!std::isfinite(x[i]))
      throw Error(ErrorCode::non_finite_input,
                  where + " is " + (std::isnan(x[i]) ? "NaN" : "infinite") + ": cached values must be finite");
    throw Error(ErrorCode::non_finite_input, where + " = " + str(x[i]) + " is beyond the range of " +
                                                 std::string(to_string(dtype)) + " storage (largest finite value " +
                                                 str(lim.largest) + "; magnitudes from " + str(lim.rounds_to_inf) +
                                                 " on would be stored as inf): scale it down or use a wider dtype");
  }
}

}  // namespace sparq::append_input
