// `sparq soak`: a serving soak (sparq::run_soak, include/sparq/tools/soak.hpp): worker
// threads simulate a continuous-batching server against one KV cache under capacity
// pressure while its invariants are checked. Prints ops/s, latency percentiles per
// operation, memory and the checks made; exits 1 if any invariant was violated.
//
// --json fields: tool, config{...}, seconds, operations, ops_per_s, tokens_appended,
// ops[{name, count, refused, p50_us, p99_us, max_us}], memory{pool_blocks,
// peak_blocks_in_use, blocks_allocated, peak_cache_bytes, baseline_cache_bytes,
// rss_start_bytes, rss_first_drain_bytes, rss_end_bytes}, checks{pauses, drains,
// replays}, violations, violation_messages[].
#include "sparq/tools/soak.hpp"

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli.hpp"

namespace sparq::cli {

namespace {

struct SoakOptions {
  SoakConfig config;
  std::string duration = "60s";
  std::string heads = "8/2";
  std::string dtype = "bf16";
  bool json = false, quiet = false;
};

// "90", "90s", "30m", "1.5h" -> seconds.
double parse_duration(const std::string& text) {
  std::size_t used = 0;
  double v = 0.0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    usage_error("--duration='" + text + "' is not a duration: use e.g. 60, 60s, 30m or 1h");
  }
  const std::string unit = text.substr(used);
  const double scale = unit.empty() || unit == "s" ? 1.0 : unit == "m" ? 60.0 : unit == "h" ? 3600.0 : -1.0;
  if (scale < 0 || !(v >= 0)) usage_error("--duration='" + text + "' is not a duration: use e.g. 60, 60s, 30m or 1h");
  return v * scale;
}

void parse_options(SoakOptions& o) {
  o.config.duration_s = parse_duration(o.duration);
  const auto slash = o.heads.find('/');
  try {
    o.config.q_heads = std::stoul(o.heads.substr(0, slash));
    o.config.kv_heads = slash == std::string::npos ? o.config.q_heads : std::stoul(o.heads.substr(slash + 1));
  } catch (const std::exception&) {
    usage_error("--heads='" + o.heads + "' is invalid: use Q/KV, e.g. 8/2, or one number for MHA");
  }
  const auto dtype = parse_dtype(o.dtype);
  if (!dtype) usage_error("--dtype='" + o.dtype + "' is invalid: must be f32, f16 or bf16");
  o.config.dtype = *dtype;
  o.config.validate();  // every other range, with the field's name
}

nlohmann::ordered_json to_json(const SoakOptions& o, const SoakReport& r) {
  const SoakConfig& c = o.config;
  nlohmann::ordered_json j;
  j["tool"] = "sparq soak";
  j["config"] = {{"duration_s", c.duration_s},
                 {"threads", c.threads},
                 {"layers", c.layers},
                 {"q_heads", c.q_heads},
                 {"kv_heads", c.kv_heads},
                 {"head_dim", c.head_dim},
                 {"dtype", std::string(to_string(c.dtype))},
                 {"block_tokens", c.block_tokens},
                 {"capacity_tokens", c.capacity_tokens},
                 {"max_sequences_per_thread", c.max_sequences_per_thread},
                 {"max_prefill_tokens", c.max_prefill_tokens},
                 {"shared_prompt_tokens", c.shared_prompt_tokens},
                 {"replay_fraction", c.replay_fraction},
                 {"seed", c.seed}};
  j["seconds"] = r.seconds;
  j["operations"] = r.operations;
  j["ops_per_s"] = r.ops_per_s;
  j["tokens_appended"] = r.tokens_appended;
  auto ops = nlohmann::ordered_json::array();
  for (const SoakOpStats& s : r.ops)
    ops.push_back({{"name", s.name},
                   {"count", s.count},
                   {"refused", s.refused},
                   {"p50_us", s.p50_us},
                   {"p99_us", s.p99_us},
                   {"max_us", s.max_us}});
  j["ops"] = ops;
  j["memory"] = {{"pool_blocks", r.pool_blocks},
                 {"peak_blocks_in_use", r.peak_blocks_in_use},
                 {"blocks_allocated", r.blocks_allocated},
                 {"peak_cache_bytes", r.peak_cache_bytes},
                 {"baseline_cache_bytes", r.baseline_cache_bytes},
                 {"rss_start_bytes", r.rss_start_bytes},
                 {"rss_first_drain_bytes", r.rss_first_drain_bytes},
                 {"rss_end_bytes", r.rss_end_bytes}};
  j["checks"] = {{"pauses", r.pauses}, {"drains", r.drains}, {"replays", r.replays}};
  j["violations"] = r.violations;
  j["violation_messages"] = r.violation_messages;
  return j;
}

double mib(std::size_t b) {
  return double(b) / double(1 << 20);
}

void print_text(const SoakOptions& o, const SoakReport& r) {
  const SoakConfig& c = o.config;
  fmt::print("sparq soak: {:.1f} s, {} threads, cache {} layers x {}/{} heads x d={} {}, {}-token blocks, {} tokens\n",
             r.seconds, c.threads, c.layers, c.q_heads, c.kv_heads, c.head_dim, to_string(c.dtype), c.block_tokens,
             c.capacity_tokens);
  fmt::print("{} operations ({:.0f}/s), {} tokens appended\n", r.operations, r.ops_per_s, r.tokens_appended);
  fmt::print("{:<14}{:>10}{:>9}{:>11}{:>11}{:>11}\n", "op", "count", "refused", "p50 us", "p99 us", "max us");
  for (const SoakOpStats& s : r.ops)
    fmt::print("{:<14}{:>10}{:>9}{:>11.1f}{:>11.1f}{:>11.1f}\n", s.name, s.count, s.refused, s.p50_us, s.p99_us,
               s.max_us);
  fmt::print(
      "memory: pool {} blocks, peak {} in use, {} allocated; cache {:.1f} MiB at peak, {:.1f} MiB drained; "
      "RSS {:.1f} MiB at start, {:.1f} at the first drain, {:.1f} at the end\n",
      r.pool_blocks, r.peak_blocks_in_use, r.blocks_allocated, mib(r.peak_cache_bytes), mib(r.baseline_cache_bytes),
      mib(r.rss_start_bytes), mib(r.rss_first_drain_bytes), mib(r.rss_end_bytes));
  fmt::print("checks: {} block accountings, {} drains, {} serial replays; {} violations\n", r.pauses, r.drains,
             r.replays, r.violations);
  for (const std::string& m : r.violation_messages) fmt::print("  violation: {}\n", m);
}

int run(SoakOptions& o) {
  parse_options(o);
  auto last = std::chrono::steady_clock::now();
  const SoakReport report = run_soak(o.config, [&](const std::string& line) {
    if (o.quiet || std::chrono::steady_clock::now() - last < std::chrono::seconds(10)) return;
    last = std::chrono::steady_clock::now();
    fmt::print(stderr, "sparq soak: {}\n", line);
  });
  if (o.json)
    fmt::print("{}\n", to_json(o, report).dump(2));
  else
    print_text(o, report);
  if (report.ok()) return kExitOk;
  fmt::print(stderr, "sparq soak: error: {} invariant violations; the first: {}\n", report.violations,
             report.violation_messages.empty() ? std::string("?") : report.violation_messages.front());
  return kExitInternal;
}

Action setup(CLI::App& cmd) {
  auto o = std::make_shared<SoakOptions>();
  SoakConfig& c = o->config;
  cmd.footer(
      "Simulates a continuous-batching server: worker threads add sequences and prefill them, run forward steps "
      "(append one token per layer, then decode the batch at that layer, dense and SparQ in turn), fork (beams, and "
      "branches of a prompt all workers share), append speculative drafts and truncate the rejected part, and remove "
      "sequences, with a pool too small for all of it (refused appends evict a sequence). Checked as it runs: a "
      "refused append changes nothing; every sequence holds what its worker appended; every --check-every seconds "
      "(workers paused) the blocks the sequences reference are the blocks in use; every --drain-every seconds and at "
      "the end, with all sequences removed, no block is in use and memory is back at its baseline; a --replay "
      "fraction of decodes is replayed serially on a private cache and must be bit-identical. Exit 0: no violation; "
      "1: an invariant was violated (listed); 2: bad options.");
  cmd.add_option("--duration", o->duration, "How long to run: seconds, or with a unit: 90s, 30m, 1h")
      ->capture_default_str();
  cmd.add_option("--threads", c.threads, "Worker threads (each a scheduler shard owning its sequences)")
      ->capture_default_str();
  cmd.add_option("--layers", c.layers, "Layers of the cache")->capture_default_str();
  cmd.add_option("--heads", o->heads, "Query/KV heads, e.g. 8/2 (GQA) or 4 (MHA)")->capture_default_str();
  cmd.add_option("--head-dim", c.head_dim, "Head dimension d")->capture_default_str();
  cmd.add_option("--dtype", o->dtype, "Storage type: f32, f16, bf16")->capture_default_str();
  cmd.add_option("--block-tokens", c.block_tokens, "Tokens per cache block")->capture_default_str();
  cmd.add_option("--capacity-tokens", c.capacity_tokens, "Pool capacity in tokens per layer and KV head")
      ->capture_default_str();
  cmd.add_option("--max-seqs", c.max_sequences_per_thread, "Sequences a worker owns at most")->capture_default_str();
  cmd.add_option("--max-prefill", c.max_prefill_tokens, "Longest prefill, in tokens")->capture_default_str();
  cmd.add_option("--prompt-tokens", c.shared_prompt_tokens, "Tokens of the prompt all workers fork (0: none)")
      ->capture_default_str();
  cmd.add_option("--replay", c.replay_fraction, "Fraction of decodes replayed serially and compared bit for bit")
      ->capture_default_str();
  cmd.add_option("--check-every", c.check_every_s, "Seconds between block accounting checks")->capture_default_str();
  cmd.add_option("--drain-every", c.drain_every_s, "Seconds between drains (all sequences removed, memory checked)")
      ->capture_default_str();
  cmd.add_option("--seed", c.seed, "Seed of the workload")->capture_default_str();
  cmd.add_flag("--json", o->json, "Print JSON (fields listed in apps/sparq/soak.cpp)");
  cmd.add_flag("--quiet", o->quiet, "No progress lines on stderr");
  return [o] { return run(*o); };
}

}  // namespace

Subcommand soak_subcommand() {
  return {"soak", "Serving soak: concurrent server operations on one cache with its invariants checked", &setup};
}

}  // namespace sparq::cli
