// Llama checkpoints in llama2.c's layout (format in docs/model.md).
//
// File: a header of 7 little-endian int32 (dim, hidden_dim, n_layers, n_heads,
// n_kv_heads, vocab_size, seq_len; a negative vocab_size means the output matrix is
// stored separately, a positive one that it is the token embedding), then float32
// tensors: token embedding [vocab][dim]; per tensor kind, all layers in order:
// attention RMSNorm [dim], wq [dim][dim], wk [kv_dim][dim], wv [kv_dim][dim],
// wo [dim][dim], FFN RMSNorm [dim], w1 [hidden][dim], w2 [dim][hidden],
// w3 [hidden][dim]; final RMSNorm [dim]; RoPE tables cos and sin [seq_len][head_dim/2]
// (read and ignored: the model recomputes them); the output matrix [vocab][dim] when
// not shared. Matrices are row-major [out][in] (y = W x). head_dim = dim / n_heads,
// kv_dim = n_kv_heads * head_dim.
//
// Loading validates the header (every field in range, dim divisible by n_heads,
// n_heads by n_kv_heads) and that the file holds exactly the bytes the header implies,
// then that every weight is finite; anything else throws sparq::Error(bad_file) naming
// the file and the problem. Nothing is allocated beyond the file's size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

namespace sparq::model {

struct LlamaConfig {
  std::size_t dim = 0;
  std::size_t hidden_dim = 0;
  std::size_t n_layers = 0;
  std::size_t n_heads = 0;
  std::size_t n_kv_heads = 0;
  std::size_t vocab_size = 0;
  std::size_t seq_len = 0;
  bool shared_classifier = false;

  [[nodiscard]] std::size_t head_dim() const noexcept { return dim / n_heads; }
  [[nodiscard]] std::size_t kv_dim() const noexcept { return n_kv_heads * head_dim(); }
};

struct LlamaLayer {
  std::vector<float> attn_norm;  // [dim]
  std::vector<float> wq;         // [dim][dim]
  std::vector<float> wk;         // [kv_dim][dim]
  std::vector<float> wv;         // [kv_dim][dim]
  std::vector<float> wo;         // [dim][dim]
  std::vector<float> ffn_norm;   // [dim]
  std::vector<float> w1;         // [hidden][dim]  (gate)
  std::vector<float> w2;         // [dim][hidden]  (down)
  std::vector<float> w3;         // [hidden][dim]  (up)
};

struct LlamaWeights {
  LlamaConfig config;
  std::vector<float> token_embedding;  // [vocab][dim]
  std::vector<LlamaLayer> layers;
  std::vector<float> final_norm;  // [dim]
  std::vector<float> classifier;  // [vocab][dim] (a copy of the embedding when shared)
};

// Throws sparq::Error(bad_file) on a missing, unreadable, truncated or corrupt file.
[[nodiscard]] LlamaWeights load_llama_checkpoint(const std::filesystem::path& path);
[[nodiscard]] LlamaWeights parse_llama_checkpoint(std::span<const std::byte> bytes, std::string_view name);

// The bytes of a checkpoint holding `w` (what tests and tools write). Throws
// sparq::Error(shape_mismatch) when a tensor's size disagrees with the config.
[[nodiscard]] std::vector<std::byte> encode_llama_checkpoint(const LlamaWeights& w);

// Weights of the right shapes, drawn from a seeded normal distribution (std `scale`),
// norms set to 1: for tests and smoke runs.
[[nodiscard]] LlamaWeights random_llama_weights(const LlamaConfig& config, std::uint64_t seed, float scale = 0.05f);

}  // namespace sparq::model
