// Options shared by the model subcommands (`generate`, `perplexity`, `passkey`): the
// model file, cache storage, and the attention methods to compare.
//
// --method takes a comma-separated list (include/sparq/tools/model/attention_methods.hpp):
// dense, sparq[:C], sparq-real / sparq-noreal / sparq-per-head[-real|-noreal][:C],
// oracle[:C], h2o[:C], window[:C], all. --r, --k, --window, --reallocation and --gqa
// apply to every SparQ entry that does not set them by name. The prompt is processed
// once; each method then continues from a copy-on-write fork of the cache, so methods
// are compared on identical prefixes, and their decode steps run as one batch.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sparq/method.hpp"
#include "sparq/tools/model/attention_methods.hpp"
#include "sparq/tools/model/llama_model.hpp"

namespace CLI {
class App;
}

namespace sparq::cli {

struct ModelRunOptions {
  std::string model;
  bool require_hash = false;
  std::string methods = "dense";
  double ratio = 8.0;
  std::vector<double> ratios;  // --ratios: entries without :C take each (default: --ratio)
  std::optional<std::int64_t> r, k, window;
  std::string reallocation;  // "", "on", "off"
  std::string gqa;           // "", "shared", "per-head"
  std::int64_t sinks = 4;
  std::string dtype = "f32";
  std::string d_major_type = "same";  // same | int8: the d-major key copy SparQ ranks on
  std::int64_t block_tokens = 64;
  std::int64_t prefill_chunk = 256;
  bool json = false;
};

void add_model_run_options(CLI::App& cmd, ModelRunOptions& o);

using model::NamedMethod;

// Parses and checks --method and the SparQ options against the model's head_dim; entries
// without a ratio take each of --ratios (default: --ratio). Throws
// sparq::Error(invalid_argument) naming the bad entry.
[[nodiscard]] std::vector<NamedMethod> parse_methods(const ModelRunOptions& o, std::size_t head_dim);

struct LoadedModel {
  std::unique_ptr<model::LlamaModel> model;
  model::CheckpointInfo info;
};

// Loads the checkpoint (verifying its SHA-256 sidecar) and builds the model with the
// requested cache storage; the vocabulary must cover bytes (>= 256). `attention_mass`:
// record H2O's prefill scores (needs_attention_mass of the methods).
[[nodiscard]] LoadedModel load_model(const ModelRunOptions& o, bool attention_mass);

// {"path", "sha256", "hash_verified", "format", "weights", "config": {...}, "blas"}.
[[nodiscard]] nlohmann::ordered_json model_json(const ModelRunOptions& o, const LoadedModel& m);
// One line: "sparq-lm-8k.bin: SPQLM v2 bf16, 8 layers, dim 512, ... sha256 0123abcd… (verified)".
[[nodiscard]] std::string model_summary(const ModelRunOptions& o, const LoadedModel& m);

// Byte-level tokenizer: one token per byte.
[[nodiscard]] std::vector<int> bytes_to_tokens(std::string_view text);
// Tokens back to text; bytes outside printable ASCII (except \n, \t) as \xNN.
[[nodiscard]] std::string tokens_to_text(const std::vector<int>& tokens);
[[nodiscard]] std::string read_text_file(const std::string& path);

}  // namespace sparq::cli
