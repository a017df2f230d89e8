// A Llama-style decoder run in plain C++ with attention from the sparq library: the
// smallest honest example of linking sparq into an inference loop, and the runtime of
// `sparq generate`, `sparq perplexity` and `sparq passkey` (docs/model.md).
//
// Per layer: RMSNorm -> q, k, v projections -> RoPE (adjacent pairs (2i, 2i+1), base
// rope_theta, angles formed in double as tools/train/model.py does) -> K and V appended
// to a sparq::KVCache -> attention -> output projection and residual -> RMSNorm ->
// SwiGLU MLP and residual. Final RMSNorm and the classifier give logits. Tokens are
// bytes when vocab = 256.
//
// Attention: a prompt is prefilled in chunks with dense causal attention
// (sparq::decode_causal); then each decode step attends with a method of its own:
// Dense or SparQ through sparq::decode, or one of the equal-bytes baselines below, which
// this runtime computes itself from the cache's rows (they are not library methods).
// Matrix products over a chunk of tokens (a prompt chunk, or one decode step of several
// sequences at once) go through OpenBLAS's sgemm (lib/model/linear.hpp).
//
// Thread safety: one model object may serve several sequences, but calls must not
// overlap (the scratch buffers are shared). Results do not depend on the thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "sparq/decode.hpp"
#include "sparq/kv_cache.hpp"
#include "sparq/method.hpp"
#include "sparq/tools/model/llama_checkpoint.hpp"
#include "sparq/types.hpp"

namespace sparq::eval {
class H2OCache;
}

namespace sparq::model {

// Baselines that attend exactly over a subset of the cached positions, chosen per KV
// head and sized to move the same bytes as SparQ at compression ratio `ratio`
// (k' = equal_bytes_budget(head_dim, S, ratio), lib/eval/equal_bytes.hpp):
//  - oracle: the k' positions with the largest true attention summed over the group;
//  - h2o: Heavy-Hitter Oracle eviction (lib/eval/h2o.hpp), its scores starting from the
//    attention each prompt position received during the dense prefill (which needs
//    ModelOptions::attention_mass), then accumulated step by step;
//  - sink_window: the first `sinks` positions and the most recent ones.
enum class BaselineKind { oracle, h2o, sink_window };
struct Baseline {
  BaselineKind kind = BaselineKind::oracle;
  double ratio = 8.0;     // >= 1
  std::size_t sinks = 4;  // sink_window only
};

using AttentionMethod = std::variant<Dense, SparQ, Baseline>;

struct ModelOptions {
  DType dtype = DType::f32;         // storage of the cached K/V
  std::size_t block_tokens = 64;    // cache block size
  std::size_t capacity_tokens = 0;  // 0: 8 * seq_len
  KeyLayout layouts = KeyLayout::both;
  // int8: SparQ's stage 1 ranks positions on an int8 d-major copy (half its bytes).
  DMajorType d_major_type = DMajorType::same;
  std::size_t prefill_chunk = 256;  // tokens per forward pass of a prefill
  // Record, during prefill, the attention every prompt position receives (H2O's starting
  // scores): about one more QK^T of the prompt per layer.
  bool attention_mass = false;
};

// Called with the post-RoPE queries of `n` consecutive positions starting at `pos` of
// one layer of `seq`: q is [n][n_heads][head_dim]. Used to dump decode traces.
using QueryObserver =
    std::function<void(SeqId seq, std::size_t layer, std::size_t pos, std::size_t n, std::span<const float> q)>;

// Per-step statistics of one sequence (summed over layers and query heads).
struct StepStats {
  double alpha_sum = 0.0;  // SparQ: estimated score mass fetched
  std::size_t alpha_count = 0;
  // Bytes of K/V (and SparQ's d-major keys and v̄) the attention read, summed over layers
  // and steps: Dense and SparQ as sparq::Profile counted what the kernels touched; the
  // baselines their k' key and value rows per KV head (2·k'·d·element size).
  double bytes = 0.0;
  std::size_t steps = 0;
};

// One sequence's token in a batched decode step.
struct StepItem {
  SeqId seq = 0;
  int token = 0;
  const AttentionMethod* method = nullptr;
  StepStats* stats = nullptr;  // optional
};

class LlamaModel {
 public:
  // Throws sparq::Error(invalid_argument) when the options are unusable.
  LlamaModel(const LlamaWeights& weights, const ModelOptions& options = {});
  ~LlamaModel();
  LlamaModel(const LlamaModel&) = delete;
  LlamaModel& operator=(const LlamaModel&) = delete;

