// Test fixture: a real sparq::KVCache holding one sequence of one layer with the given
// keys and values, and its LayerView, for the reference tests.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "sparq/kv_cache.hpp"
#include "sparq/types.hpp"

namespace sparq::reference::testing {

struct LayerSpec {
  std::size_t kv_heads = 1;
  std::size_t head_dim = 4;
  std::size_t block_tokens = 4;
  DType dtype = DType::f32;
  KeyLayout layouts = KeyLayout::both;
  DMajorType d_major_type = DMajorType::same;
};

// keys and values are [S][kv_heads][head_dim] f32, stored in spec.dtype.
class TestLayer {
 public:
  TestLayer(const LayerSpec& spec, std::span<const float> keys, std::span<const float> values, std::size_t S);
  TestLayer(const TestLayer&) = delete;
  TestLayer& operator=(const TestLayer&) = delete;

  [[nodiscard]] const LayerView& view() const noexcept { return view_; }

 private:
  std::unique_ptr<KVCache> cache_;
  LayerView view_;
};

// Deterministic pseudo-random floats in [-1, 1) (a small LCG, so tests need no seeds).
[[nodiscard]] std::vector<float> random_floats(std::size_t n, std::uint32_t seed);

}  // namespace sparq::reference::testing
