// `sparq generate`: greedy generation with each requested attention method, side by side.
//
// The prompt (bytes) minus its last byte is prefilled once with dense causal attention;
// each method then continues from its own copy-on-write fork of that cache: the last
// prompt byte and every generated token go through single-token decode steps with the
// method (the methods' steps run as one batch). So even the first generated token is
// decided by the method under test.
//
// --trace DIR writes the decode trace (docs/eval-traces.md) of the dense run: the prompt
// (prefill) and every decode step's queries, keys and values.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "model_cli.hpp"
#include "options.hpp"
#include "sparq/tools/model/model_trace.hpp"

namespace sparq::cli {

namespace {

struct GenerateOptions {
  ModelRunOptions run;
  std::string prompt, prompt_file;
  std::int64_t tokens = 64;
  std::string trace;
  std::int64_t trace_prefill = -1;  // -1: the prefilled prompt
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run(const GenerateOptions& o) {
  if (o.prompt.empty() == o.prompt_file.empty()) usage_error("give exactly one of --prompt and --prompt-file");
  const std::string prompt_text = o.prompt_file.empty() ? o.prompt : read_text_file(o.prompt_file);
  const std::vector<int> prompt = bytes_to_tokens(prompt_text);
  if (prompt.empty()) usage_error("the prompt is empty: give at least one byte");
  LoadedModel loaded = load_model(o.run, false);
  model::LlamaModel& model = *loaded.model;
  const auto methods = parse_methods(o.run, model.config().head_dim());
  model.set_attention_mass(model::needs_attention_mass(methods));
  std::size_t traced = methods.size();  // index of the method whose run is traced
  if (!o.trace.empty()) {
    for (std::size_t i = 0; i < methods.size() && traced == methods.size(); ++i)
      if (std::holds_alternative<Dense>(methods[i].method)) traced = i;
    if (traced == methods.size() || o.tokens < 1)
      usage_error("--trace needs `dense` among the methods and --tokens >= 1");
    if (o.trace_prefill >= std::int64_t(prompt.size()))
      usage_error(
          fmt::format("--trace-prefill={} must be below the prompt's {} bytes", o.trace_prefill, prompt.size()));
  }

  std::optional<TraceRecorder> trace;
  if (!o.trace.empty()) trace.emplace(model);
  const SeqId base = model.add_sequence();
  if (trace) trace->follow(base);
  const auto t0 = std::chrono::steady_clock::now();
  if (prompt.size() > 1) (void)model.prefill(base, std::span(prompt).first(prompt.size() - 1));
  const double prefill_s = seconds_since(t0);

  const std::size_t n = methods.size();
  std::vector<SeqId> seqs(n);
  std::vector<model::StepStats> stats(n);
  std::vector<std::vector<int>> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    seqs[i] = model.fork(base);
    if (trace && i == traced) trace->follow(seqs[i]);
  }
  model.remove_sequence(base);
  std::vector<int> next(n, prompt.back());
  std::vector<float> logits;
  const auto s0 = std::chrono::steady_clock::now();
  for (std::int64_t step = 0; step < o.tokens; ++step) {
    std::vector<model::StepItem> items;
    for (std::size_t i = 0; i < n; ++i) items.push_back({seqs[i], next[i], &methods[i].method, &stats[i]});
    model.step(items, logits);
    const std::size_t V = model.config().vocab_size;
    for (std::size_t i = 0; i < n; ++i) {
      next[i] = model::argmax(std::span(logits).subspan(i * V, V));
      out[i].push_back(next[i]);
    }
  }
  const double decode_s = seconds_since(s0);
  if (trace) {
    std::vector<int> fed(prompt);
    fed.insert(fed.end(), out[traced].begin(), out[traced].end() - 1);
    trace->stop();
    trace->write(o.trace, seqs[traced], fed, o.trace_prefill >= 0 ? std::size_t(o.trace_prefill) : prompt.size() - 1,
                 fmt::format("sparq generate --model {} ({} prompt bytes, {} tokens, dense)", o.run.model,
                             prompt.size(), out[traced].size()));
  }
  for (SeqId s : seqs) model.remove_sequence(s);