  [[nodiscard]] const LlamaConfig& config() const noexcept { return config_; }
  [[nodiscard]] const ModelOptions& options() const noexcept { return options_; }
  [[nodiscard]] KVCache& cache() noexcept { return cache_; }
  [[nodiscard]] const KVCache& cache() const noexcept { return cache_; }

  [[nodiscard]] SeqId add_sequence();
  // A copy-on-write fork of `seq` (its cache, its recorded attention mass and H2O state).
  [[nodiscard]] SeqId fork(SeqId seq);
  void remove_sequence(SeqId seq);
  // Positions processed so far.
  [[nodiscard]] std::size_t length(SeqId seq) const { return cache_.length(seq, 0); }

  // Runs `tokens` (>= 1) through the model with dense causal attention, in chunks of
  // options().prefill_chunk, appending their K/V; returns the logits after the last one
  // [vocab]. `all_logits`, when given, receives the logits of every token [n][vocab].
  std::vector<float> prefill(SeqId seq, std::span<const int> tokens, std::vector<float>* all_logits = nullptr);

  // One token at the next position of `seq`, attention by `method`; returns logits [vocab].
  std::vector<float> step(SeqId seq, int token, const AttentionMethod& method, StepStats* stats = nullptr);
  // One decode step of several distinct sequences at once (one token each, each with its
  // own method); logits receives [batch.size()][vocab]. The same results as stepping
  // them one by one, with the weights read once for the whole batch.
  void step(std::span<const StepItem> batch, std::vector<float>& logits);

  void set_query_observer(QueryObserver observer) { observer_ = std::move(observer); }
  // ModelOptions::attention_mass for the prefills that follow.
  void set_attention_mass(bool on) noexcept { options_.attention_mass = on; }

 private:
  struct Layer {
    std::vector<float> attn_norm, wq, wk, wv, wo, ffn_norm, w1, w2, w3;  // as in the file: [out][in]
  };
  struct SeqState;
  SeqState& state(SeqId seq);
  // Runs n tokens (embedded in x_ [n][dim]) through every layer. Prefill: one sequence,
  // positions pos.. (items empty). Decode: n = items.size(), one token per sequence.
  void forward(SeqId seq, std::size_t n, std::span<const StepItem> items);
  void attend_step(std::size_t layer, std::span<const StepItem> items);
  void rope(float* v, std::size_t n_heads, const float* cos_sin) const;
  void rope_table(std::size_t pos, std::vector<float>& out) const;
  void logits_of(const float* x, std::size_t n, float* out);
  void check_token(int token) const;

  LlamaConfig config_;
  ModelOptions options_;
  std::vector<float> embedding_, final_norm_, classifier_;  // classifier: [vocab][dim]
  std::vector<Layer> layers_;
  std::vector<double> inv_freq_;  // [head_dim/2]
  KVCache cache_;
  QueryObserver observer_;
  std::map<SeqId, std::unique_ptr<SeqState>> states_;  // only for sequences with H2O data
  // scratch, [n][...]
  std::vector<float> x_, h_, q_, k_, v_, att_, gate_, up_, rope_;
};

// What computes the matrix products: "OpenBLAS 0.3.21 ... / SkylakeX" or "portable
// loops (why)". Loads OpenBLAS if it was not loaded yet.
[[nodiscard]] std::string blas_in_use();

// Greedy argmax (lowest index on ties).
[[nodiscard]] int argmax(std::span<const float> logits);
// log softmax(logits)[target].
[[nodiscard]] double log_prob(std::span<const float> logits, int target);

}  // namespace sparq::model
