// Decode traces: the attention inputs of a model run, on disk, for `sparq eval`.
//
// A trace is a directory (format documented in docs/eval-traces.md; the same format
// `sparq generate --trace` writes, lib/model/model_trace.cpp):
//   manifest.json                 model shape, number of positions, prefill/decode split,
//                                 source, optional RoPE info, softmax scale, file names
//   layer<L>_q.npy  float32 [positions][q_heads][head_dim]   queries of every position
//   layer<L>_k.npy  float32 [positions][kv_heads][head_dim]  post-RoPE keys
//   layer<L>_v.npy  float32 [positions][kv_heads][head_dim]  values
// L = 0 .. layers-1 in decimal without padding; the manifest's optional "files" list
// may name them otherwise. Positions [0, prefill) are the prompt (prefill defaults to
// 0), [prefill, positions) the decode steps: at decode step t the cache holds positions
// [0, t] and the query is q[t].
//
// Reading validates everything and throws sparq::Error naming the file and the rule it
// broke: a missing or unreadable file (io_error), a malformed manifest or .npy
// (bad_file), arrays whose shape disagrees with the manifest (shape_mismatch), NaN or
// Inf (non_finite_input).
//
// Writing is atomic per file (lib/io) and writes manifest.json last, so a directory
// without a manifest is an unfinished trace.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sparq/types.hpp"

namespace sparq::eval {

inline constexpr const char* kTraceFormat = "sparq-decode-trace";
inline constexpr int kTraceVersion = 1;

struct RopeInfo {
  double base = 10000.0;  // base ("theta") of the rotary frequencies
  std::string pairs;      // which components rotate together, e.g. "adjacent (2i, 2i+1)"
};

// File names of one layer's arrays, relative to the trace directory.
struct LayerFiles {
  std::string q, k, v;
};

struct TraceManifest {
  ModelShape shape;               // layers, q_heads, kv_heads, head_dim
  std::size_t positions = 0;      // N >= 1
  std::size_t prefill = 0;        // positions [0, prefill) are the prompt; 0 <= prefill < N
  std::string source;             // free text: producer tool, model, checkpoint, prompt
  std::optional<double> scale;    // softmax scale; absent means 1/sqrt(head_dim)
  std::optional<RopeInfo> rope;   // informational only: K and Q are stored post-RoPE
  std::vector<LayerFiles> files;  // per layer; empty means the default names

  // The files of `layer`: files[layer] when given, else layer<L>_{q,k,v}.npy.
  [[nodiscard]] LayerFiles layer_files(std::size_t layer) const;

  [[nodiscard]] std::size_t decode_steps() const noexcept { return positions - prefill; }
  [[nodiscard]] double softmax_scale() const;
  // Throws sparq::Error naming the first field outside its range.
  void validate() const;
};

// Q, K, V of one layer, position-major as on disk.
struct TraceLayer {
  std::size_t layer = 0;
  std::size_t positions = 0, q_heads = 0, kv_heads = 0, head_dim = 0;
  std::vector<float> q;  // [positions][q_heads][head_dim]
  std::vector<float> k;  // [positions][kv_heads][head_dim]
  std::vector<float> v;  // [positions][kv_heads][head_dim]

  [[nodiscard]] std::span<const float> query(std::size_t pos, std::size_t head) const {
    return std::span(q).subspan((pos * q_heads + head) * head_dim, head_dim);
  }
  [[nodiscard]] std::span<const float> queries(std::size_t pos) const {
    return std::span(q).subspan(pos * q_heads * head_dim, q_heads * head_dim);
  }
  [[nodiscard]] std::span<const float> key(std::size_t pos, std::size_t kv_head) const {
    return std::span(k).subspan((pos * kv_heads + kv_head) * head_dim, head_dim);
  }
  [[nodiscard]] std::span<const float> value(std::size_t pos, std::size_t kv_head) const {
    return std::span(v).subspan((pos * kv_heads + kv_head) * head_dim, head_dim);
  }
};

// Default file names inside a trace directory.
[[nodiscard]] std::string trace_file(char which, std::size_t layer);  // "layer3_q.npy"
inline constexpr const char* kManifestFile = "manifest.json";

// Reads and validates manifest.json of `dir`.
[[nodiscard]] TraceManifest read_trace_manifest(const std::filesystem::path& dir);
// Reads and validates q/k/v of one layer against the manifest (shapes, finiteness).
[[nodiscard]] TraceLayer read_trace_layer(const std::filesystem::path& dir, const TraceManifest& manifest,
                                          std::size_t layer);

// Writes manifest.json (atomically). Validates first.
void write_trace_manifest(const std::filesystem::path& dir, const TraceManifest& manifest);
// Writes q/k/v of one layer (atomically), checking sizes against the manifest.
void write_trace_layer(const std::filesystem::path& dir, const TraceManifest& manifest, const TraceLayer& layer);

// Collects a trace while a model runs, position by position (or chunk by chunk), and
// writes it at the end. Memory: (q_heads + 2·kv_heads)·head_dim floats per position
// per layer. Not thread-safe; one writer per trace.
class TraceWriter {
 public:
  // `manifest.positions` and `prefill` are ignored here: they are set by finish().
  TraceWriter(std::filesystem::path dir, TraceManifest manifest);

  // Appends n positions of one layer: q [n][q_heads][d], k and v [n][kv_heads][d]
  // (post-RoPE). Throws shape_mismatch on wrong sizes, non_finite_input on NaN/Inf.
  void append(std::size_t layer, std::span<const float> q, std::span<const float> k, std::span<const float> v,
              std::size_t n = 1);
  // Positions appended so far to `layer`.
  [[nodiscard]] std::size_t positions(std::size_t layer) const;

  // Creates the directory, writes every layer and then manifest.json. Every layer must
  // hold the same number of positions N >= 1, and prefill < N. Throws sparq::Error.
  void finish(std::size_t prefill);

 private:
  std::filesystem::path dir_;
  TraceManifest manifest_;
  std::vector<TraceLayer> layers_;
};

}  // namespace sparq::eval
