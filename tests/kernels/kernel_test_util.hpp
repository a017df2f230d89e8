// Helpers for kernel tests: caches filled with deterministic random K/V, one test
// parameter per compiled ISA (skipped loudly when this CPU cannot run it), and the
// relative-error measure of the tests.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "sparq/isa.hpp"
#include "sparq/kv_cache.hpp"

namespace sparq::test {

inline std::vector<float> normal_floats(std::size_t n, std::uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> x(n);
  for (auto& v : x) v = dist(rng);
  return x;
}

// A cache with one layer per config and sequences of the given lengths (same lengths in
// every layer), K and V ~ N(0, 1).
struct FilledCache {
  std::unique_ptr<KVCache> cache;
  std::vector<SeqId> seqs;
};

inline FilledCache make_cache(CacheConfig cfg, const std::vector<std::size_t>& lengths, std::uint32_t seed = 1) {
  std::size_t total = 0;
  for (std::size_t s : lengths) total += (s + cfg.block_tokens - 1) / cfg.block_tokens * cfg.block_tokens;
  cfg.capacity_tokens = total + cfg.block_tokens;
  FilledCache f{std::make_unique<KVCache>(cfg), {}};
  const std::size_t row = cfg.kv_heads * cfg.head_dim;
  for (std::size_t s : lengths) {
    const SeqId id = f.cache->add_sequence();
    f.seqs.push_back(id);
    if (s == 0) continue;
    for (std::size_t layer = 0; layer < cfg.layers; ++layer) {
      const auto k = normal_floats(s * row, seed++);
      const auto v = normal_floats(s * row, seed++);
      f.cache->append(id, layer, k, v, s);
    }
  }
  return f;
}

// ‖a − b‖ / ‖b‖ over one head's d outputs.
inline double rel_error(std::span<const float> a, std::span<const double> b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// Fixture parameterized by the compiled ISAs: forces the variant for the test's duration
// and skips, naming it, when this CPU cannot run it.
class IsaTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!cpu_supports(GetParam()))
      GTEST_SKIP() << "ISA " << to_string(GetParam()) << " is compiled but this CPU cannot run it: not tested here";
    force_isa(GetParam());
  }
  void TearDown() override { force_isa(std::nullopt); }
  [[nodiscard]] std::string isa() const { return std::string(to_string(GetParam())); }
};

inline std::string isa_name(const ::testing::TestParamInfo<Isa>& info) {
  return std::string(to_string(info.param));
}

#define SPARQ_INSTANTIATE_FOR_EACH_ISA(suite)                                                                     \
  INSTANTIATE_TEST_SUITE_P(Isa, suite,                                                                            \
                           ::testing::ValuesIn(::sparq::compiled_isas().begin(), ::sparq::compiled_isas().end()), \
                           ::sparq::test::isa_name)

}  // namespace sparq::test
