// Cold caches for timing decode (sparq/tools/cold_caches.hpp).
#include "sparq/tools/cold_caches.hpp"

#include <algorithm>

#include "sparq/error.hpp"

namespace sparq {

void fill_synthetic(std::span<float> x, std::uint32_t seed) {
  std::uint64_t s = 0x9e3779b97f4a7c15ull * (seed + 1);
  for (float& v : x) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v = float(std::int32_t(s >> 32)) * 0x1p-31f;
  }
}

std::uint64_t stored_bytes_per_layer(const CacheConfig& c, std::size_t seq_len) {
  const std::uint64_t rows = (seq_len + c.block_tokens - 1) / c.block_tokens * c.block_tokens;
  const std::uint64_t e = size_of(c.dtype);
  const std::uint64_t d_major = c.d_major_type == DMajorType::int8 ? 1 : e;  // its scales are block metadata
  const std::uint64_t per_row =
      c.head_dim * (e + (has_s_major(c.layouts) ? e : 0) + (has_d_major(c.layouts) ? d_major : 0));
  return rows * per_row * c.kv_heads;
}

std::size_t rotation_layers(std::uint64_t working_set, std::uint64_t bytes_per_layer, std::size_t min_layers,
                            std::size_t methods) {
  const std::uint64_t per_layer = std::max<std::uint64_t>(bytes_per_layer, 1);
  auto layers = std::size_t(std::max<std::uint64_t>((working_set + per_layer - 1) / per_layer, min_layers));
  layers = std::max<std::size_t>(layers, 1);
  if (methods > 1 && layers % methods == 0) ++layers;
  return layers;
}

ColdCaches build_cold_caches(const ColdCacheSpec& spec, const ColdCacheProgress& progress) {
  if (spec.seq_len == 0) throw Error(ErrorCode::invalid_argument, "cold caches: seq_len=0: must be at least 1");
  if (spec.batch == 0) throw Error(ErrorCode::invalid_argument, "cold caches: batch=0: must be at least 1");
  CacheConfig config = spec.config;
  const std::size_t B = config.block_tokens;
  if (B == 0) throw Error(ErrorCode::invalid_argument, "cold caches: block_tokens=0: must be at least 1");
  config.capacity_tokens = spec.batch * ((spec.seq_len + B - 1) / B * B);

  ColdCaches cold;
  cold.cache = std::make_unique<KVCache>(config);
  cold.layers = config.layers;
  cold.seq_len = spec.seq_len;

  // One chunk of rows, appended at every offset of every layer of every sequence.
  constexpr std::size_t kChunk = 2048;
  const std::size_t row = config.kv_heads * config.head_dim;
  std::vector<float> k(kChunk * row), v(kChunk * row);
  fill_synthetic(k, 1);
  fill_synthetic(v, 2);
  if (spec.heavy_every)
    for (std::size_t t = 0; t < kChunk; t += spec.heavy_every)
      for (std::size_t i = 0; i < row; ++i) k[t * row + i] *= 3.0f;

  const std::size_t total = spec.batch * config.layers;
  for (std::size_t b = 0; b < spec.batch; ++b) {
    const SeqId seq = cold.cache->add_sequence();
    cold.seqs.push_back(seq);
    for (std::size_t layer = 0; layer < config.layers; ++layer)
      for (std::size_t t = 0; t < spec.seq_len; t += kChunk) {
        const std::size_t n = std::min(kChunk, spec.seq_len - t);
        cold.cache->append(seq, layer, std::span<const float>(k).first(n * row),
                           std::span<const float>(v).first(n * row), n);
        if (progress && !progress(double(b * config.layers + layer) / double(total))) {
          cold.layers = 0;
          return cold;
        }
      }
  }
  return cold;
}

}  // namespace sparq
