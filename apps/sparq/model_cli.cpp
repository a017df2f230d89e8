#include "model_cli.hpp"

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "cli.hpp"
#include "options.hpp"
#include "sparq/error.hpp"
#include "sparq/types.hpp"

namespace sparq::cli {

void add_model_run_options(CLI::App& cmd, ModelRunOptions& o) {
  cmd.add_option("--model", o.model, "Checkpoint: SPQLM v2 (f16/bf16) or llama2.c f32 (docs/model.md)")->required();
  cmd.add_flag("--require-hash", o.require_hash,
               "Refuse a model without a MODEL.sha256 sidecar (a present sidecar is always checked)");
  cmd.add_option("--method", o.methods, "Comma-separated methods: " + model::attention_method_help())
      ->capture_default_str();
  cmd.add_option("--ratio", o.ratio, "Compression ratio c >= 1 of entries written without :C")
      ->check(number_at_least(1.0))
      ->capture_default_str();
  cmd.add_option("--ratios", o.ratios, "Several ratios (comma-separated): entries without :C (and `all`) take each")
      ->delimiter(',')
      ->check(number_at_least(1.0));
  cmd.add_option("--r", o.r, "SparQ: query components kept, 1 <= r <= head_dim (overrides the ratio)")
      ->transform(integer_in(1, 1 << 14));
  cmd.add_option("--k", o.k, "SparQ: positions fetched, k >= 1, window included (overrides the ratio)")
      ->transform(integer_in(1, kMaxInt64));
  cmd.add_option("--window", o.window, "SparQ: local window l >= 0 (default k/4)")->transform(integer_in(0, kMaxInt64));
  cmd.add_option("--reallocation", o.reallocation,
                 "SparQ entries not named -real/-noreal: mean-value reallocation (default: off for GQA)")
      ->check(CLI::IsMember({"on", "off"}));
  cmd.add_option("--gqa", o.gqa, "SparQ entries not named -per-head: GQA selection (default shared)")
      ->check(CLI::IsMember({"shared", "per-head"}));
  cmd.add_option("--sinks", o.sinks, "window entries: sink positions kept")
      ->transform(integer_in(0, 1 << 20))
      ->capture_default_str();
  cmd.add_option("--dtype", o.dtype, "Storage type of the cached K/V")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}))
      ->capture_default_str();
  cmd.add_option("--d-major-type", o.d_major_type,
                 "Element type of the d-major key copy SparQ's stage 1 ranks positions on: same (as --dtype) or "
                 "int8 (per-block scales, half the bytes)")
      ->check(CLI::IsMember({"same", "int8"}))
      ->capture_default_str();
  cmd.add_option("--block-tokens", o.block_tokens, "Tokens per cache block")
      ->transform(integer_in(1, 1 << 16))
      ->capture_default_str();
  cmd.add_option("--prefill-chunk", o.prefill_chunk, "Prompt tokens per forward pass")
      ->transform(integer_in(1, 1 << 20))
      ->capture_default_str();
  cmd.add_flag("--json", o.json, "Print the results as JSON");
}

std::vector<NamedMethod> parse_methods(const ModelRunOptions& o, std::size_t head_dim) {
  if (o.r && std::uint64_t(*o.r) > head_dim)
    usage_error(fmt::format("--r={} is invalid: r must be in [1, head_dim={}]", *o.r, head_dim));
  model::SparQOverrides ov;
  if (o.r) ov.r = std::size_t(*o.r);
  if (o.k) ov.k = std::size_t(*o.k);
  if (o.window) ov.window = std::size_t(*o.window);
  if (!o.reallocation.empty()) ov.reallocation = o.reallocation == "on";
  if (!o.gqa.empty()) ov.gqa = parse_gqa_selection(o.gqa);
  ov.sinks = std::size_t(o.sinks);
  const double one[] = {o.ratio};
  return model::parse_attention_methods(o.methods, o.ratios.empty() ? std::span<const double>(one) : o.ratios, ov);
}

LoadedModel load_model(const ModelRunOptions& o, bool attention_mass) {
  const model::LlamaWeights w = model::load_llama_checkpoint(o.model, {.require_hash = o.require_hash});
  if (w.config.vocab_size < 256)
    throw Error(ErrorCode::bad_file,
                fmt::format("{}: vocab_size={} cannot hold byte tokens: need >= 256", o.model, w.config.vocab_size));
  LoadedModel m;
  m.info = w.info;
  m.model =
      std::make_unique<model::LlamaModel>(w, model::ModelOptions{.dtype = *parse_dtype(o.dtype),
                                                                 .block_tokens = std::size_t(o.block_tokens),
                                                                 .d_major_type = *parse_d_major_type(o.d_major_type),
                                                                 .prefill_chunk = std::size_t(o.prefill_chunk),
                                                                 .attention_mass = attention_mass});
  return m;
}

nlohmann::ordered_json model_json(const ModelRunOptions& o, const LoadedModel& m) {
  const model::LlamaConfig& c = m.model->config();
  nlohmann::ordered_json j;
  j["path"] = o.model;
  j["sha256"] = m.info.sha256;
  j["hash_verified"] = m.info.hash_verified;
  j["format"] = m.info.version == 2 ? "SPQLM v2" : "llama2.c";
  j["weights"] = std::string(to_string(m.info.dtype));
  j["config"] = {{"dim", c.dim},         {"hidden_dim", c.hidden_dim}, {"n_layers", c.n_layers},
                 {"n_heads", c.n_heads}, {"n_kv_heads", c.n_kv_heads}, {"vocab_size", c.vocab_size},
                 {"seq_len", c.seq_len}, {"rope_theta", c.rope_theta}, {"norm_eps", c.norm_eps}};
  j["kv_dtype"] = o.dtype;
  j["d_major_type"] = o.d_major_type;
  j["blas"] = model::blas_in_use();
  return j;
}

std::string model_summary(const ModelRunOptions& o, const LoadedModel& m) {
  const model::LlamaConfig& c = m.model->config();
  return fmt::format("{}: {} {}, {} layers, dim {}, {} q / {} KV heads of {}, context {}; sha256 {}… ({})",
                     std::filesystem::path(o.model).filename().string(), m.info.version == 2 ? "SPQLM v2" : "llama2.c",
                     to_string(m.info.dtype), c.n_layers, c.dim, c.n_heads, c.n_kv_heads, c.head_dim(), c.seq_len,
                     m.info.sha256.substr(0, 12),
                     m.info.hash_verified ? "verified against the .sha256 sidecar" : "no sidecar");
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
