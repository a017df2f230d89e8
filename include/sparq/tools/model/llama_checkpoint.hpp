// Llama checkpoints: llama2.c's f32 layout (version 1) and sparq's SPQLM format
// (version 2, f16 or bf16; docs/model.md, tools/train/export.py).
//
// Version 1 (llama2.c): a header of 7 little-endian int32 (dim, hidden_dim, n_layers,
// n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means the output
// matrix is stored separately, a positive one that it is the token embedding), then
// float32 tensors: token embedding [vocab][dim]; per tensor kind, all layers in order:
// attention RMSNorm [dim], wq [dim][dim], wk [kv_dim][dim], wv [kv_dim][dim],
// wo [dim][dim], FFN RMSNorm [dim], w1 [hidden][dim], w2 [dim][hidden],
// w3 [hidden][dim]; final RMSNorm [dim]; RoPE tables cos and sin [seq_len][head_dim/2]
// (read and ignored: the model recomputes them); the output matrix [vocab][dim] when
// not shared. RoPE base 10000 and RMSNorm eps 1e-5 are implied.
//
// Version 2 (SPQLM): 8 bytes magic "SPQLM\0\0\0", u32 version = 2, u32 dtype (1 = f16,
// 2 = bf16), i32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len,
// f32 rope_theta, f32 norm_eps; then the same tensors as version 1 in `dtype`, without
// the RoPE tables, the classifier [vocab][dim] always stored. Nothing follows.
//
// Matrices are row-major [out][in] (y = W x). head_dim = dim / n_heads, kv_dim =
// n_kv_heads * head_dim. The format is detected by the magic (no version 1 header can
// start with it: its first field would be dim = 1280397395).
//
// Loading validates the header (every field in range, dim divisible by n_heads,
// n_heads by n_kv_heads, rope_theta and norm_eps finite and positive) and that the file
// holds exactly the bytes the header implies, then that every weight is finite; anything
// else throws sparq::Error(bad_file) naming the file and the problem. Weights are
// widened to f32; nothing is allocated before the size check passed (so at most twice
// the file's size for a 16-bit file).
//
// Integrity: load_llama_checkpoint() computes the file's SHA-256 and, when a sidecar
// FILE.sha256 exists (sha256sum's format, "<64 hex digits>  <basename>\n"), refuses a
// file whose hash differs, naming both hashes. `require_hash` makes the sidecar
// mandatory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sparq/types.hpp"

namespace sparq::model {

struct LlamaConfig {
  std::size_t dim = 0;
  std::size_t hidden_dim = 0;
  std::size_t n_layers = 0;
  std::size_t n_heads = 0;
  std::size_t n_kv_heads = 0;
  std::size_t vocab_size = 0;
  std::size_t seq_len = 0;
  bool shared_classifier = false;  // version 1 only
  float rope_theta = 10000.0f;     // RoPE base
  float norm_eps = 1e-5f;          // RMSNorm epsilon

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

// Where the weights came from (filled by the loader).
struct CheckpointInfo {
  int version = 1;             // 1: llama2.c f32, 2: SPQLM
  DType dtype = DType::f32;    // element type in the file
  std::string sha256;          // of the whole file, lower-case hex (load_llama_checkpoint only)
  bool hash_verified = false;  // a sidecar FILE.sha256 existed and matched
};

struct LlamaWeights {
  LlamaConfig config;
  std::vector<float> token_embedding;  // [vocab][dim]
  std::vector<LlamaLayer> layers;
  std::vector<float> final_norm;  // [dim]
  std::vector<float> classifier;  // [vocab][dim] (a copy of the embedding when shared)
  CheckpointInfo info;
};

struct LoadOptions {
  bool require_hash = false;  // refuse a file without a FILE.sha256 sidecar
};

// Throws sparq::Error: io_error for a missing or unreadable file, bad_file for a
// truncated, corrupt or hash-mismatched one (or a missing sidecar with require_hash).
[[nodiscard]] LlamaWeights load_llama_checkpoint(const std::filesystem::path& path, const LoadOptions& options = {});
// Parses checkpoint bytes of either version (no hash check); `name` appears in errors.
// Safe on arbitrary input: every size is checked before it is used.
[[nodiscard]] LlamaWeights parse_llama_checkpoint(std::span<const std::byte> bytes, std::string_view name);

// The bytes of a version 1 checkpoint holding `w` (what tests and tools write). Throws
// sparq::Error(shape_mismatch) when a tensor's size disagrees with the config.
[[nodiscard]] std::vector<std::byte> encode_llama_checkpoint(const LlamaWeights& w);
// The bytes of a version 2 checkpoint in `dtype` (f16 or bf16, rounded to nearest even;
// the classifier is stored even when shared). Throws as above, and invalid_argument for
// dtype f32.
[[nodiscard]] std::vector<std::byte> encode_spqlm_checkpoint(const LlamaWeights& w, DType dtype);

// SHA-256 of `bytes` as 64 lower-case hex digits.
[[nodiscard]] std::string sha256_hex(std::span<const std::byte> bytes);
// Writes `bytes` to `path` and the sidecar `path`.sha256 (sha256sum's format).
void write_checkpoint_file(const std::filesystem::path& path, std::span<const std::byte> bytes);

// Weights of the right shapes, drawn from a seeded normal distribution (std `scale`),
// norms set to 1: for tests and smoke runs.
[[nodiscard]] LlamaWeights random_llama_weights(const LlamaConfig& config, std::uint64_t seed, float scale = 0.05f);

}  // namespace sparq::model
