// `sparq bench-model`: end-to-end decode of a whole model, dense attention against SparQ,
// in tokens per second, on random weights in real layer shapes (Llama-2-7B, Llama-3-8B).
// Thin over sparq/tools/e2e/bench_model.hpp (lib/e2e), which documents the run; the byte
// model and the results are explained in docs/e2e.md.
//
// --json fields: tool, config{shape{name, d_model, q_heads, kv_heads, head_dim, ffn, vocab,
// model_layers}, layers, weights, q8_kernel, classifier, kv_dtype, block_tokens, layout,
// d_major_type, contexts[],
// methods[], threads[], repeats}, machine{cpu_model, cores, hardware_threads, llc_bytes, isa,
// vnni}, plan{available_bytes, budget_bytes, fixed_bytes, per_layer_bytes, fits},
// weight_bytes, cache_bytes, read_buffer_bytes, build_seconds, fill_seconds,
// byte_model[{context, method, weight_bytes, attention_bytes, total_bytes,
// predicted_speedup}] (per token, whole model), results[{threads, context, method, steps,
// tokens_per_s, token_seconds, attention_seconds, rest_seconds, speedup, predicted_speedup,
// attention_speedup,
// step{matvec, attention, append, other, head, total} (seconds, timed layers), matvec_bytes,
// matvec_gb_per_s, matvec_bw_fraction, attention_bytes, attention_gb_per_s,
// attention_bw_fraction, read_gb_per_s, read_gb_per_s_before, read_gb_per_s_after}],
// interrupted. Exit codes: 0; 2 bad options; 1 failure; 130 Ctrl-C (what was measured is
// printed first).
#include "sparq/tools/e2e/bench_model.hpp"

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli.hpp"
#include "options.hpp"
#include "perf_common.hpp"

