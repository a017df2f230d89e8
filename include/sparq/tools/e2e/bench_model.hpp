// `sparq bench-model`: tokens per second of a whole model's decode step, dense attention
// against SparQ, on random weights in real layer shapes (decoder.hpp), and the byte model
// that predicts the speed-up (docs/e2e.md).
//
// The run: plan how many layers fit (weights + the KV cache at the longest context in a
// fraction of the available memory), build them, fill the cache once to the longest
// context, then for each context (longest first, the cache truncated down to it) and each
// thread count: measure the read bandwidth, one untimed step per method, then `repeats`
// timed steps per method in alternating order (A B B A ...), and the read bandwidth again.
// Every step appends one token to every layer and is rolled back afterwards, so each one
// decodes at context + 1 positions.
//
// Per-token figures are for the whole model the shape comes from: the timed layers'
// share scaled to shape.model_layers, plus the classifier once (when on):
//   t_token = model_layers / layers x (t_step - t_head) + t_head.
// The speed-up per token does not depend on how many layers were timed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sparq/method.hpp"
#include "sparq/tools/e2e/decoder.hpp"
#include "sparq/tools/machine.hpp"
#include "sparq/tools/roofline.hpp"
#include "sparq/types.hpp"

namespace sparq::e2e {

struct MethodSpec {
  std::string label;  // "dense", "sparq:8"
  Method method;
};
// "dense", "sparq" (ratio 8) or "sparq:<ratio>" (a finite ratio >= 1); nullopt otherwise.
[[nodiscard]] std::optional<MethodSpec> parse_method_spec(std::string_view text);

// --- Byte model: what one token moves, for the whole model (shape.model_layers layers).
struct TokenBytes {
  std::uint64_t weights = 0;    // all layers' matrices + the classifier (when on)
  std::uint64_t attention = 0;  // every layer's decode at `context` positions (DESIGN §1)
  [[nodiscard]] std::uint64_t total() const noexcept { return weights + attention; }
};
// `storage`: the cache's key layout and d-major copy type (an int8 copy halves SparQ's
// stage 1 bytes in bf16/f16).
[[nodiscard]] TokenBytes token_bytes(const LayerShape& shape, WeightFormat weights, bool classifier,
                                     const Method& method, std::size_t context, DType kv_dtype,
                                     const StorageModel& storage = {});
// Stored bytes of one layer's cache at `tokens` tokens: every copy `storage` keeps (both:
// K S-major, K d-major, V; an int8 copy at one byte per element), whole blocks
// (stored_bytes_per_layer()).
[[nodiscard]] std::uint64_t cache_bytes_per_layer(const LayerShape& shape, std::size_t tokens, DType kv_dtype,
                                                  const StorageModel& storage);

struct BenchModelOptions {
  LayerShape shape;
  std::size_t layers = 0;        // 0: as many as fit in memory_fraction of the available memory
  double memory_fraction = 0.6;  // of MemAvailable, for weights + cache + read buffer
  std::vector<std::size_t> contexts;
  std::vector<MethodSpec> methods;  // the first is the baseline of the speed-ups
  std::vector<std::size_t> threads;
  std::size_t repeats = 5;  // timed steps per method, context and thread count
  WeightFormat weights = WeightFormat::q8;
  Q8Kernel q8_kernel = Q8Kernel::automatic;
  bool classifier = true;
  DType kv_dtype = DType::bf16;
  std::size_t block_tokens = 256;
  KeyLayout layout = KeyLayout::both;
  DMajorType d_major_type = DMajorType::same;  // int8: only with a d-major copy (both, fused)
  std::size_t bw_buffer_bytes = 0;             // read-bandwidth buffer; 0: default_read_buffer_bytes()
  std::uint64_t seed = 1;
};

// The storage the options describe, for token_bytes() and cache_bytes_per_layer().
[[nodiscard]] StorageModel storage_model(const BenchModelOptions& options) noexcept;

struct LayerPlan {
  std::size_t layers = 0;
  bool fits = true;                   // false: --layers asked for more than the budget
  std::uint64_t available_bytes = 0;  // MemAvailable
  std::uint64_t budget_bytes = 0;     // memory_fraction of it
  std::uint64_t fixed_bytes = 0;      // read buffer + classifier + fill pool
  std::uint64_t per_layer_bytes = 0;  // weights + cache at the longest context
};
// Validates the options (throws sparq::Error naming the first bad one) and sizes the run.
[[nodiscard]] LayerPlan plan_layers(const BenchModelOptions& options);

struct BenchRow {
  std::size_t threads = 0;
  std::size_t context = 0;
  std::string method;
  std::size_t steps = 0;
  StepTimes median;  // of the timed layers (+ head), per part, seconds
  // Per token of the whole model (see above), medians over the steps:
  double token_seconds = 0.0;
  double tokens_per_s = 0.0;
  double attention_seconds = 0.0;  // decode + KV append
  double rest_seconds = 0.0;       // token_seconds - attention_seconds
  double speedup = 0.0;            // the baseline method's token_seconds / this row's
  double predicted_speedup = 0.0;  // byte model at equal bandwidth, against the baseline
  double attention_speedup = 0.0;  // the baseline's attention_seconds / this row's
  TokenBytes model_bytes;          // byte model, per token
  // Measured over the timed layers (+ head):
  std::uint64_t matvec_bytes = 0;     // per step
  std::uint64_t attention_bytes = 0;  // per step, as the decode profile counted
  double matvec_gb_per_s = 0.0;
  double matvec_bw_fraction = 0.0;  // of read_gb_per_s
  double attention_gb_per_s = 0.0;
  double attention_bw_fraction = 0.0;
  double read_gb_per_s = 0.0;  // mean of the measurements before and after this block
  double read_gb_per_s_before = 0.0;
  double read_gb_per_s_after = 0.0;
};

struct BenchModelResult {
  MachineInfo machine;
  Isa isa = Isa::generic;
  Q8Kernel q8_kernel = Q8Kernel::widen;  // resolved (q8 weights only)
  LayerPlan plan;
  std::uint64_t weight_bytes = 0;  // the timed layers' matrices + classifier, as packed
  std::uint64_t cache_bytes = 0;   // KVCache::memory_usage().total() after the fill
  std::size_t read_buffer_bytes = 0;
  double build_seconds = 0.0;
  double fill_seconds = 0.0;
  std::vector<BenchRow> rows;  // by thread count, then context, then method (as given)
  bool interrupted = false;
};

// Called with a line of progress; returns false to stop (the run then returns what it
// measured, with interrupted set).
using BenchProgress = std::function<bool(const std::string& message)>;

[[nodiscard]] BenchModelResult run_bench_model(const BenchModelOptions& options, const BenchProgress& progress);

}  // namespace sparq::e2e
