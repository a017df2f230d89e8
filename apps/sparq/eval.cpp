// `sparq eval DIR`: accuracy of SparQ and the baselines against dense attention on a
// decode trace, at equal bytes (docs/eval-traces.md). `--make-synthetic DIR` writes a
// synthetic trace to try it without a model.
#include <fmt/core.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "eval_report.hpp"
#include "gnuplot.hpp"
#include "options.hpp"
#include "sparq/tools/eval/evaluator.hpp"
#include "sparq/tools/eval/synthetic_trace.hpp"

namespace sparq::cli {

namespace {

struct EvalCliOptions {
  std::string trace;
  std::vector<double> ratios = {2, 4, 8, 16};
  std::vector<std::string> methods;
  std::vector<std::int64_t> layers;
  std::int64_t steps = 0;
  std::int64_t sinks = 4;
  std::string d_major_type = "same";
  bool json = false, csv = false, per_layer = false, per_head = false;
  std::string plot;
  // --make-synthetic
  std::string synthetic;
  std::int64_t positions = 512;
  std::int64_t needles = 4;
  std::uint64_t seed = 1;
  std::vector<std::int64_t> shape;                 // layers, q_heads, kv_heads, head_dim
  std::vector<const CLI::Option*> synthetic_only;  // meaningless without --make-synthetic
};

eval::EvalOptions to_eval_options(const EvalCliOptions& o) {
  eval::EvalOptions e;
  if (o.ratios.empty()) usage_error("--ratios is empty: give at least one compression ratio, e.g. --ratios 2,4,8,16");
  e.ratios = o.ratios;
  if (!o.methods.empty()) {
    e.methods.clear();
    for (const std::string& name : o.methods) {
      const auto m = eval::parse_eval_method(name);
      if (!m) usage_error("--methods: unknown method '" + name + "'");  // CLI11 checks too
      e.methods.push_back(*m);
    }
  }
  for (std::int64_t l : o.layers) e.layers.push_back(std::size_t(l));
  e.steps = std::size_t(o.steps);
  e.sinks = std::size_t(o.sinks);
  e.d_major_type = *parse_d_major_type(o.d_major_type);
  e.per_head = o.per_head;
  if (::isatty(2))
    e.progress = [](std::size_t done, std::size_t total) {
      fmt::print(stderr, "\rlayer {}/{} done", done, total);
      if (done == total) fmt::print(stderr, "\n");
      std::fflush(stderr);
    };
  return e;
}

int make_synthetic(const EvalCliOptions& o) {
  eval::SyntheticOptions s;
  if (!o.shape.empty()) {
    if (o.shape.size() != 4)
      usage_error(fmt::format("--shape needs 4 numbers layers,q_heads,kv_heads,head_dim; got {}", o.shape.size()));
    s.shape = {.layers = std::size_t(o.shape[0]),
               .q_heads = std::size_t(o.shape[1]),
               .kv_heads = std::size_t(o.shape[2]),
               .head_dim = std::size_t(o.shape[3])};
  }
  s.positions = std::size_t(o.positions);
  s.needles = std::size_t(o.needles);
  s.seed = o.seed;
  const eval::SyntheticTrace t = eval::write_synthetic_trace(o.synthetic, s);
  std::string needles;
  for (auto n : t.needles) needles += (needles.empty() ? "" : ",") + std::to_string(n);
  fmt::print(
      "wrote synthetic trace {}: {} layers, {} q heads / {} KV heads, d={}, {} positions ({} prompt), needles at {}\n",
      o.synthetic, s.shape.layers, s.shape.q_heads, s.shape.kv_heads, s.shape.head_dim, s.positions, t.manifest.prefill,
      needles.empty() ? "(none)" : needles);
  return kExitOk;
}

int run(const EvalCliOptions& o) {
  if (!o.synthetic.empty()) {
    if (!o.trace.empty()) usage_error("give either a trace directory to evaluate or --make-synthetic DIR, not both");
    return make_synthetic(o);
  }
  for (const CLI::Option* opt : o.synthetic_only)
    if (opt->count() > 0) usage_error(opt->get_name() + " only applies with --make-synthetic DIR");
  if (o.trace.empty()) usage_error("no trace directory: sparq eval DIR (or --make-synthetic DIR to create one)");
  const eval::EvalOptions options = to_eval_options(o);
  const std::string gnuplot = o.plot.empty() ? std::string() : require_gnuplot("--plot");
  const eval::EvalResult r = eval::run_eval(o.trace, options);
  if (o.json)
    fmt::print("{}\n", eval_json(r, o.trace).dump(2));
  else if (o.csv)
    fmt::print("{}", eval_csv(r));
  else
    fmt::print("{}", eval_text(r, o.trace, o.per_layer));
  if (!o.plot.empty()) {
    eval_plot(r, gnuplot, o.plot, "sparq eval " + o.trace);
    if (!o.json && !o.csv) fmt::print("plot: {}\n", o.plot);
  }
  return kExitOk;
}

Action setup(CLI::App& cmd) {
  auto o = std::make_shared<EvalCliOptions>();
  cmd.add_option("trace", o->trace, "Trace directory (manifest.json + layer<L>_{q,k,v}.npy; docs/eval-traces.md)");
  cmd.add_option("--ratios", o->ratios, "Compression ratios c >= 1 (comma-separated)")
      ->delimiter(',')
      ->check(number_at_least(1.0))
      ->capture_default_str();
  std::vector<std::string> names;
  std::string all;
  for (auto m : eval::kAllMethods) {
    names.emplace_back(eval::to_string(m));
    all += (all.empty() ? "" : ",") + names.back();
  }
  cmd.add_option("--methods", o->methods, "Methods (comma-separated; default all): " + all)
      ->delimiter(',')
      ->check(CLI::IsMember(names));
  cmd.add_option("--layers", o->layers, "Layers to evaluate (comma-separated, from 0; default all)")
      ->delimiter(',')
      ->transform(integer_in(0, 1 << 12));
  cmd.add_option("--steps", o->steps, "Decode steps evaluated, evenly spaced, last included (0 = all)")
      ->transform(integer_in(0, kMaxInt64))
      ->capture_default_str();
  cmd.add_option("--sinks", o->sinks, "Sink positions of sink-window")
      ->transform(integer_in(0, kMaxInt64))
      ->capture_default_str();
  cmd.add_option("--d-major-type", o->d_major_type,
                 "d-major key copy of the replayed cache: same (f32) or int8 (per-block scales): what SparQ ranks on")
      ->check(CLI::IsMember({"same", "int8"}))
      ->capture_default_str();
  auto* json = cmd.add_flag("--json", o->json, "Print the results as JSON");
  cmd.add_flag("--csv", o->csv, "Print the results as CSV (one row per method, ratio and layer)")->excludes(json);
  cmd.add_flag("--per-layer", o->per_layer, "Text output: add the per-layer table");
  cmd.add_flag("--per-head", o->per_head,
               "Also summarize every (layer, query head): a table in the text output, per_head in --json");
  cmd.add_option("--plot", o->plot, "Write an SVG of error vs transfer ratio (needs gnuplot)");
  cmd.add_option("--make-synthetic", o->synthetic,
                 "Write a synthetic trace (random keys, needle queries) to DIR and exit");
  o->synthetic_only = {
      cmd.add_option("--positions", o->positions, "--make-synthetic: positions")
          ->transform(integer_in(2, 1 << 24))
          ->capture_default_str(),
      cmd.add_option("--needles", o->needles, "--make-synthetic: needle positions in the prompt")
          ->transform(integer_in(0, 1 << 24))
          ->capture_default_str(),
      cmd.add_option("--seed", o->seed, "--make-synthetic: random seed")
          ->transform(integer_in(0, kMaxInt64))
          ->capture_default_str(),
      cmd.add_option("--shape", o->shape, "--make-synthetic: layers,q_heads,kv_heads,head_dim (default 2,8,2,64)")
          ->delimiter(',')
          ->transform(integer_in(1, 1 << 14))};
  return [o] { return run(*o); };
}

}  // namespace

Subcommand eval_subcommand() {
  return {"eval", "Accuracy of SparQ and baselines (oracle, H2O, sink-window) vs dense on a decode trace", &setup};
}

}  // namespace sparq::cli
