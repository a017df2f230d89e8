// `sparq layouts`: what each key layout costs SparQ, and what it costs in memory.
//
// SparQ stage 1 reads r components of every key: cheap from the d-major copy (r rows
// of B contiguous elements per block), expensive from S-major rows (whole rows are in
// the same cache lines). Stage 2 gathers k whole key rows: cheap S-major, expensive
// d-major (d lines per row). Keeping both layouts is fastest and costs S·d·b more
// memory per KV head (+50% over K and V). For every (dtype, layout, block size) this
// tool fills a cold cache, times SparQ and dense (interleaved, median), and reports
// bytes touched per phase (from the profile), time, GB/s, speed-up against dense on the
// same cache, and the memory of each layout (KVCache::memory_usage()).
//
// memory_bytes and its parts are for one layer of the sequence (all KV heads).
// --json fields: tool, config{...}, results[{dtype, layout, block_tokens, memory_bytes,
// kv_bytes, memory_overhead, sparq_seconds, dense_seconds, sparq_bytes, stage1_bytes,
// topk_bytes, stage2_bytes, model_bytes, dense_bytes, sparq_gb_per_s, dense_gb_per_s,
// speedup_vs_dense, byte_ratio_vs_dense, repeats}], recommendation, interrupted.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli.hpp"
#include "options.hpp"
#include "perf_common.hpp"
#include "sparq/tools/cold_caches.hpp"
#include "sparq/tools/roofline.hpp"

namespace sparq::cli {
namespace {

struct LayoutsOptions {
  std::uint64_t seq_len = 16384;
  std::string heads = "32/8";
  std::int64_t head_dim = 128;
  std::vector<std::string> dtypes{"bf16"};
  std::vector<std::string> layouts{"both", "s-major", "d-major"};
  std::vector<std::uint64_t> block_tokens{64, 256, 1024};
  double ratio = 8.0;
  std::optional<std::int64_t> r, k, window;
  std::int64_t threads = 0;
  std::int64_t repeats = 7;
  std::uint64_t working_set = 256ull << 20;
  bool json = false, csv = false;
};

struct Result {
  DType dtype = DType::bf16;
  KeyLayout layout = KeyLayout::both;
  std::size_t block = 0;
  MemoryUsage memory;
  std::uint64_t kv_bytes = 0;  // K and V once each: the memory without a second key copy
  std::vector<double> sparq_times, dense_times;
  Profile sparq_profile, dense_profile;
  std::uint64_t model_bytes = 0;

