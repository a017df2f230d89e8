// A Llama-style decoder run in plain C++ with attention from the sparq library: the
// smallest honest example of linking sparq into an inference loop.
//
// Per layer: RMSNorm -> q, k, v projections -> RoPE (adjacent pairs (2i, 2i+1), base
// 10000, as llama2.c) -> K and V appended to a sparq::KVCache -> attention by
// sparq::decode_causal (prefill, dense) or sparq::decode (one decode step, Dense or
// SparQ) -> output projection and residual -> RMSNorm -> SwiGLU MLP and residual.
// Final RMSNorm and the output matrix give logits. Tokens are bytes when vocab = 256.
//
// Matrices are kept transposed ([in][out]) so that the inner loop of a matrix-vector
// product is a contiguous axpy the compiler vectorizes without reassociating sums.
//
// Thread safety: one model object may serve several sequences, but calls must not
// overlap (the scratch buffers are shared).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "sparq/tools/model/llama_checkpoint.hpp"
#include "sparq/decode.hpp"
#include "sparq/kv_cache.hpp"
#include "sparq/method.hpp"
#include "sparq/types.hpp"

namespace sparq::model {

struct ModelOptions {
  DType dtype = DType::f32;         // storage of the cached K/V
  std::size_t block_tokens = 64;    // cache block size
  std::size_t capacity_tokens = 0;  // 0: 8 * seq_len
  KeyLayout layouts = KeyLayout::both;
};

// Called with the post-RoPE queries of `n` consecutive positions starting at `pos` of
// one layer: q is [n][n_heads][head_dim]. Used to dump decode traces.
using QueryObserver = std::function<void(std::size_t layer, std::size_t pos, std::size_t n, std::span<const float> q)>;

// Per-step SparQ statistics (summed over layers and query heads).
struct StepStats {
  double alpha_sum = 0.0;
  std::size_t alpha_count = 0;
};

class LlamaModel {
 public:
  // Throws sparq::Error(invalid_argument) when the options are unusable.
  LlamaModel(const LlamaWeights& weights, const ModelOptions& options = {});

  [[nodiscard]] const LlamaConfig& config() const noexcept { return config_; }
  [[nodiscard]] KVCache& cache() noexcept { return cache_; }
  [[nodiscard]] const KVCache& cache() const noexcept { return cache_; }

  [[nodiscard]] SeqId add_sequence() { return cache_.add_sequence(); }
  // Positions processed so far.
  [[nodiscard]] std::size_t length(SeqId seq) const { return cache_.length(seq, 0); }

  // Runs `tokens` (>= 1) through the model with dense causal attention, appending their
  // K/V; returns the logits after the last one [vocab]. `all_logits`, when given,
  // receives the logits of every token [n][vocab].
  std::vector<float> prefill(SeqId seq, std::span<const int> tokens, std::vector<float>* all_logits = nullptr);

  // One token at the next position, attention by `method`; returns logits [vocab].
  std::vector<float> step(SeqId seq, int token, const Method& method, StepStats* stats = nullptr);

  void set_query_observer(QueryObserver observer) { observer_ = std::move(observer); }

 private:
  struct Layer {
    std::vector<float> attn_norm, wq_t, wk_t, wv_t, wo_t, ffn_norm, w1_t, w2_t, w3_t;  // *_t: [in][out]
  };
  // Runs n tokens (embedded in x_ [n][dim]) at positions pos.. through every layer.
  void forward(SeqId seq, std::size_t n, const Method* method, StepStats* stats);
  void rope(float* v, std::size_t n_heads, std::size_t pos) const;
  void logits_of(const float* x, float* out) const;
  void check_token(int token) const;

  LlamaConfig config_;
  std::vector<float> embedding_, final_norm_, classifier_;  // classifier: [vocab][dim]
  std::vector<Layer> layers_;
  std::vector<float> inv_freq_;  // [head_dim/2]
  KVCache cache_;
  QueryObserver observer_;
  // scratch, [n][...]
  std::vector<float> x_, h_, q_, k_, v_, att_, gate_, up_;
};

// Greedy argmax (lowest index on ties).
[[nodiscard]] int argmax(std::span<const float> logits);
// log softmax(logits)[target].
[[nodiscard]] double log_prob(std::span<const float> logits, int target);

}  // namespace sparq::model
