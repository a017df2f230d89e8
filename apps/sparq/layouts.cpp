// `sparq layouts`: which storage makes SparQ fastest, at what cost to dense decode and
// memory. Compares the key layouts (S-major, d-major, both, fused: each position's key and
// value side by side) and, where the layout keeps both key copies, the d-major copy in the
// cache's dtype or in int8 with per-block scales (DESIGN §4).
//
// SparQ stage 1 reads r components of every key: cheap from the d-major copy (r rows of
// B contiguous elements per block; half the bytes again in int8), expensive from S-major
// rows (whole rows share cache lines). Stage 2 gathers k whole key and value rows: cheap
// S-major (two runs of d elements per position, one run of 2d when fused), expensive
// d-major (d lines per key). For every (dtype, layout, d-major type, block size) the tool
// fills a cold cache; all caches are kept, so the timed calls (SparQ then dense, each on
// the next layer of its cache's rotation) interleave over every configuration: a machine
// whose bandwidth drifts slows them all alike. It measures the streaming read bandwidth
// before and after, and reports per configuration the median time, GB/s and % of that
// bandwidth for SparQ and dense, stage 1 and stage 2 bytes and GB/s (from the profile),
// bytes moved, the memory of one layer, and recommends one storage per dtype:
// the fastest SparQ among configurations whose dense decode is within 10% of the fastest
// dense and whose memory is no more than the `both` layout's; 256-token blocks and the
// exact copy are preferred when within 5% of it (the int8 copy changes which positions
// are fetched: its accuracy is measured with `sparq eval` / `passkey`, docs/performance.md).
//
// --json fields: tool, config{seq_len, q_heads, kv_heads, head_dim, ratio, r, k, window,
// threads, repeats, working_set_bytes}, machine{cpu_model, read_gb_per_s_before,
// read_gb_per_s_after}, results[{dtype, layout, d_major_type, variant, block_tokens,
// memory_bytes, k_s_major_bytes, k_d_major_bytes, values_bytes, kv_bytes,
// memory_overhead, sparq_seconds, dense_seconds, sparq_bytes, stage1_bytes, topk_bytes,
// stage2_bytes, model_bytes, dense_bytes, sparq_gb_per_s, dense_gb_per_s,
// sparq_bandwidth_fraction, dense_bandwidth_fraction, stage1_gb_per_s, stage2_gb_per_s,
// speedup_vs_dense, byte_ratio_vs_dense, repeats}], recommendations[{dtype, layout,
// d_major_type, block_tokens, line}], recommendation (the lines joined), notes[],
// interrupted. memory_bytes and its parts are for one layer of the sequence (all KV heads).
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli.hpp"
#include "layouts_run.hpp"
#include "options.hpp"
#include "perf_common.hpp"
#include "sparq/tools/cold_caches.hpp"
#include "sparq/tools/roofline.hpp"

