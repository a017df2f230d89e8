// A synthetic decode trace with known structure, for trying `sparq eval` without a
// model and for tests: random keys and values, and queries that attend strongly to a
// few "needle" positions placed in the prompt.
//
// Keys: N(0, s_i²) per component, with s_i = 4 on every 16th component ("outlier"
// channels, as real post-RoPE keys have) and 1 elsewhere. Values: a random mean per
// KV head (N(0, 1) per component, as real values have a non-zero mean) plus N(0, 1).
// Queries of even query heads at position p point at a needle n ≤ p (cycling through
// the needles by position and head): q = a·K[n] + noise, with a chosen so that the
// needle's logit is `needle_logit` (its dense attention then dominates). Odd heads and
// positions before the first needle get random queries (diffuse attention).
// Deterministic for a given seed (std::mt19937_64 and our own Box-Muller, so the same
// on every standard library).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "sparq/tools/eval/trace.hpp"

namespace sparq::eval {

struct SyntheticOptions {
  ModelShape shape{.layers = 2, .q_heads = 8, .kv_heads = 2, .head_dim = 64};
  std::size_t positions = 512;
  std::size_t prefill = 0;  // 0: positions - positions/8 (the last eighth is decoded)
  std::size_t needles = 4;
  double needle_logit = 10.0;
  std::uint64_t seed = 1;
};

struct SyntheticTrace {
  TraceManifest manifest;
  std::vector<TraceLayer> layers;
  std::vector<std::uint32_t> needles;  // ascending, all in the prompt
};

// Throws sparq::Error for a bad shape, positions < 2 or needles > prefill.
[[nodiscard]] SyntheticTrace make_synthetic_trace(const SyntheticOptions& options);
// Generates and writes it to `dir` (created if needed).
SyntheticTrace write_synthetic_trace(const std::filesystem::path& dir, const SyntheticOptions& options);

}  // namespace sparq::eval
