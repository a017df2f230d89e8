// Internal: one decode step's attention by an equal-bytes baseline (oracle, H2O,
// sink + window; llama_model.hpp's Baseline) for all query heads of one layer.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "eval/h2o.hpp"
#include "sparq/kv_cache.hpp"
#include "sparq/tools/model/llama_model.hpp"

namespace sparq::model {

// q, out: [n_heads][d]. The newest position (the query's own) is already appended.
// h2o: the layer's per-KV-head H2O state (required for H2O, ignored otherwise): the new
// position is added, the cache evicted to the budget, and the attention it received
// accumulated. `fetched`, when given, receives the number of rows read per KV head.
void baseline_attention(const KVCache& cache, SeqId seq, std::size_t layer, const Baseline& method,
                        std::span<const float> q, std::span<float> out, std::size_t n_heads,
                        std::vector<eval::H2OCache>* h2o, std::size_t* rows_read = nullptr);

}  // namespace sparq::model