  const double steps = double(o.tokens);
  const double prefill_tps = prompt.size() > 1 && prefill_s > 0 ? double(prompt.size() - 1) / prefill_s : 0.0;
  const double decode_tps = decode_s > 0 ? steps * double(n) / decode_s : 0.0;
  // K/V bytes read per decode step (all layers), and dense's over each method's.
  auto bytes_per_step = [&](std::size_t i) { return stats[i].steps ? stats[i].bytes / double(stats[i].steps) : 0.0; };
  double dense_bytes = 0.0;
  for (std::size_t i = 0; i < n; ++i)
    if (std::holds_alternative<Dense>(methods[i].method)) dense_bytes = bytes_per_step(i);
  auto transfer = [&](std::size_t i) {
    return dense_bytes > 0 && bytes_per_step(i) > 0 ? dense_bytes / bytes_per_step(i) : 0.0;
  };
  if (o.run.json) {
    nlohmann::ordered_json results = nlohmann::json::array();
    for (std::size_t i = 0; i < n; ++i) {
      nlohmann::ordered_json j;
      j["method"] = methods[i].name;
      j["text"] = tokens_to_text(out[i]);
      j["tokens"] = out[i];
      j["mean_alpha"] = stats[i].alpha_count ? nlohmann::json(stats[i].alpha_sum / double(stats[i].alpha_count))
                                             : nlohmann::json(nullptr);
      j["bytes_per_step"] = bytes_per_step(i);
      j["transfer_vs_dense"] = transfer(i) > 0 ? nlohmann::json(transfer(i)) : nlohmann::json(nullptr);
      results.push_back(j);
    }
    nlohmann::ordered_json j;
    j["model"] = model_json(o.run, loaded);
    j["prompt_tokens"] = prompt.size();
    j["prefill_seconds"] = prefill_s;
    j["prefill_tokens_per_second"] = prefill_tps;
    j["decode_steps"] = o.tokens;
    j["decode_seconds"] = decode_s;
    j["decode_tokens_per_second"] = decode_tps;
    j["results"] = results;
    fmt::print("{}\n", j.dump(2));
    return kExitOk;
  }
  fmt::print("{}\n", model_summary(o.run, loaded));
  fmt::print(
      "prefill: {} tokens in {:.2f} s ({:.0f} tokens/s); decode: {} steps x {} methods in {:.2f} s "
      "({:.1f} tokens/s)\n",
      prompt.size() - 1, prefill_s, prefill_tps, o.tokens, n, decode_s, decode_tps);
  for (std::size_t i = 0; i < n; ++i) {
    fmt::print("[{}] {}\n", methods[i].name, tokens_to_text(out[i]));
    fmt::print("  ({:.2f} MiB of K/V per step{}{})\n", bytes_per_step(i) / double(1 << 20),
               transfer(i) > 0 ? fmt::format(", {:.2f}x less than dense", transfer(i)) : "",
               stats[i].alpha_count
                   ? fmt::format(", mean alpha {:.4f}", stats[i].alpha_sum / double(stats[i].alpha_count))
                   : "");
  }
  return kExitOk;
}

Action setup(CLI::App& cmd) {
  auto o = std::make_shared<GenerateOptions>();
  add_model_run_options(cmd, o->run);
  cmd.add_option("--prompt", o->prompt, "Prompt text (bytes are tokens)");
  cmd.add_option("--prompt-file", o->prompt_file, "Read the prompt from a file instead");
  cmd.add_option("--tokens", o->tokens, "Tokens to generate (greedy)")
      ->transform(integer_in(0, 1 << 20))
      ->capture_default_str();
  cmd.add_option("--trace", o->trace,
                 "Write the decode trace of the dense run to this directory (docs/eval-traces.md)");
  cmd.add_option("--trace-prefill", o->trace_prefill,
                 "Mark only the first N positions of the trace as prompt, so that `sparq eval` also replays the "
                 "prompt's later positions as decode steps (default: the prefilled prompt, all but its last byte)")
      ->transform(integer_in(0, kMaxInt64));
  return [o] { return run(*o); };
}

}  // namespace

Subcommand generate_subcommand() {
  return {"generate", "Greedy generation with a model checkpoint, each attention method side by side", &setup};
}

}  // namespace sparq::cli