namespace sparq::cli {
namespace bench_model {
namespace {

using namespace sparq::e2e;

struct Options {
  std::string shape = "llama2-7b";
  std::size_t layers = 0;
  std::vector<std::uint64_t> contexts = {4096, 16384, 32768, 65536};
  std::vector<std::string> methods = {"dense", "sparq:8"};
  std::vector<std::size_t> threads;  // empty: 1 and all cores
  std::size_t repeats = 5;
  std::string weights = "q8";
  std::string q8_kernel = "auto";
  bool no_classifier = false;
  std::string kv_dtype = "bf16";
  std::size_t block_tokens = 256;
  std::string layout = "both";
  std::string d_major_type = "same";
  double memory_fraction = 0.6;
  std::uint64_t bw_buffer = 0;
  std::uint64_t seed = 1;
  bool json = false;
};

// The official SparQ llama.cpp result (Llama-2-7B, Q8_0 weights, f16 KV, 32 threads; the
// paper's repository): end-to-end speed-up at ratio 8 by context.
constexpr std::pair<std::size_t, double> kOfficial[] = {{4096, 1.14}, {16384, 1.57}, {65536, 2.06}, {131072, 2.54}};

// Decimal units, as GB/s are.
std::string gb(double bytes) {
  if (bytes >= 1e9) return fmt::format("{:.2f} GB", bytes * 1e-9);
  if (bytes >= 1e6) return fmt::format("{:.2f} MB", bytes * 1e-6);
  return fmt::format("{:.1f} kB", bytes * 1e-3);
}

BenchModelOptions to_options(const Options& o) {
  BenchModelOptions b;
  const auto shape = shape_by_name(o.shape);
  if (!shape) usage_error(fmt::format("--shape={} is unknown", o.shape));
  b.shape = *shape;
  b.layers = o.layers;
  for (const auto c : o.contexts) b.contexts.push_back(std::size_t(c));
  for (const std::string& m : o.methods) {
    const auto spec = parse_method_spec(m);
    if (!spec) usage_error(fmt::format("--method={} is invalid: use dense, sparq or sparq:<ratio >= 1>", m));
    b.methods.push_back(*spec);
  }
  b.threads = o.threads;
  if (b.threads.empty()) {
    b.threads = {1};
    const std::size_t cores = describe_machine().cores;
    if (cores > 1) b.threads.push_back(cores);
  }
  b.repeats = o.repeats;
  b.weights = *parse_weight_format(o.weights);
  b.q8_kernel = *parse_q8_kernel(o.q8_kernel);
  b.classifier = !o.no_classifier;
  b.kv_dtype = *parse_dtype(o.kv_dtype);
  b.block_tokens = o.block_tokens;
  b.layout = *parse_key_layout(o.layout);
  b.d_major_type = *parse_d_major_type(o.d_major_type);
  b.memory_fraction = o.memory_fraction;
  b.bw_buffer_bytes = std::size_t(o.bw_buffer);
  b.seed = o.seed;
  return b;
}

nlohmann::ordered_json to_json(const BenchModelOptions& b, const BenchModelResult& r) {
  using J = nlohmann::ordered_json;
  J j;
  j["tool"] = "bench-model";
  const LayerShape& s = b.shape;
  J cfg;
  cfg["shape"] = {{"name", s.name},         {"d_model", s.d_model},          {"q_heads", s.q_heads},
                  {"kv_heads", s.kv_heads}, {"head_dim", s.head_dim},        {"ffn", s.ffn},
                  {"vocab", s.vocab},       {"model_layers", s.model_layers}};
  cfg["layers"] = r.plan.layers;
  cfg["weights"] = std::string(to_string(b.weights));
  cfg["q8_kernel"] = b.weights == WeightFormat::q8 ? J(std::string(to_string(r.q8_kernel))) : J(nullptr);
  cfg["classifier"] = b.classifier;
  cfg["kv_dtype"] = std::string(to_string(b.kv_dtype));
  cfg["block_tokens"] = b.block_tokens;
  cfg["layout"] = std::string(to_string(b.layout));
  cfg["d_major_type"] = std::string(to_string(b.d_major_type));
  cfg["contexts"] = b.contexts;
  J methods = J::array();
  for (const auto& m : b.methods) methods.push_back(m.label);
  cfg["methods"] = methods;
  cfg["threads"] = b.threads;
  cfg["repeats"] = b.repeats;
  j["config"] = cfg;
  j["machine"] = {{"cpu_model", r.machine.cpu_model},
                  {"cores", r.machine.cores},
                  {"hardware_threads", r.machine.hardware_threads},
                  {"llc_bytes", r.machine.llc_bytes},
                  {"isa", std::string(to_string(r.isa))},
                  {"vnni", cpu_supports_vnni()}};
  j["plan"] = {{"available_bytes", r.plan.available_bytes},
               {"budget_bytes", r.plan.budget_bytes},
               {"fixed_bytes", r.plan.fixed_bytes},
               {"per_layer_bytes", r.plan.per_layer_bytes},
               {"fits", r.plan.fits}};
  j["weight_bytes"] = r.weight_bytes;
  j["cache_bytes"] = r.cache_bytes;
  j["read_buffer_bytes"] = r.read_buffer_bytes;
  j["build_seconds"] = r.build_seconds;
  j["fill_seconds"] = r.fill_seconds;
  J model = J::array();
  const StorageModel storage = storage_model(b);
  for (const std::size_t c : b.contexts) {
    const TokenBytes base =
        token_bytes(s, b.weights, b.classifier, b.methods.front().method, c + 1, b.kv_dtype, storage);
    for (const auto& m : b.methods) {
      const TokenBytes t = token_bytes(s, b.weights, b.classifier, m.method, c + 1, b.kv_dtype, storage);
      model.push_back({{"context", c},
                       {"method", m.label},
                       {"weight_bytes", t.weights},
                       {"attention_bytes", t.attention},
                       {"total_bytes", t.total()},
                       {"predicted_speedup", double(base.total()) / double(t.total())}});
    }
  }
  j["byte_model"] = model;
  J rows = J::array();
  for (const BenchRow& x : r.rows) {
    rows.push_back({{"threads", x.threads},
                    {"context", x.context},
                    {"method", x.method},
                    {"steps", x.steps},
                    {"tokens_per_s", x.tokens_per_s},
                    {"token_seconds", x.token_seconds},
                    {"attention_seconds", x.attention_seconds},
                    {"rest_seconds", x.rest_seconds},
                    {"speedup", x.speedup},
                    {"predicted_speedup", x.predicted_speedup},
                    {"attention_speedup", x.attention_speedup},
                    {"step",
                     {{"matvec", x.median.matvec},
                      {"attention", x.median.attention},
                      {"append", x.median.append},
                      {"other", x.median.other},
                      {"head", x.median.head},
                      {"total", x.median.total}}},
                    {"matvec_bytes", x.matvec_bytes},
                    {"matvec_gb_per_s", x.matvec_gb_per_s},
                    {"matvec_bw_fraction", x.matvec_bw_fraction},
                    {"attention_bytes", x.attention_bytes},
                    {"attention_gb_per_s", x.attention_gb_per_s},
                    {"attention_bw_fraction", x.attention_bw_fraction},
                    {"read_gb_per_s", x.read_gb_per_s},
                    {"read_gb_per_s_before", x.read_gb_per_s_before},
                    {"read_gb_per_s_after", x.read_gb_per_s_after}});
  }
  j["results"] = rows;
  j["interrupted"] = r.interrupted;
  return j;
}

void print_text(const BenchModelOptions& b, const BenchModelResult& r) {
  const LayerShape& s = b.shape;
  fmt::print("shape      {}: d_model {}, {}/{} heads of {}, MLP {} (SwiGLU), vocab {}, {} layers\n", s.name, s.d_model,
             s.q_heads, s.kv_heads, s.head_dim, s.ffn, s.vocab, s.model_layers);
  fmt::print("weights    {}{}, {} per layer{}; KV cache {}, layout {}{}, {} tokens per block\n", to_string(b.weights),
             b.weights == WeightFormat::q8 ? fmt::format(" (int8, f32 row scales; kernel {})", to_string(r.q8_kernel))
                                           : std::string(" (widened to f32)"),
             gb(double(layer_weight_bytes(s, b.weights))),
             b.classifier ? fmt::format(", classifier {}", gb(double(classifier_bytes(s, b.weights))))
                          : std::string(", no classifier"),
             to_string(b.kv_dtype), to_string(b.layout),
             b.d_major_type == DMajorType::int8 ? " with an int8 d-major copy" : "", b.block_tokens);
  fmt::print("machine    {}, {} cores, isa {}\n", r.machine.cpu_model, r.machine.cores, to_string(r.isa));
  fmt::print("timed      {} of {} layers{} (weights {}, cache {}: built in {:.1f} s, filled in {:.1f} s)\n",
             r.plan.layers, s.model_layers, b.classifier ? " + classifier" : "", gb(double(r.weight_bytes)),
             gb(double(r.cache_bytes)), r.build_seconds, r.fill_seconds);
  if (!r.plan.fits) fmt::print("warning    --layers={} is more than fits in the memory budget\n", r.plan.layers);
  fmt::print("per token  whole model: t = {}/{} x (step - head) + head\n\n", s.model_layers, r.plan.layers);

  fmt::print("byte model: bytes per token of the whole model; speed-up if every byte moved at the same bandwidth\n");
  const StorageModel storage = storage_model(b);
  fmt::print("{:>8}  {:<9} {:>10} {:>12} {:>10} {:>10}\n", "context", "method", "weights", "attention", "total",
             "speed-up");
  for (const std::size_t c : b.contexts) {
    const TokenBytes base =
        token_bytes(s, b.weights, b.classifier, b.methods.front().method, c + 1, b.kv_dtype, storage);
    for (const auto& m : b.methods) {
      const TokenBytes t = token_bytes(s, b.weights, b.classifier, m.method, c + 1, b.kv_dtype, storage);
      fmt::print("{:>8}  {:<9} {:>10} {:>12} {:>10} {:>9.2f}x\n", size_label(c), m.label, gb(double(t.weights)),
                 gb(double(t.attention)), gb(double(t.total())), double(base.total()) / double(t.total()));
    }
  }

  fmt::print("\nmeasured: median of {} steps per method in alternating order\n", b.repeats);
  fmt::print("{:>3} {:>8}  {:<9} {:>7} {:>8} {:>7} {:>9} {:>16} {:>9} {:>7} {:>7} {:>4} {:>7} {:>4} {:>6}\n", "thr",
             "context", "method", "tok/s", "speed-up", "model", "ms/token", "attention", "rest", "attn x", "mv GB/s",
             "%BW", "at GB/s", "%BW", "read");
  for (const BenchRow& x : r.rows)
    fmt::print(
        "{:>3} {:>8}  {:<9} {:>7.3f} {:>7.2f}x {:>6.2f}x {:>9.1f} {:>9.1f} ({:>3.0f}%) {:>9.1f} {:>6.2f}x {:>7.1f} "
        "{:>3.0f}% "
        "{:>7.1f} {:>3.0f}% {:>6.1f}\n",
        x.threads, size_label(x.context), x.method, x.tokens_per_s, x.speedup, x.predicted_speedup,
        x.token_seconds * 1e3, x.attention_seconds * 1e3, 100 * x.attention_seconds / x.token_seconds,
        x.rest_seconds * 1e3, x.attention_speedup, x.matvec_gb_per_s, 100 * x.matvec_bw_fraction, x.attention_gb_per_s,
        100 * x.attention_bw_fraction, x.read_gb_per_s);
  fmt::print(
      "(tok/s, ms/token, attention, rest: per token of the whole model; speed-up: over the first method; model: the\n"
      " byte model's speed-up; attention: decode + KV append, and its share of the token; attn x: the first method's\n"
      " attention time over this one's; mv, at GB/s: weight matvecs and decode of the timed layers; %BW: of read,\n"
      " the mean of the read bandwidth measured right before and right after each thread count's block, GB/s)\n");
  if (s.name == "llama2-7b") {
    std::string line;
    for (const auto& [c, x] : kOfficial)
      line += fmt::format("{}{:.2f}x at {}", line.empty() ? "" : ", ", x, size_label(c));
    fmt::print("\nofficial SparQ llama.cpp (Llama-2-7B, Q8_0 weights, f16 KV, 32 threads), ratio 8: {}\n", line);
  }
}

int run(const Options& o) {
  if (o.repeats < 1 || o.repeats > 10000)
    usage_error(fmt::format("--repeats={} is invalid: must be in [1, 10000]", o.repeats));
  const BenchModelOptions b = to_options(o);
  perf::StopOnSigint stop;
  const BenchModelResult r = run_bench_model(b, [&](const std::string& m) {
    fmt::print(stderr, "sparq bench-model: {}\n", m);
    std::fflush(stderr);
    return !stop.stop_requested();
  });
  if (o.json)
    fmt::print("{}\n", to_json(b, r).dump(2));
  else
    print_text(b, r);
  if (r.interrupted) {
    fmt::print(stderr, "sparq bench-model: interrupted: printed what was measured so far\n");
    return perf::kExitInterrupted;
  }
  return kExitOk;
}

Action setup(CLI::App& cmd) {
  auto o = std::make_shared<Options>();
  cmd.footer(
      "Times one decode step of a whole transformer with random weights in real layer shapes: per layer RMSNorm,\n"
      "q/k/v matvec, RoPE, K/V appended to a sparq::KVCache (--layout), attention by sparq::decode\n"
      "(dense or SparQ), output matvec, RMSNorm, SwiGLU MLP (3 matvecs), residuals; then the final norm and the\n"
      "classifier. Batch 1. The cache is filled with random K/V once, at the longest context, and truncated for\n"
      "the shorter ones. As many layers are timed as fit in --memory-fraction of the available memory; the\n"
      "per-token figures are scaled to the real model's layer count (the speed-up does not depend on it).\n"
      "Prints the byte model (bytes per token of weights and attention, and the speed-up they predict), then\n"
      "tokens/s, the speed-up over the first method, the split into attention and the rest, and the GB/s of\n"
      "the weight matvecs and of attention as a fraction of the read bandwidth measured around each block.\n"
      "docs/e2e.md explains the figures and compares them with the official SparQ llama.cpp result.");
  cmd.add_option("--shape", o->shape, "Layer shape: llama2-7b (MHA), llama3-8b (GQA 32/8), tiny (tests)")
      ->check(CLI::IsMember({"llama2-7b", "llama3-8b", "tiny"}))
      ->capture_default_str();
  cmd.add_option("--layers", o->layers, "Layers to time (default: as many as fit, at most the model's)");
  cmd.add_option("--contexts", o->contexts, "Context lengths, e.g. 4k,16k,32k,64k (k = 1024)")
      ->transform(CLI::AsSizeValue(false))
      ->delimiter(',')
      ->default_str("4k,16k,32k,64k");
  cmd.add_option("--method", o->methods, "Attention methods: dense, sparq:<ratio>; the first is the baseline")
      ->delimiter(',')
      ->capture_default_str();
  cmd.add_option("--threads", o->threads, "Thread counts, e.g. 1,2 (default: 1 and all cores)")->delimiter(',');
  cmd.add_option("--repeats", o->repeats, "Timed steps per method, context and thread count")->capture_default_str();
  cmd.add_option("--weights", o->weights, "Weight format: q8 (int8 + row scales, 1 B/weight) or bf16 (2 B/weight)")
      ->check(CLI::IsMember({"q8", "bf16"}))
      ->capture_default_str();
  cmd.add_option("--q8-kernel", o->q8_kernel, "q8 kernel: auto, vnni (AVX512-VNNI, x in 8 bits), widen (f32 FMAs)")
      ->check(CLI::IsMember({"auto", "vnni", "widen"}))
      ->capture_default_str();
  cmd.add_flag("--no-classifier", o->no_classifier, "Leave out the final norm and vocabulary matvec");
  cmd.add_option("--kv-dtype", o->kv_dtype, "Storage type of the KV cache")
      ->check(CLI::IsMember({"bf16", "f16", "f32"}))
      ->capture_default_str();
  cmd.add_option("--block-tokens", o->block_tokens, "Tokens per cache block")->capture_default_str();
  add_storage_options(cmd, o->layout, o->d_major_type, {"both", "fused", "s-major", "d-major"});
  cmd.add_option("--memory-fraction", o->memory_fraction,
                 "Fraction of the available memory for weights, cache and read buffer (sizes the default --layers)")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  cmd.add_option("--bw-buffer", o->bw_buffer, "Read-bandwidth buffer, e.g. 512M (default: 8x LLC within [256M, 1G])")
      ->transform(CLI::AsSizeValue(false));
  cmd.add_option("--seed", o->seed, "Seed of the random weights and cache")->capture_default_str();
  cmd.add_flag("--json", o->json, "Print JSON (fields listed in apps/sparq/bench_model.cpp)");
  return [o] { return run(*o); };
}

}  // namespace
}  // namespace bench_model

Subcommand bench_model_subcommand() {
  return {"bench-model", "Tokens/s of a whole model's decode step (random weights, real shapes): dense vs SparQ",
          &bench_model::setup};
}

}  // namespace sparq::cli
