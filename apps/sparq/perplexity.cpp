// `sparq perplexity`: perplexity of a text under a llama2.c-layout checkpoint, with
// attention from the library (dense or SparQ).
//
// The text (bytes) is cut into consecutive windows of --context tokens. In each window
// the first --prefix - 1 tokens are prefilled densely; then, for each method on its own
// fork of that cache, tokens prefix-1 .. context-2 are fed one decode step at a time and
// the log-probabilities of tokens prefix .. context-1 are summed. Every method thus
// scores the same tokens with the same contexts, and every scored prediction went
// through the method's attention in every layer.
//
// --dump-trace DIR writes the decode trace (model_trace.hpp) of the first window as
// seen by dense attention.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
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

struct PerplexityOptions {
  ModelRunOptions run;
  std::string text;
  std::int64_t context = 0;  // 0: the model's seq_len
  std::int64_t prefix = -1;  // -1: context / 2
  std::int64_t max_windows = 0;
  std::string dump_trace;
};

struct Score {
  double nll = 0.0;
  std::size_t count = 0, correct = 0;
  double alpha_sum = 0.0;
  std::size_t alpha_count = 0;
  double seconds = 0.0;
};

int run(const PerplexityOptions& o) {
  auto model = load_model(o.run);
  const auto methods = parse_methods(o.run, model->config().head_dim());
  const std::vector<int> tokens = bytes_to_tokens(read_text_file(o.text));
  const std::size_t context = o.context > 0 ? std::size_t(o.context) : model->config().seq_len;
  const std::size_t prefix = o.prefix >= 0 ? std::size_t(o.prefix) : context / 2;
  if (prefix < 1 || prefix >= context)
    usage_error(fmt::format("--prefix={} is invalid: must be in [1, context={})", prefix, context));
  if (tokens.size() < context)
    usage_error(fmt::format("{} has {} bytes, fewer than one window of --context={}", o.text, tokens.size(), context));
  std::size_t windows = tokens.size() / context;
  if (o.max_windows > 0) windows = std::min(windows, std::size_t(o.max_windows));

  std::vector<Score> scores(methods.size());
  for (std::size_t w = 0; w < windows; ++w) {
    const std::vector<int> win(tokens.begin() + std::ptrdiff_t(w * context),
                               tokens.begin() + std::ptrdiff_t((w + 1) * context));
    std::optional<TraceRecorder> trace;
    if (w == 0 && !o.dump_trace.empty()) trace.emplace(*model);
    const SeqId base = model->add_sequence();
    if (prefix > 1) (void)model->prefill(base, std::span(win).first(prefix - 1));
    bool traced = false;
    for (std::size_t mi = 0; mi < methods.size() + 1; ++mi) {
      // One extra dense pass only when a trace is wanted and dense is not in the list.
      const bool extra = mi == methods.size();
      if (extra && (!trace || traced)) break;
      const Method method = extra ? Method{Dense{}} : methods[mi].method;
      const bool record = trace && !traced && std::holds_alternative<Dense>(method);
      if (trace) {
        if (record)
          trace->start();
        else
          trace->stop();
      }
      const SeqId seq = model->cache().fork(base);
      model::StepStats stats;
      Score local;
      const auto t0 = std::chrono::steady_clock::now();
      for (std::size_t i = prefix - 1; i + 1 < context; ++i) {
        const std::vector<float> logits = model->step(seq, win[i], method, &stats);
        local.nll -= model::log_prob(logits, win[i + 1]);
        local.correct += model::argmax(logits) == win[i + 1];
        ++local.count;
      }
      local.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (record) {
        std::vector<int> positions(win.begin(), win.end() - 1);  // the fed tokens
        trace->stop();
        trace->write(o.dump_trace, seq, positions, prefix - 1,
                     fmt::format("sparq perplexity --model {} --text {} window 0 (dense)", o.run.model, o.text));
        traced = true;
      }
      model->cache().remove_sequence(seq);
      if (extra) break;
      Score& s = scores[mi];
      s.nll += local.nll;
      s.count += local.count;
      s.correct += local.correct;
      s.alpha_sum += stats.alpha_sum;
      s.alpha_count += stats.alpha_count;
      s.seconds += local.seconds;
    }
    model->cache().remove_sequence(base);
  }

  nlohmann::ordered_json results = nlohmann::json::array();
  const double dense_ppl = [&] {
    for (std::size_t i = 0; i < methods.size(); ++i)
      if (std::holds_alternative<Dense>(methods[i].method)) return std::exp(scores[i].nll / double(scores[i].count));
    return std::nan("");
  }();
  if (!o.run.json)
    fmt::print("{}: {} windows of {} tokens, {} scored per window (prefix {})\n", o.text, windows, context,
               context - prefix, prefix);
  for (std::size_t i = 0; i < methods.size(); ++i) {
    const Score& s = scores[i];
    const double ppl = std::exp(s.nll / double(s.count));
    const double acc = double(s.correct) / double(s.count);
    const double alpha = s.alpha_count ? s.alpha_sum / double(s.alpha_count) : 1.0;
    if (o.run.json) {
      nlohmann::ordered_json j;
      j["method"] = methods[i].name;
      j["perplexity"] = ppl;
      j["bits_per_byte"] = s.nll / double(s.count) / std::log(2.0);
      j["relative_to_dense"] = std::isnan(dense_ppl) ? nlohmann::json(nullptr) : nlohmann::json(ppl / dense_ppl - 1.0);
      j["top1_accuracy"] = acc;
      j["mean_alpha"] = alpha;
      j["scored_tokens"] = s.count;
      j["seconds"] = s.seconds;
      results.push_back(j);
    } else {
      fmt::print("{:>10}  ppl {:8.4f}  bpb {:.4f}  top1 {:.4f}  alpha {:.4f}{}\n", methods[i].name, ppl,
                 s.nll / double(s.count) / std::log(2.0), acc, alpha,
                 std::isnan(dense_ppl) ? "" : fmt::format("  vs dense {:+.2f}%", 100.0 * (ppl / dense_ppl - 1.0)));
    }
  }
  if (o.run.json) {
    nlohmann::ordered_json j;
    j["model"] = o.run.model;
    j["text"] = o.text;
    j["windows"] = windows;
    j["context"] = context;
    j["prefix"] = prefix;
    j["results"] = results;
    fmt::print("{}\n", j.dump(2));
  }
  return kExitOk;
}

Action setup(CLI::App& cmd) {
  auto o = std::make_shared<PerplexityOptions>();
  add_model_run_options(cmd, o->run);
  cmd.add_option("--text", o->text, "Text file to score (bytes are tokens)")->required();
  cmd.add_option("--context", o->context, "Window length in tokens (0 or omitted: the model's seq_len)")
      ->transform(integer_in(0, 1 << 24));
  cmd.add_option("--prefix", o->prefix, "Tokens of each window given as context before scoring (default context/2)")
      ->transform(integer_in(1, 1 << 24));
  cmd.add_option("--max-windows", o->max_windows, "Score at most this many windows (0: all)")
      ->transform(integer_in(0, kMaxInt64));
  cmd.add_option("--dump-trace,--trace", o->dump_trace,
                 "Write the dense decode trace of the first window to this directory (docs/eval-traces.md)");
  return [o] { return run(*o); };
}

}  // namespace

Subcommand perplexity_subcommand() {
  return {"perplexity", "Perplexity of a text file under a llama2.c checkpoint, attention dense or SparQ", &setup};
}

}  // namespace sparq::cli
