// Internal: H2O's accumulated attention after a dense prefill. For each KV head, the
// attention probability each cached position received from the prefilled queries,
// summed over the query heads of its group (lib/eval/h2o.hpp's score).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "sparq/kv_cache.hpp"

namespace sparq::model {

// Adds the contribution of the last n_new positions' queries of `seq` in `layer`
// (q: [n_new][n_heads][d], post-RoPE; their K/V already appended; causal) to
// mass[kv_head][0, S). mass is resized to S per KV head. Softmax scale 1/sqrt(d).
void add_attention_mass(const KVCache& cache, SeqId seq, std::size_t layer, std::span<const float> q, std::size_t n_new,
                        std::size_t n_heads, std::vector<std::vector<double>>& mass);

// exp(x) for x <= 0 (exp(-87) ~ 1.6e-38 for anything below -87), relative error below
// 3e-7: Cody-Waite reduction and a degree-6 Taylor polynomial in plain arithmetic, which
// compilers vectorize (std::exp in a loop is a call per element).
[[nodiscard]] inline float exp_nonpositive(float x) noexcept {
  x = x < -87.0f ? -87.0f : x;
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x / ln 2)
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * std::bit_cast<float>((static_cast<std::int32_t>(n) + 127) << 23);
}

}  // namespace sparq::model
