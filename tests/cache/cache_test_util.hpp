// Helpers for cache tests: deterministic random K/V and a full read-back of a layer.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
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

// Where the stored bits of (a, sa) and (b, sb) differ in one layer (S-major keys, values,
// the d-major copy and its int8 scales, the value mean), or "" when they do not.
inline std::string storage_difference(const KVCache& a, SeqId sa, const KVCache& b, SeqId sb, std::size_t layer) {
  const auto la = a.lock_for_read(sa);
  const auto lb = b.lock_for_read(sb);
  const LayerView x = a.view(sa, layer), y = b.view(sb, layer);
  if (x.length != y.length) return "lengths " + std::to_string(x.length) + " and " + std::to_string(y.length);
  const std::size_t d = x.head_dim, row = d * size_of(x.dtype);
  auto at = [](const char* what, std::size_t h, std::size_t j) {
    return std::string(what) + " head " + std::to_string(h) + " pos " + std::to_string(j);
  };
  for (std::size_t h = 0; h < x.kv_heads; ++h) {
    for (std::size_t j = 0; j < x.length; ++j) {
      if (has_s_major(x.layouts) && std::memcmp(x.key_row(h, j), y.key_row(h, j), row) != 0) return at("key", h, j);
      if (std::memcmp(x.value_row(h, j), y.value_row(h, j), row) != 0) return at("value", h, j);
      if (has_d_major(x.layouts))
        for (std::size_t i = 0; i < d; ++i)
          if (std::memcmp(x.key_d_major(h, j, i), y.key_d_major(h, j, i), x.d_major_bytes()) != 0)
            return at("d-major key", h, j) + " component " + std::to_string(i);
    }
    if (x.d_major_type == DMajorType::int8)
      for (std::size_t blk = 0; blk < x.blocks_per_head; ++blk)
        if (std::memcmp(x.d_major_scale(h, blk), y.d_major_scale(h, blk), d * sizeof(float)) != 0)
          return "int8 scales head " + std::to_string(h) + " block " + std::to_string(blk);
  }
  if (std::memcmp(x.value_mean, y.value_mean, x.kv_heads * d * sizeof(float)) != 0) return "value mean";
  return "";
}

}  // namespace sparq::test