  [[nodiscard]] double sparq_s() const { return perf::median(sparq_times); }
  [[nodiscard]] double dense_s() const { return perf::median(dense_times); }
  [[nodiscard]] std::uint64_t per_call(const Profile& p, Phase ph, std::size_t n) const {
    return n ? p[ph].bytes_read / n : 0;
  }
  [[nodiscard]] std::uint64_t sparq_bytes() const {
    return sparq_times.empty() ? 0 : sparq_profile.total().bytes_read / sparq_times.size();
  }
  [[nodiscard]] std::uint64_t dense_bytes() const {
    return dense_times.empty() ? 0 : dense_profile.total().bytes_read / dense_times.size();
  }
  [[nodiscard]] double overhead() const {
    const double total = double(memory.k_s_major + memory.k_d_major + memory.values);
    return kv_bytes ? total / double(kv_bytes) - 1.0 : 0.0;
  }
  [[nodiscard]] double speedup() const { return sparq_s() > 0 ? dense_s() / sparq_s() : 0.0; }
  [[nodiscard]] bool complete() const { return !sparq_times.empty() && !dense_times.empty(); }
};

std::string layout_name(KeyLayout l) {
  return std::string(to_string(l));
}

// The layout whose best block size is fastest; within it the fastest block size, the
// default 256 when it is within 5% (timings on a shared machine are noisy); and what
// the layouts without a second key copy give.
std::string recommend(const std::vector<Result>& results, std::size_t S, std::size_t d) {
  const Result* best = nullptr;
  for (const Result& r : results)
    if (r.complete() && (!best || r.sparq_s() < best->sparq_s())) best = &r;
  if (!best) return "no complete measurement";
  for (const Result& r : results)
    if (r.complete() && r.layout == best->layout && r.dtype == best->dtype && r.block == 256 &&
        r.sparq_s() <= 1.05 * best->sparq_s())
      best = &r;
  std::string line = fmt::format(
      "for S={}, d={}, {}: keep {} key layout{} with {}-token blocks (SparQ {:.1f}x faster than dense, {:+.0f}% memory "
      "over K+V)",
      size_label(S), d, to_string(best->dtype), layout_name(best->layout), best->layout == KeyLayout::both ? "s" : "",
      best->block, best->speedup(), best->overhead() * 100);
  for (KeyLayout other : {KeyLayout::both, KeyLayout::s_major, KeyLayout::d_major}) {
    if (other == best->layout) continue;
    const Result* alt = nullptr;
    for (const Result& r : results)
      if (r.complete() && r.layout == other && r.dtype == best->dtype && (!alt || r.sparq_s() < alt->sparq_s()))
        alt = &r;
    if (alt)
      line += fmt::format("; {}{}: {:.1f}x ({:+.0f}% memory)", layout_name(other),
                          other == KeyLayout::both ? "" : " only", alt->speedup(), alt->overhead() * 100);
  }
  return line;
}

int run(const LayoutsOptions& o) {
  perf::check_r(o.r, o.head_dim);
  const std::size_t S = o.seq_len;
  const perf::Heads heads = perf::parse_heads(o.heads);
  const auto d = std::size_t(o.head_dim);
  std::vector<DType> dtypes;
  for (const auto& item : o.dtypes) {
    const auto t = parse_dtype(item);
    if (!t) usage_error(fmt::format("--dtypes: '{}' is not one of f32, f16, bf16", item));
    dtypes.push_back(*t);
  }
  std::vector<KeyLayout> layouts;
  for (const auto& item : o.layouts) {
    const auto l = parse_key_layout(item);
    if (!l) usage_error(fmt::format("--layouts: '{}' is not one of both, s-major, d-major", item));
    layouts.push_back(*l);
  }
  const std::vector<std::size_t> blocks(o.block_tokens.begin(), o.block_tokens.end());
  const std::uint64_t working_set = o.working_set;
  const SparQ sparq = perf::sparq_for(o.ratio, o.r, o.k, o.window);
  const std::size_t group = heads.q / heads.kv;
  const SparQResolved params = sparq.resolve(d, S, group);  // validates k, r against S and d
  const Method sparq_method = sparq, dense_method = Dense{};

  const std::size_t threads = o.threads ? std::size_t(o.threads) : std::max(1u, std::thread::hardware_concurrency());
  tbb::task_arena arena{static_cast<int>(threads)};
  perf::StopOnSigint stop;
  const std::size_t configs = dtypes.size() * layouts.size() * blocks.size();
  perf::Progress progress(configs * (1 + std::size_t(o.repeats)));
  std::vector<Result> results;
  for (DType dt : dtypes)
    for (KeyLayout lay : layouts)
      for (std::size_t B : blocks) {
        if (stop.stop_requested()) break;
        const std::string tag = fmt::format("{} {} B={}", to_string(dt), layout_name(lay), B);
        CacheConfig config{.kv_heads = heads.kv, .head_dim = d, .dtype = dt, .block_tokens = B, .layouts = lay};
        // SparQ and dense alternate: at least 3 layers, an odd number.
        config.layers = rotation_layers(working_set, stored_bytes_per_layer(config, S), 3, 2);
        auto cold = build_cold_caches({.config = config, .seq_len = S}, [&](double f) {
          progress.show(fmt::format("{}: filling {:.0f}%", tag, f * 100));
          return !stop.stop_requested();
        });
        progress.step(tag);
        if (cold.layers == 0) break;
        Result res;
        res.dtype = dt;
        res.layout = lay;
        res.block = B;
        // Per layer of the one sequence (all KV heads): the rotation's layer count varies
        // with the layout and block size, the memory of one layer does not.
        res.memory = cold.cache->memory_usage();
        for (std::size_t* part : {&res.memory.k_s_major, &res.memory.k_d_major, &res.memory.values,
                                  &res.memory.metadata, &res.memory.blocks_in_use})
          *part /= cold.layers;
        res.kv_bytes = 2 * std::uint64_t(res.memory.values);  // K once + V (same size per block)
        res.model_bytes = sparq_model_bytes(S, d, dt, params, group) * heads.kv;
        const perf::Queries queries(cold, heads.q, d, 99);
        {
          Profile scratch;
          (void)perf::timed_decode(cold, sparq_method, queries, arena, scratch);
          (void)perf::timed_decode(cold, dense_method, queries, arena, scratch);
        }
        for (std::int64_t rep = 0; rep < o.repeats && !stop.stop_requested(); ++rep) {
          res.sparq_times.push_back(perf::timed_decode(cold, sparq_method, queries, arena, res.sparq_profile));
          if (stop.stop_requested()) break;
          res.dense_times.push_back(perf::timed_decode(cold, dense_method, queries, arena, res.dense_profile));
          progress.step(fmt::format("{}: repeat {}/{}", tag, rep + 1, o.repeats));
        }
        results.push_back(std::move(res));
      }
  progress.finish();
  const bool interrupted = stop.stop_requested();
  const std::string recommendation = recommend(results, S, d);

  if (o.json) {
    nlohmann::json j;
    j["tool"] = "layouts";
    j["config"] = {{"seq_len", S},
                   {"q_heads", heads.q},
                   {"kv_heads", heads.kv},
                   {"head_dim", d},
                   {"ratio", o.ratio},
                   {"r", params.r},
                   {"k", params.k},
                   {"window", params.window},
                   {"threads", threads},
                   {"repeats", o.repeats},
                   {"working_set_bytes", working_set}};
    auto rows = nlohmann::json::array();
    for (const Result& r : results) {
      if (!r.complete()) continue;
      const std::size_t n = r.sparq_times.size();
      rows.push_back(
          {{"dtype", std::string(to_string(r.dtype))},
           {"layout", layout_name(r.layout)},
           {"block_tokens", r.block},
           {"memory_bytes", r.memory.total()},
           {"k_s_major_bytes", r.memory.k_s_major},
           {"k_d_major_bytes", r.memory.k_d_major},
           {"values_bytes", r.memory.values},
           {"kv_bytes", r.kv_bytes},
           {"memory_overhead", r.overhead()},
           {"sparq_seconds", r.sparq_s()},
           {"dense_seconds", r.dense_s()},
           {"sparq_bytes", r.sparq_bytes()},
           {"stage1_bytes", r.per_call(r.sparq_profile, Phase::stage1, n)},
           {"topk_bytes", r.per_call(r.sparq_profile, Phase::topk, n)},
           {"stage2_bytes", r.per_call(r.sparq_profile, Phase::stage2, n)},
           {"model_bytes", r.model_bytes},
           {"dense_bytes", r.dense_bytes()},
           {"sparq_gb_per_s", r.sparq_s() > 0 ? double(r.sparq_bytes()) / r.sparq_s() * 1e-9 : 0.0},
           {"dense_gb_per_s", r.dense_s() > 0 ? double(r.dense_bytes()) / r.dense_s() * 1e-9 : 0.0},
           {"speedup_vs_dense", r.speedup()},
           {"byte_ratio_vs_dense", r.sparq_bytes() ? double(r.dense_bytes()) / double(r.sparq_bytes()) : 0.0},
           {"repeats", n}});
    }
    j["results"] = rows;
    j["recommendation"] = recommendation;
    j["interrupted"] = interrupted;
    fmt::print("{}\n", j.dump(2));
  } else if (o.csv) {
    fmt::print(
        "dtype,layout,block_tokens,memory_bytes,memory_overhead,sparq_ms,dense_ms,stage1_bytes,stage2_bytes,"
        "sparq_bytes,model_bytes,sparq_gb_per_s,speedup_vs_dense\n");
    for (const Result& r : results) {
      if (!r.complete()) continue;
      const std::size_t n = r.sparq_times.size();
      fmt::print("{},{},{},{},{:.4f},{:.6f},{:.6f},{},{},{},{},{:.3f},{:.3f}\n", to_string(r.dtype),
                 layout_name(r.layout), r.block, r.memory.total(), r.overhead(), r.sparq_s() * 1e3, r.dense_s() * 1e3,
                 r.per_call(r.sparq_profile, Phase::stage1, n), r.per_call(r.sparq_profile, Phase::stage2, n),
                 r.sparq_bytes(), r.model_bytes, double(r.sparq_bytes()) / r.sparq_s() * 1e-9, r.speedup());
    }
  } else {
    fmt::print("sparq layouts: S={}, {} query / {} KV heads, d={}, SparQ r={} k={} window={}, {} thr, median of {}\n",
               size_label(S), heads.q, heads.kv, d, params.r, params.k, params.window, threads, o.repeats);
    fmt::print("{:<5} {:<8} {:>5} {:>10} {:>7} {:>11} {:>11} {:>11} {:>7} {:>10} {:>7} {:>10} {:>8}\n", "dtype",
               "layout", "B", "memory", "extra", "stage1", "stage2", "sparq B", "model", "sparq", "GB/s", "dense",
               "speedup");
    for (const Result& r : results) {
      if (!r.complete()) continue;
      const std::size_t n = r.sparq_times.size();
      fmt::print(
          "{:<5} {:<8} {:>5} {:>10} {:>+6.0f}% {:>11} {:>11} {:>11} {:>6.2f}x {:>7.3f} ms {:>7.1f} {:>7.3f} ms "
          "{:>7.2f}x\n",
          to_string(r.dtype), layout_name(r.layout), r.block, perf::human_bytes(double(r.memory.total())),
          r.overhead() * 100, perf::human_bytes(double(r.per_call(r.sparq_profile, Phase::stage1, n))),
          perf::human_bytes(double(r.per_call(r.sparq_profile, Phase::stage2, n))),
          perf::human_bytes(double(r.sparq_bytes())),
          r.model_bytes ? double(r.sparq_bytes()) / double(r.model_bytes) : 0.0, r.sparq_s() * 1e3,
          double(r.sparq_bytes()) / r.sparq_s() * 1e-9, r.dense_s() * 1e3, r.speedup());
    }
    fmt::print(
        "(memory: one layer, all KV heads; extra: over K+V once; stage1/stage2/sparq B: bytes per "
        "call from the profile; model: sparq B / DESIGN §1 model)\n");
    fmt::print("recommendation: {}\n", recommendation);
  }
  if (interrupted) {
    fmt::print(stderr, "sparq layouts: interrupted: printed what was measured so far\n");
    return perf::kExitInterrupted;
  }
  return kExitOk;
}

Action setup(CLI::App& cmd) {
  auto o = std::make_shared<LayoutsOptions>();
  cmd.add_option("--seq-len", o->seq_len, "Cache length S, e.g. 16k (k = 1024)")
      ->transform(size_in(1, 1ull << 30))
      ->default_str("16k");
  cmd.add_option("--heads", o->heads, "Query/KV heads, e.g. 32/8 (GQA) or 16 (MHA)")->capture_default_str();
  cmd.add_option("--head-dim", o->head_dim, "Head dimension d")
      ->transform(integer_in(1, perf::kMaxHeadDim))
      ->capture_default_str();
  cmd.add_option("--dtypes", o->dtypes, "Storage types to compare, e.g. bf16,f32")
      ->delimiter(',')
      ->capture_default_str();
  cmd.add_option("--layouts", o->layouts, "Key layouts to compare: both, s-major, d-major")
      ->delimiter(',')
      ->capture_default_str();
  cmd.add_option("--block-tokens", o->block_tokens, "Block sizes to compare, e.g. 64,256,1024")
      ->delimiter(',')
      ->transform(size_in(1, 1 << 16))
      ->default_str("64,256,1024");
  cmd.add_option("--ratio", o->ratio, "SparQ compression ratio c >= 1")
      ->check(number_at_least(1.0))
      ->capture_default_str();
  cmd.add_option("--r", o->r, "SparQ query components kept, 1 <= r <= d (overrides the ratio)")
      ->transform(integer_in(1, perf::kMaxHeadDim));
  cmd.add_option("--k", o->k, "SparQ positions fetched, k >= 1 (overrides the ratio)")
      ->transform(integer_in(1, kMaxInt64));
  cmd.add_option("--window", o->window, "SparQ local window l >= 0 (default k/4)")->transform(integer_in(0, kMaxInt64));
  cmd.add_option("--threads", o->threads, "Threads for the kernels (0: all hardware threads)")
      ->transform(integer_in(0, perf::kMaxThreads))
      ->capture_default_str();
  cmd.add_option("--repeats", o->repeats, "Timed calls per configuration (median reported)")
      ->transform(integer_in(1, perf::kMaxRepeats))
      ->capture_default_str();
  cmd.add_option("--working-set", o->working_set, "Bytes the timed calls rotate over (cold data), e.g. 256M")
      ->transform(size_in(1, 1ull << 40))
      ->default_str("256M");
  auto* json = cmd.add_flag("--json", o->json, "Print JSON (fields listed in apps/sparq/layouts.cpp)");
  cmd.add_flag("--csv", o->csv, "Print the table as CSV with a header row")->excludes(json);
  return [o] { return run(*o); };
}

}  // namespace

Subcommand layouts_subcommand() {
  return {"layouts", "Compare key layouts, block sizes and element types for SparQ: bytes, time, memory", &setup};
}

}  // namespace sparq::cli
