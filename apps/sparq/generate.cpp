// `sparq generate`: greedy generation from a llama2.c-layout checkpoint, attention from
// the library (dense or SparQ).
//
// The prompt (bytes) minus its last byte is prefilled with dense causal attention; the
// last prompt byte and every generated token then go through single-token decode steps
// with each requested method, each on its own copy-on-write fork of the prefilled
// cache. So even the first generated token is decided by the method under test.
//
// --trace DIR writes the decode trace (docs/eval-traces.md) of the dense run:
// the prompt (prefill) and every decode step's queries, keys and values.
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
};

int run(const GenerateOptions& o) {
  if (o.prompt.empty() == o.prompt_file.empty()) usage_error("give exactly one of --prompt and --prompt-file");
  const std::string prompt_text = o.prompt_file.empty() ? o.prompt : read_text_file(o.prompt_file);
  const std::vector<int> prompt = bytes_to_tokens(prompt_text);
  if (prompt.empty()) usage_error("the prompt is empty: give at least one byte");
  auto model = load_model(o.run);
  const auto methods = parse_methods(o.run, model->config().head_dim());

  std::optional<TraceRecorder> trace;
  if (!o.trace.empty()) trace.emplace(*model);
  bool traced = false;
  const SeqId base = model->add_sequence();
  const auto t0 = std::chrono::steady_clock::now();
  if (prompt.size() > 1) (void)model->prefill(base, std::span(prompt).first(prompt.size() - 1));
  const double prefill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  nlohmann::ordered_json results = nlohmann::json::array();
  for (const NamedMethod& m : methods) {
    const bool record = trace && !traced && std::holds_alternative<Dense>(m.method);
    if (trace) {
      if (record)
        trace->start();
      else
        trace->stop();
    }
    const SeqId seq = model->cache().fork(base);
    model::StepStats stats;
    std::vector<int> out;
    int next = prompt.back();
    const auto s0 = std::chrono::steady_clock::now();
    for (std::int64_t i = 0; i < o.tokens; ++i) {
      next = model::argmax(model->step(seq, next, m.method, &stats));
      out.push_back(next);
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
    if (record && !out.empty()) {
      std::vector<int> fed(prompt);
      fed.insert(fed.end(), out.begin(), out.end() - 1);
      trace->stop();
      trace->write(o.trace, seq, fed, prompt.size() - 1,
                   fmt::format("sparq generate --model {} ({} prompt bytes, {} tokens, dense)", o.run.model,
                               prompt.size(), out.size()));
      traced = true;
    }
    model->cache().remove_sequence(seq);
    const double mean_alpha = stats.alpha_count ? stats.alpha_sum / double(stats.alpha_count) : 1.0;
    const std::string text = tokens_to_text(out);
    if (o.run.json) {
      nlohmann::ordered_json j;
      j["method"] = m.name;
      j["text"] = text;
      j["tokens"] = out;
      j["mean_alpha"] = mean_alpha;
      j["seconds"] = secs;
      results.push_back(j);
    } else {
      fmt::print("[{}] {}\n", m.name, text);
      fmt::print("  ({} tokens, {:.2f} tokens/s, mean alpha {:.4f})\n", out.size(),
                 secs > 0 ? double(out.size()) / secs : 0.0, mean_alpha);
    }
  }
  if (trace && !traced) usage_error("--trace needs `dense` among the methods and --tokens >= 1");
  if (o.run.json) {
    nlohmann::ordered_json j;
    j["model"] = o.run.model;
    j["prompt_tokens"] = prompt.size();
    j["prefill_seconds"] = prefill_s;
    j["results"] = results;
    fmt::print("{}\n", j.dump(2));
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
  return [o] { return run(*o); };
}

}  // namespace

Subcommand generate_subcommand() {
  return {"generate", "Greedy generation with a llama2.c checkpoint, attention dense or SparQ from the library",
          &setup};
}

}  // namespace sparq::cli
