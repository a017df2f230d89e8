// Decode traces of a model run (format in docs/eval-traces.md):
// a directory with manifest.json and, per layer l, .npy float32 arrays
//   layer<l>_q.npy [S, n_heads, head_dim]     post-RoPE queries of every position
//   layer<l>_k.npy [S, n_kv_heads, head_dim]  post-RoPE keys as stored in the cache
//   layer<l>_v.npy [S, n_kv_heads, head_dim]  values as stored in the cache
// plus tokens.npy [S] (the token ids as float). Position j's query attends to
// positions [0, j] (causal). Prefill positions are included. This is the format
// `sparq eval` reads (docs/eval-traces.md, sparq/tools/eval/trace.hpp).
#pragma once

#include <cstddef>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "sparq/tools/model/llama_model.hpp"

namespace sparq::cli {

class TraceRecorder {
 public:
  // Starts recording the queries `model` computes for the followed sequences (replaces
  // its query observer).
  explicit TraceRecorder(model::LlamaModel& model);
  ~TraceRecorder();
  TraceRecorder(const TraceRecorder&) = delete;
  TraceRecorder& operator=(const TraceRecorder&) = delete;

  // Records the queries of `seq` too: a fork continues the positions of the sequence it
  // was forked from (positions recorded again overwrite earlier ones).
  void follow(SeqId seq) { followed_.insert(seq); }
  // Resumes / stops recording.
  void start();
  void stop();
  // Writes the trace of `seq` (its first `tokens.size()` positions, whose queries must
  // all have been recorded) into `dir` (created if missing).
  // Positions [0, prefill) were the densely prefilled prompt, the rest decode steps.
  void write(const std::filesystem::path& dir, SeqId seq, const std::vector<int>& tokens, std::size_t prefill,
             const std::string& source) const;

 private:
  model::LlamaModel& model_;
  std::set<SeqId> followed_;
  std::vector<std::vector<float>> q_;  // per layer [positions][n_heads][head_dim]
};

}  // namespace sparq::cli
