// `sparq perplexity`: perplexity of a text under a model checkpoint, for each attention
// method side by side.
//
// The text (bytes) is cut into consecutive windows of --context tokens. In each window
// the first --prefix - 1 tokens are prefilled densely; then, for each method on its own
// fork of that cache, tokens prefix-1 .. context-2 are fed one decode step at a time (the
// methods' steps as one batch) and the log-probabilities of tokens prefix .. context-1
// are summed. Every method thus scores the same tokens with the same contexts, and every
// scored prediction went through the method's attention in every layer.
//
// --dump-trace DIR writes the decode trace (model_trace.hpp) of the first window as
// seen by dense attention.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
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
  bool progress = false;
};

struct Score {
  double nll = 0.0;
  std::size_t count = 0, correct = 0;
  double alpha_sum = 0.0;
  std::size_t alpha_count = 0;
  double bytes = 0.0;  // K/V bytes read, all layers and steps
  std::size_t steps = 0;
};

int run(const PerplexityOptions& o) {
  LoadedModel loaded = load_model(o.run, false);
  model::LlamaModel& model = *loaded.model;
  auto methods = parse_methods(o.run, model.config().head_dim());
  const std::size_t reported = methods.size();
  if (!o.dump_trace.empty()) {
    bool has_dense = false;
    for (const auto& m : methods) has_dense |= std::holds_alternative<Dense>(m.method);
    if (!has_dense) methods.push_back({"dense", Dense{}, 0.0});  // traced, not reported
  }
  model.set_attention_mass(model::needs_attention_mass(methods));
  const std::vector<int> tokens = bytes_to_tokens(read_text_file(o.text));
  const std::size_t context = o.context > 0 ? std::size_t(o.context) : model.config().seq_len;
  const std::size_t prefix = o.prefix >= 0 ? std::size_t(o.prefix) : context / 2;
  if (prefix < 1 || prefix >= context)
    usage_error(fmt::format("--prefix={} is invalid: must be in [1, context={})", prefix, context));
  if (tokens.size() < context)
    usage_error(fmt::format("{} has {} bytes, fewer than one window of --context={}", o.text, tokens.size(), context));
  std::size_t windows = tokens.size() / context;
  if (o.max_windows > 0) windows = std::min(windows, std::size_t(o.max_windows));

  const std::size_t n = methods.size(), V = model.config().vocab_size;
  std::vector<Score> scores(n);
  double prefill_s = 0.0, decode_s = 0.0;
  for (std::size_t w = 0; w < windows; ++w) {
    const std::vector<int> win(tokens.begin() + std::ptrdiff_t(w * context),
                               tokens.begin() + std::ptrdiff_t((w + 1) * context));
    std::optional<TraceRecorder> trace;
    if (w == 0 && !o.dump_trace.empty()) trace.emplace(model);
    const SeqId base = model.add_sequence();
    if (trace) trace->follow(base);
    const auto t0 = std::chrono::steady_clock::now();
    if (prefix > 1) (void)model.prefill(base, std::span(win).first(prefix - 1));
    prefill_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<SeqId> seqs(n);
    std::vector<model::StepStats> stats(n);
    std::size_t traced = n;
    for (std::size_t i = 0; i < n; ++i) {
      seqs[i] = model.fork(base);
      if (trace && traced == n && std::holds_alternative<Dense>(methods[i].method)) {
        traced = i;
        trace->follow(seqs[i]);
      }
    }
    model.remove_sequence(base);
    std::vector<float> logits;
    const auto s0 = std::chrono::steady_clock::now();
    for (std::size_t t = prefix - 1; t + 1 < context; ++t) {
      std::vector<model::StepItem> items;
      for (std::size_t i = 0; i < n; ++i) items.push_back({seqs[i], win[t], &methods[i].method, &stats[i]});
      model.step(items, logits);
      for (std::size_t i = 0; i < n; ++i) {
        const std::span<const float> l = std::span(logits).subspan(i * V, V);
        scores[i].nll -= model::log_prob(l, win[t + 1]);
        scores[i].correct += model::argmax(l) == win[t + 1];
        ++scores[i].count;
      }
    }
    decode_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
    if (trace) {
      std::vector<int> positions(win.begin(), win.end() - 1);  // the fed tokens
      trace->stop();
      trace->write(o.dump_trace, seqs[traced], positions, prefix - 1,
                   fmt::format("sparq perplexity --model {} --text {} window 0 (dense)", o.run.model, o.text));
    }
    for (std::size_t i = 0; i < n; ++i) {
      scores[i].alpha_sum += stats[i].alpha_sum;
      scores[i].alpha_count += stats[i].alpha_count;
      scores[i].bytes += stats[i].bytes;
      scores[i].steps += stats[i].steps;
      model.remove_sequence(seqs[i]);
    }
    if (o.progress) fmt::print(stderr, "window {}/{} done ({:.0f} s so far)\n", w + 1, windows, prefill_s + decode_s);
  }

  const double dense_ppl = [&] {
    for (std::size_t i = 0; i < reported; ++i)
      if (std::holds_alternative<Dense>(methods[i].method)) return std::exp(scores[i].nll / double(scores[i].count));
    return std::nan("");
  }();
  double dense_bytes = 0.0;  // per step
  for (std::size_t i = 0; i < reported; ++i)
    if (std::holds_alternative<Dense>(methods[i].method) && scores[i].steps)
      dense_bytes = scores[i].bytes / double(scores[i].steps);
  nlohmann::ordered_json results = nlohmann::json::array();
  if (!o.run.json) {
    fmt::print("{}\n", model_summary(o.run, loaded));
    fmt::print("{}: {} windows of {} tokens, {} scored per window (prefix {}); prefill {:.1f} s, decode {:.1f} s\n",
               o.text, windows, context, context - prefix, prefix, prefill_s, decode_s);
  }
  for (std::size_t i = 0; i < reported; ++i) {
    const Score& s = scores[i];
    const double ppl = std::exp(s.nll / double(s.count));
    const double acc = double(s.correct) / double(s.count);
    const bool has_alpha = s.alpha_count > 0;
    const double alpha = has_alpha ? s.alpha_sum / double(s.alpha_count) : 0.0;
    const double bytes = s.steps ? s.bytes / double(s.steps) : 0.0;
    const double transfer = dense_bytes > 0 && bytes > 0 ? dense_bytes / bytes : 0.0;
    if (o.run.json) {
      nlohmann::ordered_json j;
      j["method"] = methods[i].name;
      j["perplexity"] = ppl;
      j["bits_per_byte"] = s.nll / double(s.count) / std::log(2.0);
      j["relative_to_dense"] = std::isnan(dense_ppl) ? nlohmann::json(nullptr) : nlohmann::json(ppl / dense_ppl - 1.0);
      j["top1_accuracy"] = acc;
      j["mean_alpha"] = has_alpha ? nlohmann::json(alpha) : nlohmann::json(nullptr);
      j["scored_tokens"] = s.count;
      j["bytes_per_step"] = bytes;
      j["transfer_vs_dense"] = transfer > 0 ? nlohmann::json(transfer) : nlohmann::json(nullptr);
      results.push_back(j);
    } else {
      fmt::print("{:>24}  ppl {:8.4f}  bpb {:.4f}  top1 {:.4f}{}{}{}\n", methods[i].name, ppl,
                 s.nll / double(s.count) / std::log(2.0), acc, has_alpha ? fmt::format("  alpha {:.4f}", alpha) : "",
                 transfer > 0 ? fmt::format("  transfer {:.2f}x", transfer) : "",
                 std::isnan(dense_ppl) ? "" : fmt::format("  vs dense {:+.2f}%", 100.0 * (ppl / dense_ppl - 1.0)));
    }
  }
  if (o.run.json) {
    nlohmann::ordered_json j;
    j["model"] = model_json(o.run, loaded);
    j["text"] = o.text;
    j["windows"] = windows;
    j["context"] = context;
    j["prefix"] = prefix;
    j["prefill_seconds"] = prefill_s;
    j["decode_seconds"] = decode_s;
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
  cmd.add_flag("--progress", o->progress, "Report each finished window on stderr");
  return [o] { return run(*o); };
}

}  // namespace

Subcommand perplexity_subcommand() {
  return {"perplexity", "Perplexity of a text file under a model checkpoint, each attention method side by side",
          &setup};
}

}  // namespace sparq::cli
