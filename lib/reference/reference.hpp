// Scalar reference of dense and SparQ decode attention: the executable spec that every
// kernel in lib/kernels/ is tested against (DESIGN §1, the paper's Algorithm 1).
//
// Plain loops, everything accumulated in double, no SIMD, no threads, no code shared
// with lib/kernels/. It reads the cache only through a LayerView and works for every
// KeyLayout (keys come from whichever copy exists). Speed is not a goal: a call costs
// O(n_q · S · d) operations and allocates freely.
//
// Shapes. A call covers the query heads of KV heads [kv_begin, kv_end): n_q =
// (kv_end - kv_begin) · group of them, query head h (0-based within the call) reading
// KV head kv_begin + h / group. q is [n_q][d] f32, as decode() receives it.
//
// Errors. Bad shapes or parameters throw sparq::Error (the reference is also reachable
// from tools, so it does not trust its caller more than the public API does).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "sparq/kv_cache.hpp"
#include "sparq/method.hpp"

namespace sparq::reference {

// ---- Reading the stored cache (layer_reader.cpp) --------------------------------------

// Component i of the key of position j in KV head `head`, widened exactly from the
// storage type. Reads the S-major copy when it exists, else the d-major copy; with both
// layouts a debug build asserts the two copies hold the same element.
[[nodiscard]] double key(const LayerView& v, std::size_t head, std::size_t j, std::size_t i);
// Component i of the key of position j as stage 1 reads it: from the d-major copy when
// the cache keeps one (an int8 copy: its value times the block's scale for component i),
// else key(). With an exact copy this is key() itself.
[[nodiscard]] double approx_key(const LayerView& v, std::size_t head, std::size_t j, std::size_t i);
// Component i of the value of position j.
[[nodiscard]] double value(const LayerView& v, std::size_t head, std::size_t j, std::size_t i);
// True when every element of the S-major and d-major key copies agrees bit for bit
// (trivially true when only one copy is kept; for an int8 copy, when every element is the
// S-major key quantized with its block's scale, and that scale is the absmax / 127 of
// the block's rows so far or larger). For tests of the cache and of this file.
[[nodiscard]] bool key_copies_agree(const LayerView& v);
// Mean of the S stored value rows of `head`, recomputed in double (to check the cache's
// running mean, LayerView::value_mean, which the algorithm uses as v̄).
[[nodiscard]] std::vector<double> recomputed_value_mean(const LayerView& v, std::size_t head);

// ---- Building blocks of Algorithm 1 ---------------------------------------------------

// Indices of the n largest entries of `x`, ties broken by lower index first, returned in
// ascending index order. Requires n <= x.size(). (topk_reference.cpp)
[[nodiscard]] std::vector<std::uint32_t> top_n(std::span<const double> x, std::size_t n);

// Step 3: the last min(window, k_eff) positions, then the positions with the largest
// `score` among the rest (ties: lower position first) until k_eff = min(k, S) are chosen,
// S = score.size(). Ascending positions. (topk_reference.cpp)
[[nodiscard]] std::vector<std::uint32_t> select_positions(std::span<const double> score, std::size_t k,
                                                          std::size_t window);

// Step 2's temperature τ = sqrt(d · Σ_{i∈i1}|q_i| / Σ_i|q_i|); 0 when Σ_{i∈i1}|q_i| = 0
// (then ŝ is uniform). (approx_scores_reference.cpp)
[[nodiscard]] double temperature(std::span<const float> q, std::span<const std::uint32_t> i1);

// Step 2: ŝ[j] = softmax_j( q[i1]·K[j][i1] / τ ) over the S positions of `head`, uniform
// when τ = 0. (approx_scores_reference.cpp)
[[nodiscard]] std::vector<double> approx_scores(const LayerView& v, std::size_t head, std::span<const float> q,
                                                std::span<const std::uint32_t> i1);

// Step 5 (and dense attention): exact softmax attention of one query over `positions`
// of `head`, logits scale·q·K[j]. Writes y' ([d]) and returns log Σ_j exp(logit_j).
// (attention_reference.cpp)
double attend(const LayerView& v, std::size_t head, std::span<const float> q, std::span<const std::uint32_t> positions,
              double scale, std::span<double> out);

// ---- Whole decode steps ---------------------------------------------------------------

// Per query head of the call (n_q of them).
struct Result {
  std::vector<double> out;    // [n_q][d] attention output y
  std::vector<double> lse;    // [n_q] log Σ exp(scale·q·K[j]) over the attended positions
  std::vector<double> alpha;  // [n_q] estimated score mass fetched (1 for dense)
  // SparQ only (empty for dense):
  std::vector<std::vector<std::uint32_t>> components;  // [n_q] i1, ascending (shared: same in a group)
  std::vector<std::vector<std::uint32_t>> selected;    // [n_q] i2, ascending (shared: same in a group)
  std::vector<std::vector<double>> approx_scores;      // [n_q][S] ŝ of each head (never summed)
};

// Exact attention over all S positions. (attention_reference.cpp)
[[nodiscard]] Result dense_decode(const LayerView& v, std::span<const float> q, std::size_t kv_begin,
                                  std::size_t kv_end, std::size_t group, double scale);

// SparQ, DESIGN §1: per-head or GQA-shared selection as p.gqa says (with group = 1 the
// two are the same algorithm). (sparq_reference.cpp)
[[nodiscard]] Result sparq_decode(const LayerView& v, std::span<const float> q, std::size_t kv_begin,
                                  std::size_t kv_end, std::size_t group, double scale, const SparQResolved& p);

// Dense causal attention of a chunk of n_new queries that are the last n_new positions of
// the sequence: query t attends to positions [0, S - n_new + t]. q is [n_new][n_q][d];
// out is [n_new][n_q][d] and lse [n_new][n_q]; alpha is all ones. (attention_reference.cpp)
[[nodiscard]] Result dense_causal(const LayerView& v, std::span<const float> q, std::size_t n_new, std::size_t kv_begin,
                                  std::size_t kv_end, std::size_t group, double scale);

}  // namespace sparq::reference
