// Widening and narrowing of 16-bit inputs and outputs (scalar, through the cache's own
// round-to-nearest-even conversions, so the results equal what the cache stores).
#include "capi/half_input.hpp"

#include <memory>
#include <span>
#include <string>

#include "cache/element.hpp"
#include "sparq/error.hpp"

namespace sparq::capi {

void widen(Half type, const std::uint16_t* in, float* out, std::size_t n) noexcept {
  if (type == Half::bf16)
    for (std::size_t i = 0; i < n; ++i) out[i] = element::bf16_to_f32(in[i]);
  else
    for (std::size_t i = 0; i < n; ++i) out[i] = element::f16_to_f32(in[i]);
}

void narrow(Half type, const float* in, std::uint16_t* out, std::size_t n) noexcept {
  if (type == Half::bf16)
    for (std::size_t i = 0; i < n; ++i) out[i] = element::f32_to_bf16(in[i]);
  else
    for (std::size_t i = 0; i < n; ++i) out[i] = element::f32_to_f16(in[i]);
}

void append_half(KVCache& cache, SeqId seq, std::size_t layer, const std::uint16_t* keys, const std::uint16_t* values,
                 std::size_t n_tokens, Half type) {
  const CacheConfig& c = cache.config();
  std::size_t n = 0;
  if (__builtin_mul_overflow(n_tokens, c.kv_heads * c.head_dim, &n) || n > (std::size_t{1} << 60))
    throw Error(ErrorCode::invalid_argument,
                "n_tokens=" + std::to_string(n_tokens) + " is too large: n_tokens*kv_heads*head_dim overflows");
  // Uninitialized storage: every element is written by widen() before it is read.
  const auto buf = std::make_unique_for_overwrite<float[]>(2 * n);
  widen(type, keys, buf.get(), n);
  widen(type, values, buf.get() + n, n);
  cache.append(seq, layer, std::span<const float>(buf.get(), n), std::span<const float>(buf.get() + n, n), n_tokens);
}

}  // namespace sparq::capi
