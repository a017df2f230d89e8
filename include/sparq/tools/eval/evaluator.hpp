// `sparq eval`'s engine: replays the decode steps of a trace with dense attention and
// each method at each compression ratio, and measures each against dense
// (docs/eval-traces.md). Dense and SparQ run through sparq::decode on an f32 cache
// that grows position by position as in a model; the baselines come from lib/eval/.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "sparq/tools/eval/methods.hpp"
#include "sparq/tools/eval/metrics.hpp"
#include "sparq/tools/eval/trace.hpp"

namespace sparq::eval {

struct EvalOptions {
  std::vector<double> ratios = {2, 4, 8, 16};  // each >= 1
  std::vector<EvalMethod> methods = {std::begin(kAllMethods), std::end(kAllMethods)};
  std::vector<std::size_t> layers;             // empty: every layer
  std::size_t steps = 0;                       // decode steps evaluated, evenly spaced; 0: all
  std::size_t sinks = 4;                       // sink-window's sink positions
  std::size_t block_tokens = 256;              // of the cache sparq::decode reads
  DMajorType d_major_type = DMajorType::same;  // of its d-major key copy (int8: approximate ranking)
  bool per_head = false;                       // also summarize every (layer, query head)
  // Called after each layer with (layers done, layers total); may be empty.
  std::function<void(std::size_t, std::size_t)> progress;
};

struct MethodResult {
  EvalMethod method;
  double ratio = 0;
  std::vector<Summary> per_layer;  // aligned with EvalResult::layers
  // With EvalOptions::per_head: [layer index][query head] (bytes and transfer are per
  // layer, so they are left 0 here).
  std::vector<std::vector<Summary>> per_head;
  Summary overall;
};

struct EvalResult {
  TraceManifest manifest;
  std::vector<std::size_t> layers;           // evaluated
  std::vector<std::size_t> steps;            // decode positions evaluated (S = step + 1)
  std::vector<double> dense_bytes_per_step;  // per layer (Profile of sparq::decode)
  double dense_bytes_overall = 0;
  std::string isa;
  DMajorType d_major_type = DMajorType::same;  // EvalOptions::d_major_type
  std::vector<MethodResult> rows;              // methods × ratios, in the order of the options
};

// The decode positions evaluated: every one of [prefill, positions) when steps is 0 or
// at least their number, else `steps` of them evenly spaced, the first and last included.
[[nodiscard]] std::vector<std::size_t> select_steps(const TraceManifest& m, std::size_t steps);

// Throws sparq::Error for bad options (ratio < 1, layer out of range, no method).
using LayerLoader = std::function<TraceLayer(std::size_t layer)>;
[[nodiscard]] EvalResult run_eval(const TraceManifest& manifest, const LayerLoader& load, const EvalOptions& options);
// Reads the trace in `dir` (validating it) layer by layer.
[[nodiscard]] EvalResult run_eval(const std::filesystem::path& dir, const EvalOptions& options);

}  // namespace sparq::eval
