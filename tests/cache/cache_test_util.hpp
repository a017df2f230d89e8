// Helpers for cache tests: deterministic random K/V and a full read-back of a layer.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "sparq/kv_cache.hpp"

namespace sparq::test {

inline std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> x(n);
  for (auto& v : x) v = dist(rng);
  return x;
}

// Mean of the stored value rows of one head, recomputed from scratch in double.
inline std::vector<double> stored_value_mean(const KVCache& c, SeqId s, std::size_t layer, std::size_t head) {
  const std::size_t d = c.config().head_dim, S = c.length(s, layer);
  std::vector<double> mean(d, 0.0);
  std::vector<float> row(d);
  for (std::size_t j = 0; j < S; ++j) {
    c.read_value(s, layer, head, j, row);
    for (std::size_t i = 0; i < d; ++i) mean[i] += row[i];
  }
  for (auto& m : mean) m /= double(S);
  return mean;
}

// Every stored key and value of one layer, [S][kv_heads][d], read back as f32.
struct LayerDump {
  std::vector<float> keys, values;
};
inline LayerDump dump_layer(const KVCache& c, SeqId s, std::size_t layer) {
  const std::size_t d = c.config().head_dim, H = c.config().kv_heads, S = c.length(s, layer);
  LayerDump out{std::vector<float>(S * H * d), std::vector<float>(S * H * d)};
  for (std::size_t j = 0; j < S; ++j)
    for (std::size_t h = 0; h < H; ++h) {
      c.read_key(s, layer, h, j, std::span(out.keys).subspan((j * H + h) * d, d));
      c.read_value(s, layer, h, j, std::span(out.values).subspan((j * H + h) * d, d));
    }
  return out;
}

}  // namespace sparq::test
