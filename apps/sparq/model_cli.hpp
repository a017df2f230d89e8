// Options shared by the model subcommands (`generate`, `perplexity`): the model file,
// cache storage, and the attention methods to compare.
//
// --method takes a comma-separated list; each entry is `dense`, `sparq` (ratio from
// --ratio) or `sparq:C` (ratio C). --r, --k, --window, --reallocation and --gqa apply
// to every SparQ entry. The prompt is processed once; each method then continues from
// a copy-on-write fork of the cache, so methods are compared on identical prefixes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sparq/tools/model/llama_model.hpp"
#include "sparq/method.hpp"

namespace CLI {
class App;
}

namespace sparq::cli {

struct ModelRunOptions {
  std::string model;
  std::string methods = "dense";
  double ratio = 8.0;
  std::optional<std::int64_t> r, k, window;
  std::string reallocation;  // "", "on", "off"
  std::string gqa = "shared";
  std::string dtype = "f32";
  std::int64_t block_tokens = 64;
  bool json = false;
};

void add_model_run_options(CLI::App& cmd, ModelRunOptions& o);

struct NamedMethod {
  std::string name;  // "dense", "sparq:8"
  Method method;
  double ratio = 0.0;  // 0 for dense
};

// Parses and checks --method and the SparQ options against the model's head_dim.
// Throws sparq::Error(invalid_argument) naming the bad entry.
[[nodiscard]] std::vector<NamedMethod> parse_methods(const ModelRunOptions& o, std::size_t head_dim);

// Loads the checkpoint and builds the model with the requested cache storage; the
// vocabulary must cover bytes (>= 256).
[[nodiscard]] std::unique_ptr<model::LlamaModel> load_model(const ModelRunOptions& o);

// Byte-level tokenizer: one token per byte.
[[nodiscard]] std::vector<int> bytes_to_tokens(std::string_view text);
// Tokens back to text; bytes outside printable ASCII (except \n, \t) as \xNN.
[[nodiscard]] std::string tokens_to_text(const std::vector<int>& tokens);
[[nodiscard]] std::string read_text_file(const std::string& path);

}  // namespace sparq::cli
