// A Llama-shaped decoder with random weights, for timing one decode step of a whole
// model (`sparq bench-model`): the layer shapes are real, the values are not.
//
// Per layer and token: RMSNorm -> fused q/k/v matvec -> RoPE on q and k -> k, v appended
// to the sparq::KVCache -> attention by sparq::decode (Dense or SparQ) -> output matvec and
// residual -> RMSNorm -> fused gate/up matvec -> SiLU(gate) * up -> down matvec and
// residual. Then, when the classifier is on, the final RMSNorm and the vocabulary matvec.
// RoPE rotates adjacent pairs (2i, 2i+1) by pos * base^(-2i / head_dim) (llama2.c's form);
// RMSNorm is x / sqrt(mean(x^2) + eps) * weight.
//
// Weights are drawn uniformly with the variance of N(0, 1/fan_in), each matrix row from its
// own counter-based stream (the same weights whatever the thread count), and packed as
// PackedMatrix (q8 or bf16). Norm weights are 1 + U(-0.1, 0.1).
//
// Thread safety: one step at a time per decoder (scratch buffers are shared).
#pragma once

#include <oneapi/tbb/task_arena.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sparq/kv_cache.hpp"
#include "sparq/method.hpp"
#include "sparq/profile.hpp"
#include "sparq/tools/e2e/matvec.hpp"
#include "sparq/types.hpp"

namespace sparq::e2e {

// The shape of one transformer layer and of the whole model it comes from.
struct LayerShape {
  std::string name;
  std::size_t d_model = 0;
  std::size_t q_heads = 0;
  std::size_t kv_heads = 0;
  std::size_t head_dim = 0;
  std::size_t ffn = 0;           // MLP hidden size (SwiGLU: gate and up are ffn x d_model)
  std::size_t vocab = 0;         // classifier rows
  std::size_t model_layers = 0;  // layers of the real model (per-token figures are scaled to it)
  double rope_base = 10000.0;
  float norm_eps = 1e-5f;

  [[nodiscard]] std::size_t q_dim() const noexcept { return q_heads * head_dim; }
  [[nodiscard]] std::size_t kv_dim() const noexcept { return kv_heads * head_dim; }
  // Weights of one layer's four matrices (q/k/v, output, gate/up, down), unpadded.
  [[nodiscard]] std::uint64_t layer_params() const noexcept;
  // Throws sparq::Error naming the first field out of range.
  void validate() const;
};

// llama2-7b (MHA 32 heads of 128, MLP 11008, vocab 32000, 32 layers), llama3-8b (GQA
// 32/8, MLP 14336, vocab 128256, RoPE base 500000), tiny (for tests: d_model 64, GQA 4/2
// of 16, MLP 176, vocab 300, 2 layers).
[[nodiscard]] std::span<const LayerShape> known_shapes() noexcept;
[[nodiscard]] std::optional<LayerShape> shape_by_name(std::string_view name);

// Bytes one matvec over a PackedMatrix of rows x cols in `format` reads (padding, scales
// and sums included): what PackedMatrix::bytes() returns, without building one.
[[nodiscard]] std::uint64_t packed_bytes(std::size_t rows, std::size_t cols, WeightFormat format) noexcept;
// One layer's four matrices / the classifier, as packed.
[[nodiscard]] std::uint64_t layer_weight_bytes(const LayerShape& shape, WeightFormat format) noexcept;
[[nodiscard]] std::uint64_t classifier_bytes(const LayerShape& shape, WeightFormat format) noexcept;

struct DecoderConfig {
  LayerShape shape;
  std::size_t layers = 1;  // layers built (<= shape.model_layers is not required)
  WeightFormat weights = WeightFormat::q8;
  Q8Kernel q8_kernel = Q8Kernel::automatic;
  bool classifier = true;
  DType kv_dtype = DType::bf16;
  std::size_t block_tokens = 256;
  KeyLayout layout = KeyLayout::both;
  DMajorType d_major_type = DMajorType::same;
  std::size_t capacity_tokens = 1 << 16;  // per layer and head: the longest context + steps
  std::uint64_t seed = 1;
};

// Seconds of one decode step, by part. Layers: everything per layer; head: the final norm
// and the classifier (0 without it).
struct StepTimes {
  double matvec = 0.0;     // the layers' matvecs
  double attention = 0.0;  // sparq::decode
  double append = 0.0;     // KVCache::append of the new k, v
  double other = 0.0;      // norms, RoPE, SiLU, residuals
  double head = 0.0;       // final norm + classifier matvec
  double total = 0.0;      // wall time of the whole step
};

class RandomDecoder {
 public:
  struct Layer {
    std::vector<float> attn_norm, ffn_norm;  // [d_model]
    PackedMatrix wqkv;                       // [q_dim + 2 kv_dim][d_model]: q rows, then k, then v
    PackedMatrix wo;                         // [d_model][q_dim]
    PackedMatrix w_gate_up;                  // [2 ffn][d_model]: gate rows, then up
    PackedMatrix w_down;                     // [d_model][ffn]
  };

  // Builds the weights (in parallel on the current arena) and an empty cache with one
  // sequence. Throws sparq::Error on a bad shape or config.
  explicit RandomDecoder(const DecoderConfig& config);
  ~RandomDecoder();

  [[nodiscard]] const DecoderConfig& config() const noexcept;
  [[nodiscard]] KVCache& cache() noexcept;
  [[nodiscard]] SeqId sequence() const noexcept;
  [[nodiscard]] const Layer& layer(std::size_t l) const;
  [[nodiscard]] std::span<const float> final_norm() const noexcept;
  [[nodiscard]] const PackedMatrix* classifier() const noexcept;  // null when off
  // Bytes the matvecs of one step read: all layers, and the classifier.
  [[nodiscard]] std::uint64_t layer_matvec_bytes() const noexcept;
  [[nodiscard]] std::uint64_t head_matvec_bytes() const noexcept;

  // Appends random K/V (normal, unit variance) to every layer until each holds `length`
  // tokens (no prefill: the values need not come from the weights). on_progress(f) gets
  // the fraction done and returns false to stop early.
  void fill(std::size_t length, const std::function<bool(double)>& on_progress = {});
  // Drops tokens from the end of every layer down to `length`.
  void truncate_to(std::size_t length);

  // One decode step of the token with embedding x [d_model] at the next position (the
  // cache's length): appends its k, v to every layer. out receives the logits [vocab]
  // with the classifier, else the final hidden state [d_model]. attention_profile, when
  // given, accumulates what the decode calls moved.
  StepTimes step(std::span<const float> x, const Method& method, tbb::task_arena* arena, std::span<float> out,
                 Profile* attention_profile = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparq::e2e