namespace sparq::cli {
namespace layouts {
namespace {

// The (layout, d-major type) pairs asked for that exist: int8 needs both key copies
// (both, fused); a layout without a d-major copy runs once. Skipped pairs go to `notes`.
std::vector<Variant> variants(const LayoutsOptions& o, std::vector<std::string>& notes) {
  std::vector<KeyLayout> layouts;
  for (const auto& item : o.layouts) {
    const auto l = parse_key_layout(item);
    if (!l) usage_error(fmt::format("--layouts: '{}' is not one of both, s-major, d-major, fused", item));
    layouts.push_back(*l);
  }
  std::vector<DMajorType> types;
  for (const auto& item : o.d_major_types) {
    const auto t = parse_d_major_type(item);
    if (!t) usage_error(fmt::format("--d-major-types: '{}' is not one of same, int8", item));
    types.push_back(*t);
  }
  if (layouts.empty()) usage_error("--layouts is empty: give at least one of both, s-major, d-major, fused");
  if (types.empty()) usage_error("--d-major-types is empty: give same, int8 or both");
  std::vector<Variant> out;
  const auto add = [&](Variant v) {
    for (const Variant& w : out)
      if (w.layout == v.layout && w.d_major_type == v.d_major_type) return;
    out.push_back(v);
  };
  for (KeyLayout l : layouts) {
    if (!has_d_major(l)) {  // no d-major copy: its type means nothing
      add({l, DMajorType::same});
      continue;
    }
    for (DMajorType t : types) {
      if (t == DMajorType::int8 && !has_s_major(l)) {
        notes.push_back(
            fmt::format("{}+int8 not run: an int8 d-major copy needs the S-major keys (both or fused)", to_string(l)));
        continue;
      }
      add({l, t});
    }
  }
  if (out.empty())
    usage_error(
        "--layouts/--d-major-types: nothing to compare: an int8 d-major copy needs a layout with both key "
        "copies (both or fused)");
  return out;
}

// The rule stated in layouts.cpp's header, for the results of one dtype.
Recommendation recommend(const Run& run, DType dtype) {
  std::vector<const Result*> rs;
  for (const Result& r : run.results)
    if (r.complete() && r.dtype == dtype) rs.push_back(&r);
  Recommendation rec;
  if (rs.empty()) {
    rec.line = fmt::format("{}: no complete measurement", to_string(dtype));
    return rec;
  }
  double fastest_dense = rs.front()->dense_s(), both_overhead = -1.0;
  for (const Result* r : rs) {
    fastest_dense = std::min(fastest_dense, r->dense_s());
    if (r->variant.layout == KeyLayout::both && r->variant.d_major_type == DMajorType::same)
      both_overhead = std::max(both_overhead, r->overhead());
  }
  const auto acceptable = [&](const Result* r) {
    return r->dense_s() <= kDenseSlack * fastest_dense && (both_overhead < 0 || r->overhead() <= both_overhead + 0.01);
  };
  const Result* best = nullptr;
  for (const Result* r : rs)
    if (acceptable(r) && (!best || r->sparq_s() < best->sparq_s())) best = r;
  const bool any_acceptable = best != nullptr;
  if (!best)
    for (const Result* r : rs)
      if (!best || r->sparq_s() < best->sparq_s()) best = r;
  // Within 5%: the default block size, then the exact copy (int8 changes the selection).
  const double limit = kSameBlock * best->sparq_s();
  for (const Result* r : rs)
    if (r->variant.layout == best->variant.layout && r->variant.d_major_type == best->variant.d_major_type &&
        r->block == 256 && r->sparq_s() <= limit && (acceptable(r) || !any_acceptable))
      best = r;
  for (const Result* r : rs)
    if (best->variant.d_major_type == DMajorType::int8 && r->variant.layout == best->variant.layout &&
        r->variant.d_major_type == DMajorType::same && r->block == best->block && r->sparq_s() <= limit &&
        (acceptable(r) || !any_acceptable))
      best = r;
  rec.chosen = best;
  rec.line = fmt::format(
      "for S={}, d={}, {}: {} with {}-token blocks: SparQ {:.3f} ms, {:.2f}x faster than dense; dense {:.2f}x the "
      "fastest dense; {:+.0f}% memory over K+V ({})",
      size_label(run.seq_len), run.head_dim, to_string(dtype), variant_name(best->variant), best->block,
      best->sparq_s() * 1e3, best->speedup(), best->dense_s() / fastest_dense, best->overhead() * 100,
      any_acceptable ? fmt::format("the fastest SparQ with dense within {:.0f}% of the fastest and no more memory "
                                   "than `both`",
                                   (kDenseSlack - 1) * 100)
                     : std::string("no configuration kept dense and memory within bounds: the fastest SparQ"));
  // The best of every other variant, for the trade-off.
  std::vector<Variant> seen{best->variant};
  for (const Result* r : rs) {
    bool done = false;
    for (const Variant& v : seen) done |= v.layout == r->variant.layout && v.d_major_type == r->variant.d_major_type;
    if (done) continue;
    seen.push_back(r->variant);
    const Result* alt = r;
    for (const Result* q : rs)
      if (q->variant.layout == r->variant.layout && q->variant.d_major_type == r->variant.d_major_type &&
          q->sparq_s() < alt->sparq_s())
        alt = q;
    rec.line += fmt::format("; {}: SparQ {:.2f}x of {}'s time, dense {:.2f}x, {:+.0f}% memory",
                            variant_name(alt->variant), alt->sparq_s() / best->sparq_s(), variant_name(best->variant),
                            alt->dense_s() / best->dense_s(), alt->overhead() * 100);
  }
  return rec;
}

int run(const LayoutsOptions& o) {
  perf::check_r(o.r, o.head_dim);
  Run run;
  run.seq_len = o.seq_len;
  const perf::Heads heads = perf::parse_heads(o.heads);
  run.q_heads = heads.q;
  run.kv_heads = heads.kv;
  run.head_dim = std::size_t(o.head_dim);
  const std::size_t S = run.seq_len, d = run.head_dim;
  std::vector<DType> dtypes;
  for (const auto& item : o.dtypes) {
    const auto t = parse_dtype(item);
    if (!t) usage_error(fmt::format("--dtypes: '{}' is not one of f32, f16, bf16", item));
    dtypes.push_back(*t);
  }
  if (dtypes.empty()) usage_error("--dtypes is empty: give at least one of f32, f16, bf16");
  const std::vector<Variant> vars = variants(o, run.notes);
  const std::vector<std::size_t> blocks(o.block_tokens.begin(), o.block_tokens.end());
  const SparQ sparq = perf::sparq_for(o.ratio, o.r, o.k, o.window);
  const std::size_t group = heads.q / heads.kv;
  run.params = sparq.resolve(d, S, group);  // validates k, r against S and d
  const Method sparq_method = sparq, dense_method = Dense{};

  run.machine = describe_machine();
  run.working_set = o.working_set.value_or(perf::default_working_set(run.machine));
  run.threads = o.threads ? std::size_t(o.threads) : std::max(1u, std::thread::hardware_concurrency());
  tbb::task_arena arena{static_cast<int>(run.threads)};
  perf::StopOnSigint stop;
  const std::size_t configs = dtypes.size() * vars.size() * blocks.size();
  perf::Progress progress(2 + configs * (1 + std::size_t(o.repeats)));
  progress.show("measuring read bandwidth");
  const ReadBandwidthMeter meter(std::size_t(o.bw_buffer.value_or(0)), run.threads);
  const ReadBandwidthOptions streaming{.thread_counts = {run.threads}};
  run.read_gb_per_s_before = meter.measure(streaming).samples.front().gb_per_s;
  progress.step("");

  // Every configuration's cache stays alive so that the timed calls can interleave.
  std::vector<ColdCaches> colds;
  std::vector<perf::Queries> queries;
  for (DType dt : dtypes)
    for (const Variant& var : vars)
      for (std::size_t B : blocks) {
        if (stop.stop_requested()) break;
        const std::string tag = fmt::format("{} {} B={}", to_string(dt), variant_name(var), B);
        CacheConfig config{.kv_heads = heads.kv,
                           .head_dim = d,
                           .dtype = dt,
                           .block_tokens = B,
                           .layouts = var.layout,
                           .d_major_type = var.d_major_type};
        // SparQ and dense alternate: at least 3 layers, an odd number.
        config.layers = rotation_layers(run.working_set, stored_bytes_per_layer(config, S), 3, 2);
        auto cold = build_cold_caches({.config = config, .seq_len = S}, [&](double f) {
          progress.show(fmt::format("{}: filling {:.0f}%", tag, f * 100));
          return !stop.stop_requested();
        });
        progress.step(tag);
        if (cold.layers == 0) break;
        Result res;
        res.dtype = dt;
        res.variant = var;
        res.block = B;
        // Per layer of the one sequence (all KV heads): the rotation's layer count varies
        // with the storage, the memory of one layer does not.
        res.memory = cold.cache->memory_usage();
        for (std::size_t* part : {&res.memory.k_s_major, &res.memory.k_d_major, &res.memory.values,
                                  &res.memory.metadata, &res.memory.blocks_in_use})
          *part /= cold.layers;
        res.kv_bytes = 2 * std::uint64_t(res.memory.values);  // K once + V (same size per block)
        const StorageModel storage{.layouts = var.layout, .d_major_type = var.d_major_type, .block_tokens = B};
        res.model_bytes = sparq_model_bytes(S, d, dt, run.params, group, storage) * heads.kv;
        queries.emplace_back(cold, heads.q, d, 99);
        Profile scratch;  // warm-up: first use of the arena, page tables
        (void)perf::timed_decode(cold, sparq_method, queries.back(), arena, scratch);
        (void)perf::timed_decode(cold, dense_method, queries.back(), arena, scratch);
        colds.push_back(std::move(cold));
        run.results.push_back(std::move(res));
      }
  for (std::int64_t rep = 0; rep < o.repeats && !stop.stop_requested(); ++rep)
    for (std::size_t i = 0; i < colds.size() && !stop.stop_requested(); ++i) {
      Result& res = run.results[i];
      res.sparq_times.push_back(perf::timed_decode(colds[i], sparq_method, queries[i], arena, res.sparq_profile));
      res.dense_times.push_back(perf::timed_decode(colds[i], dense_method, queries[i], arena, res.dense_profile));
      progress.step(fmt::format("repeat {}/{}", rep + 1, o.repeats));
    }
  run.interrupted = stop.stop_requested();
  if (!run.interrupted) {
    progress.show("measuring read bandwidth again");
    run.read_gb_per_s_after = meter.measure(streaming).samples.front().gb_per_s;
  }
  progress.finish();
  for (DType dt : dtypes) run.recommendations.push_back(recommend(run, dt));

  if (o.json)
    fmt::print("{}\n", to_json(o, run).dump(2));
  else if (o.csv)
    print_csv(run);
  else
    print_text(o, run);
  if (run.interrupted) {
    fmt::print(stderr, "sparq layouts: interrupted: printed what was measured so far\n");
    return perf::kExitInterrupted;
  }
  return kExitOk;
}

Action setup(CLI::App& cmd) {
  auto o = std::make_shared<LayoutsOptions>();
  cmd.footer(
      "Compares, on cold caches and in one interleaved run: key layouts (both: S-major K, V and a d-major K copy; "
      "fused: [B][key|value] rows and the d-major copy; s-major or d-major only), the d-major copy's element type "
      "(same as the cache, or int8 with per-block scales: half of stage 1's bytes), block sizes and element types. "
      "Per configuration: SparQ and dense median time, GB/s and % of the read bandwidth measured before the runs, "
      "stage 1/2 bytes and GB/s, memory of one layer; then a recommendation: the fastest SparQ whose dense is "
      "within 10% of the fastest dense and whose memory is at most the `both` layout's. All caches are kept at once "
      "(about configurations x --working-set of memory). Details: docs/roofline.md.");
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
  cmd.add_option("--layouts", o->layouts, "Key layouts to compare: both, s-major, d-major, fused")
      ->delimiter(',')
      ->capture_default_str();
  cmd.add_option("--d-major-types", o->d_major_types,
                 "Element types of the d-major copy to compare: same, int8 (int8 only with both or fused)")
      ->delimiter(',')
      ->capture_default_str();
  cmd.add_option("--block-tokens", o->block_tokens, "Block sizes to compare, e.g. 64,256,1024")
      ->delimiter(',')
      ->transform(size_in(1, 1 << 16))
      ->default_str("256");
  cmd.add_option("--ratio", o->ratio, "SparQ compression ratio c >= 1")
      ->check(number_at_least(1.0))
      ->capture_default_str();
  perf::add_sparq_overrides(cmd, o->r, o->k, o->window);
  cmd.add_option("--threads", o->threads, "Threads for the kernels (0: all hardware threads)")
      ->transform(integer_in(0, perf::kMaxThreads))
      ->capture_default_str();
  cmd.add_option("--repeats", o->repeats, "Timed calls per configuration (median reported)")
      ->transform(integer_in(1, perf::kMaxRepeats))
      ->capture_default_str();
  cmd.add_option("--working-set", o->working_set,
                 "Bytes each configuration's timed calls rotate over (cold data), e.g. 1G (default: far above the "
                 "last-level cache)")
      ->transform(size_in(1, 1ull << 40));
  cmd.add_option("--bw-buffer", o->bw_buffer, "Read-bandwidth buffer, e.g. 512M (default: 8x LLC within [256M, 1G])")
      ->transform(size_in(1ull << 20, 1ull << 40));
  auto* json = cmd.add_flag("--json", o->json, "Print JSON (fields listed in apps/sparq/layouts.cpp)");
  cmd.add_flag("--csv", o->csv, "Print the table as CSV with a header row")->excludes(json);
  return [o] { return run(*o); };
}

}  // namespace
}  // namespace layouts

Subcommand layouts_subcommand() {
  return {"layouts",
          "Compare key layouts (both, s-major, d-major, fused), int8 d-major copies and block sizes: time, GB/s, "
          "bytes, memory; recommend one",
          &layouts::setup};
}

}  // namespace sparq::cli
