#include "test_layer.hpp"

#include <cstdint>

namespace sparq::reference::testing {

TestLayer::TestLayer(const LayerSpec& spec, std::span<const float> keys, std::span<const float> values, std::size_t S)
    : cache_(std::make_unique<KVCache>(CacheConfig{.layers = 1,
                                                   .kv_heads = spec.kv_heads,
                                                   .head_dim = spec.head_dim,
                                                   .dtype = spec.dtype,
                                                   .block_tokens = spec.block_tokens,
                                                   .capacity_tokens = S + spec.block_tokens,
                                                   .layouts = spec.layouts,
                                                   .d_major_type = spec.d_major_type})) {
  const SeqId seq = cache_->add_sequence();
  // Two appends, so that the running value mean and the block tail are exercised.
  const std::size_t first = S / 2, row = spec.kv_heads * spec.head_dim;
  if (first > 0) cache_->append(seq, 0, keys.first(first * row), values.first(first * row), first);
  cache_->append(seq, 0, keys.subspan(first * row, (S - first) * row), values.subspan(first * row, (S - first) * row),
                 S - first);
  view_ = cache_->view(seq, 0);
}

std::vector<float> random_floats(std::size_t n, std::uint32_t seed) {
  std::vector<float> out(n);
  std::uint64_t state = 0x9e3779b97f4a7c15ull ^ seed;
  for (float& x : out) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    x = float(double(state >> 40) / double(1ull << 24) * 2.0 - 1.0);
  }
  return out;
}

}  // namespace sparq::reference::testing
