#include "model_cli.hpp"

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <fstream>
#include <iterator>
#include <sstream>

#include "cli.hpp"
#include "options.hpp"
#include "sparq/error.hpp"
#include "sparq/types.hpp"

namespace sparq::cli {

void add_model_run_options(CLI::App& cmd, ModelRunOptions& o) {
  cmd.add_option("--model", o.model, "Checkpoint in llama2.c layout (docs/model.md)")->required();
  cmd.add_option("--method", o.methods, "Comma-separated methods: dense, sparq (ratio from --ratio), sparq:C (ratio C)")
      ->capture_default_str();
  cmd.add_option("--ratio", o.ratio, "SparQ compression ratio c >= 1 for plain `sparq` entries")
      ->check(number_at_least(1.0))
      ->capture_default_str();
  cmd.add_option("--r", o.r, "SparQ: query components kept, 1 <= r <= head_dim (overrides the ratio)")
      ->transform(integer_in(1, 1 << 14));
  cmd.add_option("--k", o.k, "SparQ: positions fetched, k >= 1, window included (overrides the ratio)")
      ->transform(integer_in(1, kMaxInt64));
  cmd.add_option("--window", o.window, "SparQ: local window l >= 0 (default k/4)")->transform(integer_in(0, kMaxInt64));
  cmd.add_option("--reallocation", o.reallocation, "SparQ: mean-value reallocation (default: off for GQA)")
      ->check(CLI::IsMember({"on", "off"}));
  cmd.add_option("--gqa", o.gqa, "SparQ GQA selection")
      ->check(CLI::IsMember({"shared", "per-head"}))
      ->capture_default_str();
  cmd.add_option("--dtype", o.dtype, "Storage type of the cached K/V")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}))
      ->capture_default_str();
  cmd.add_option("--block-tokens", o.block_tokens, "Tokens per cache block")
      ->transform(integer_in(1, 1 << 16))
      ->capture_default_str();
  cmd.add_flag("--json", o.json, "Print the results as JSON");
}

std::vector<NamedMethod> parse_methods(const ModelRunOptions& o, std::size_t head_dim) {
  if (o.r && std::uint64_t(*o.r) > head_dim)
    usage_error(fmt::format("--r={} is invalid: r must be in [1, head_dim={}]", *o.r, head_dim));
  std::vector<NamedMethod> out;
  std::stringstream list(o.methods);
  std::string entry;
  while (std::getline(list, entry, ',')) {
    if (entry == "dense") {
      out.push_back({"dense", Dense{}, 0.0});
      continue;
    }
    double ratio = o.ratio;
    if (entry.rfind("sparq:", 0) == 0) {
      try {
        std::size_t used = 0;
        ratio = std::stod(entry.substr(6), &used);
        if (used != entry.size() - 6) throw std::invalid_argument("trailing");
      } catch (const std::exception&) {
        usage_error(fmt::format("--method entry '{}': the ratio after 'sparq:' must be a number", entry));
      }
    } else if (entry != "sparq") {
      usage_error(fmt::format("--method entry '{}' is unknown: use dense, sparq or sparq:C", entry));
    }
    if (!std::isfinite(ratio) || ratio < 1.0)
      usage_error(fmt::format("--method entry '{}': ratio={} must be a finite number >= 1", entry, ratio));
    SparQ m = SparQ::for_ratio(ratio);
    if (o.r) m.r = std::size_t(*o.r);
    if (o.k) m.k = std::size_t(*o.k);
    if (o.window) m.window = std::size_t(*o.window);
    if (!o.reallocation.empty()) m.reallocation = o.reallocation == "on";
    m.gqa = *parse_gqa_selection(o.gqa);
    out.push_back({fmt::format("sparq:{}", ratio), m, ratio});
  }
  if (out.empty()) usage_error("--method is empty: give at least one of dense, sparq, sparq:C");
  return out;
}

std::unique_ptr<model::LlamaModel> load_model(const ModelRunOptions& o) {
  const model::LlamaWeights w = model::load_llama_checkpoint(o.model);
  if (w.config.vocab_size < 256)
    throw Error(ErrorCode::bad_file,
                fmt::format("{}: vocab_size={} cannot hold byte tokens: need >= 256", o.model, w.config.vocab_size));
  return std::make_unique<model::LlamaModel>(
      w, model::ModelOptions{.dtype = *parse_dtype(o.dtype), .block_tokens = std::size_t(o.block_tokens)});
}

std::vector<int> bytes_to_tokens(std::string_view text) {
  std::vector<int> t;
  t.reserve(text.size());
  for (char c : text) t.push_back(int(static_cast<unsigned char>(c)));
  return t;
}

std::string tokens_to_text(const std::vector<int>& tokens) {
  std::string s;
  for (int t : tokens) {
    if ((t >= 32 && t < 127) || t == '\n' || t == '\t')
      s.push_back(char(t));
    else
      s += fmt::format("\\x{:02x}", t);
  }
  return s;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::io_error, fmt::format("{}: cannot open", path));
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace sparq::cli
