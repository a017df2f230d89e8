// `sparq roofline`: how close dense and SparQ decode attention get to this machine's
// measured memory bandwidth, and what SparQ saves (DESIGN §2 "Profiler and roofline").
//
// 1. Measures the ceilings in this process: read bandwidth (sparq::measure_read_bandwidth,
//    for 1..threads), FMA peak (for `threads`).
// 2. For each S: fills a cache of random K/V with enough layers that the rotation's
//    working set is far above the last-level cache, then times dense and SparQ (per
//    ratio) interleaved, each call on the next layer (cold data); the profile counts the
//    bytes and FLOPs of every call.
//    Before timing, finds where the cache's pages are: per NUMA node, layer 0 of the
//    batch as the OS placed it (resident_bytes_by_node), and the --placement model
//    (node_byte_shares); each row's bytes are split over the nodes by the measured share.
// 3. Measures the bandwidth of each SparQ row's two scattered access patterns (stage 1:
//    runs of a key component over a head's blocks laid side by side in the d-major
//    area, int8 with --d-major-type int8; stage 2: rows of head_dim elements in each
//    block's K and V, or one run of key and value per position with --layout fused; as
//    many as the profile counted; floor_pattern() in roofline_run.hpp): a
//    row's floor is its phases' bytes at the bandwidth of their pattern, SparQ's
//    speed-up bound dense's floor over its own. The streaming read bandwidth is measured
//    right before and right after the patterns; the set is measured again (up to 3
//    times) when those two differ by more than 10%, and flagged when they never agree.
// 4. Prints the table: median time, GB/s, % of
//    the read bandwidth measured before the runs, GFLOP/s, FLOP/byte, bytes moved (and
//    the DESIGN §1 model), speed-up and byte ratio against dense at the same S; then
//    the placement section (share and bytes per node). The reports are in
//    roofline_report.cpp, the structs they share in roofline_run.hpp.
//
// --json fields: tool, config{...}, machine{cpu_model, cores, hardware_threads,
// numa_nodes, llc_bytes, llc_instances, isa, threads, read_buffer_bytes,
// read_bandwidth[{threads, gb_per_s, best_gb_per_s, worst_gb_per_s}],
// read_gb_per_s_before, read_gb_per_s_after, fma_peak_gflops, ridge_intensity},
// results[{seq_len, method, ratio, r, k, window, reallocation, layers, working_set_bytes,
// repeats, median_seconds, min_seconds, gb_per_s, bandwidth_fraction, gflops,
// intensity, bytes, model_bytes, flops, speedup_vs_dense, byte_ratio_vs_dense,
// phases{<phase>: {bytes, flops, seconds}}, scattered_read[{what, run_bytes,
// runs_per_block, region_bytes, block_stride_bytes, gb_per_s}] (SparQ rows), floor_seconds, floor_fraction (floor /
// median), speedup_bound (null for dense), bytes_per_node[], resident_share[],
// model_share[]}], placement{policy, numa_nodes, node_os_index[],
// seq_lens[{seq_len, local_node, resident_bytes[], resident_share[], model_share[]}]},
// dense_vs_read_bandwidth{before, after}, floor_ceilings{streaming_before_gb_per_s,
// streaming_after_gb_per_s (= read_gb_per_s_after), attempts, steady}, interrupted. Per-node arrays follow the node
// order of Topology::this_system() (`sparq info`); bytes_per_node = bytes x
// resident_share (the model's share when the OS cannot say where pages are: then
// resident_share is null). Exit codes: 0, 2 (bad options; --plot without gnuplot),
// 1 (failure), 130 (Ctrl-C: what was measured is printed first).
#include "sparq/tools/roofline.hpp"

#include <fmt/core.h>
#include <sched.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cli.hpp"
#include "gnuplot.hpp"
#include "options.hpp"
#include "perf_common.hpp"
#include "roofline_run.hpp"
#include "sparq/tools/cold_caches.hpp"
#include "sparq/tools/machine.hpp"
#include "sparq/tools/residency.hpp"
#include "sparq/topology.hpp"

namespace sparq::cli {
namespace roofline {
namespace {

// What the options' own ranges (setup()) cannot check. Returns gnuplot's path for --plot.
std::string check(const RooflineOptions& o) {
  perf::check_r(o.r, o.head_dim);
  return o.plot.empty() ? std::string() : require_gnuplot("--plot");
}

Method make_sparq(const RooflineOptions& o, double ratio) {
  SparQ m = perf::sparq_for(ratio, o.r, o.k, o.window);
  m.gqa = *parse_gqa_selection(o.gqa);
  return m;
}

// The node (index into Topology::this_system().nodes) of the CPU this thread runs on;
// 0 when the OS or the topology cannot say. The thread may move afterwards: this is
// where it was, for the model's "local" node, not a guarantee.
std::size_t current_node() {
  const Topology& topo = Topology::this_system();
  unsigned cpu = 0, node = 0;
  if (!topo.is_this_system() || getcpu(&cpu, &node) != 0) return 0;
  const std::size_t i = topo.node_by_os_index(node);
  return i < topo.nodes.size() ? i : 0;
}

// Where the cache of one S lives: layer 0 of every sequence (all KV heads) from the
// OS's page locations, and the policy's model. Layer 0 stands for all layers: they are
// filled the same way by the same thread. O(pages) system calls, before any timing.
NodePlacement locate(const ColdCaches& cold, Placement placement, std::size_t kv_heads) {
  const Topology& topo = Topology::this_system();
  NodePlacement p;
  p.seq_len = cold.seq_len;
  p.resident_bytes.assign(topo.nodes.size(), 0);
  for (const SeqId seq : cold.seqs) {
    const std::vector<std::uint64_t> b = resident_bytes_by_node(*cold.cache, seq, 0);
    for (std::size_t n = 0; n < b.size() && n < p.resident_bytes.size(); ++n) p.resident_bytes[n] += b[n];
  }
  const std::uint64_t total = std::accumulate(p.resident_bytes.begin(), p.resident_bytes.end(), std::uint64_t{0});
  if (total)
    for (const std::uint64_t b : p.resident_bytes) p.resident_share.push_back(double(b) / double(total));
  p.local_node = current_node();
  p.model_share = node_byte_shares(topo, placement, kv_heads, 0, kv_heads, p.local_node);
  return p;
}

// Mean length in bytes of the runs SparQ stage 1 reads in this cache: one key component
// over a KV head's consecutive blocks, which the cache lays side by side in its slabs'
// d-major areas (BlockPool::d_major); 0 without d-major copies.
std::size_t d_major_run_bytes(const ColdCaches& cold) {
  const LayerView v = cold.cache->view(cold.seqs.front(), 0);
  if (!has_d_major(v.layouts) || v.blocks_per_head == 0) return 0;
  const std::size_t run = v.block_tokens * v.d_major_bytes();
  std::size_t runs = 1;
  for (std::size_t b = 0; b + 1 < v.blocks_per_head; ++b)
    runs += v.key_block_d_major(0, b + 1) != v.key_block_d_major(0, b) + run;
  return v.blocks_per_head * run / runs;
}

// The read bandwidth of each SparQ row's two scattered patterns (floor_pattern();
// identical patterns measured once), runs per group from the bytes the profile counted.
void measure_scattered(Run& run, const ReadBandwidthMeter& meter, const CacheConfig& config, std::size_t batch) {
  std::map<ScatteredPattern, double> measured;
  for (Row& row : run.rows) row.scattered.clear();
  for (Row& row : run.rows) {
    if (row.method == "dense" || row.times.empty() || !row.layers) continue;
    const std::size_t blocks =
        config.kv_heads * batch * ((row.seq_len + config.block_tokens - 1) / config.block_tokens);
    const FloorGeometry g{
        .seq_len = row.seq_len,
        .head_dim = config.head_dim,
        .kv_heads = config.kv_heads,
        .batch = batch,
        .block_tokens = config.block_tokens,
        .elem = size_of(config.dtype),
        .d_major_elem = row.d_major_elem,
        .layouts = config.layouts,
        .d_major_run_bytes = row.d_major_run_bytes,
        .block_stride = std::size_t(double(row.working_set) / double(row.layers) / double(blocks)) / 64 * 64};
    for (const Phase phase : {Phase::stage1, Phase::stage2}) {
      const double per_call = double(row.profile[phase].bytes_read) / double(row.times.size());
      const std::optional<ScatteredPattern> p = floor_pattern(phase, g, per_call);
      if (!p) continue;
      auto it = measured.find(*p);
      if (it == measured.end())
        it = measured
                 .emplace(*p, meter.measure({.thread_counts = {run.threads}, .scattered = *p}).samples.front().gb_per_s)
                 .first;
      row.scattered.push_back({phase, *p, it->second});
    }
  }
}

// The floor's ceilings, measured together: streaming, SparQ's scattered patterns,
// streaming again. This VM can switch between bandwidth modes (about 2x apart) within
// seconds, and a bound from ceilings of different modes is off by that factor (5.45x
// once, against 2.0-2.8x otherwise), so a set whose two streaming figures differ by more
// than kSteadyTolerance is measured again, up to kFloorAttempts times; the last set is
// kept and flagged when it never held still.
void measure_floor_ceilings(Run& run, const ReadBandwidthMeter& meter, const CacheConfig& config, std::size_t batch,
                            perf::Progress& progress, const perf::StopOnSigint& stop) {
  const ReadBandwidthOptions streaming{.thread_counts = {run.threads}};
  FloorCeilings& f = run.floor_ceilings;
  for (f.attempts = 1; f.attempts <= kFloorAttempts; ++f.attempts) {
    progress.show(fmt::format("measuring the floor's ceilings{}",
                              f.attempts > 1 ? fmt::format(" again (attempt {})", f.attempts) : ""));
    f.streaming_before_gb_per_s = meter.measure(streaming).samples.front().gb_per_s;
    measure_scattered(run, meter, config, batch);
    run.bw_after = meter.measure(streaming).samples.front();
    if (run.floor_steady() || f.attempts == kFloorAttempts || stop.stop_requested()) break;
  }
}

// Speed-up and byte ratio against the dense row of the same S; roofline placement;
// bytes per node.
void finish(Run& run) {
  for (Row& row : run.rows) {
    const std::uint64_t calls = row.times.size();
    if (!calls) continue;
    row.point = roofline_point(row.profile, calls, run.ceilings, perf::median(row.times));
    if (const NodePlacement* p = run.placement_at(row.seq_len))
      for (const double share : p->share()) row.bytes_per_node.push_back(double(row.point.bytes) * share);
    for (std::size_t p = 0; p < kPhaseCount; ++p)
      if (const double gb = row.phase_gb_per_s(Phase(p), run.floor_streaming_gb_per_s()); gb > 0)
        row.floor_seconds += double(row.profile.phases[p].bytes_read) / double(calls) / (gb * 1e9);
  }
  for (Row& row : run.rows) {
    for (const Row& d : run.rows)
      if (d.method == "dense" && d.seq_len == row.seq_len && !d.times.empty() && !row.times.empty()) {
        row.speedup = d.point.seconds / row.point.seconds;
        row.byte_ratio = row.point.bytes ? double(d.point.bytes) / double(row.point.bytes) : 0.0;
        if (row.method != "dense" && row.floor_seconds > 0) row.speedup_bound = d.floor_seconds / row.floor_seconds;
      }
  }
}

int run(const RooflineOptions& o) {
  const std::string gnuplot = check(o);
  const perf::Heads heads = perf::parse_heads(o.heads);
  const std::vector<std::uint64_t>& seq_lens = o.seq_lens;
  const DType dtype = *parse_dtype(o.dtype);
  const Placement placement = *parse_placement(o.placement);
  const KeyLayout layout = *parse_key_layout(o.layout);
  const DMajorType d_major_type = *parse_d_major_type(o.d_major_type);
  const StorageModel storage{
      .layouts = layout, .d_major_type = d_major_type, .block_tokens = std::size_t(o.block_tokens)};
  const auto d = std::size_t(o.head_dim);
  const std::size_t group = heads.q / heads.kv;
  const ModelShape shape{.layers = 1, .q_heads = heads.q, .kv_heads = heads.kv, .head_dim = d};
  // Resolve (and so validate) every method for every S before measuring anything.
  std::vector<Method> methods{Dense{}};
  for (double c : o.ratios) methods.push_back(make_sparq(o, c));
  for (auto s : seq_lens)
    for (const Method& m : methods)
      if (const auto* sp = std::get_if<SparQ>(&m)) (void)sp->resolve(d, s, group);
  const std::uint64_t bw_buffer = o.bw_buffer.value_or(0);  // 0: the meter's default
  std::uint64_t working_set = o.working_set.value_or(0);

  Run run;
  run.machine = describe_machine();
  run.placement = placement;
  for (const NumaNodeInfo& n : Topology::this_system().nodes) run.node_os_index.push_back(n.os_index);
  run.threads = o.threads ? std::size_t(o.threads) : run.machine.hardware_threads;
  perf::StopOnSigint stop;

  // Ceilings first, in this process, right before the runs; the read buffer is kept
  // for the measurement after them.
  std::size_t steps = 3 + seq_lens.size() * (1 + std::size_t(o.repeats));
  perf::Progress progress(steps);
  progress.show("allocating the read-bandwidth buffer");
  const ReadBandwidthMeter meter(std::size_t(bw_buffer), run.threads);
  progress.step("measuring read bandwidth");
  ReadBandwidthOptions bw_options;
  for (std::size_t t = 1; t <= run.threads; ++t) bw_options.thread_counts.push_back(t);
  run.bw_before = meter.measure(bw_options);
  progress.step("measuring FMA peak");
  run.fma = measure_fma_peak({.thread_counts = {run.threads}});
  progress.step("");
  run.ceilings = {.read_gb_per_s = run.bw_before.at(run.threads)->gb_per_s,
                  .peak_gflops = run.fma.at(run.threads)->gflops,
                  .threads = run.threads};
  if (!working_set) working_set = perf::default_working_set(run.machine);

  tbb::task_arena arena{static_cast<int>(run.threads)};
  const CacheConfig base{.kv_heads = heads.kv,
                         .head_dim = d,
                         .dtype = dtype,
                         .block_tokens = std::size_t(o.block_tokens),
                         .layouts = layout,
                         .d_major_type = d_major_type,
                         .placement = placement};
  for (std::size_t si = 0; si < seq_lens.size() && !stop.stop_requested(); ++si) {
    const std::size_t S = seq_lens[si];
    const std::string tag = fmt::format("S={}", size_label(S));
    CacheConfig config = base;
    // At least 3 layers, and every method visits every layer of the rotation.
    config.layers =
        rotation_layers(working_set, stored_bytes_per_layer(base, S) * std::uint64_t(o.batch), 3, methods.size());
    auto cold = build_cold_caches({.config = config, .seq_len = S, .batch = std::size_t(o.batch)}, [&](double f) {
      progress.show(fmt::format("{}: filling the cache {:.0f}%", tag, f * 100));
      return !stop.stop_requested();
    });
    progress.step(tag);
    if (cold.layers == 0) break;
    progress.show(fmt::format("{}: locating the cache's pages", tag));
    run.placements.push_back(locate(cold, placement, heads.kv));
    const perf::Queries queries(cold, heads.q, d, std::uint32_t(1000 + si));
    const std::size_t run_bytes = d_major_run_bytes(cold);
    const std::size_t first = run.rows.size();
    for (std::size_t mi = 0; mi < methods.size(); ++mi) {
      Row row;
      row.seq_len = S;
      row.m = methods[mi];
      row.method = mi == 0 ? "dense" : "sparq";
      row.ratio = mi == 0 ? 0.0 : o.ratios[mi - 1];
      if (const auto* sp = std::get_if<SparQ>(&row.m)) row.params = sp->resolve(d, S, group);
      row.layers = cold.layers;
      row.working_set = stored_bytes_per_layer(cold.cache->config(), S) * o.batch * cold.layers;
      row.d_major_run_bytes = run_bytes;
      row.d_major_elem = d_major_type == DMajorType::int8 ? 1 : size_of(dtype);
      row.model = model_cost(row.m, shape, S, dtype, std::size_t(o.batch), storage);
      run.rows.push_back(std::move(row));
    }
    // Warm-up: one untimed call per method (first use of the arena, page tables).
    for (const Method& m : methods) {
      Profile scratch;
      (void)perf::timed_decode(cold, m, queries, arena, scratch);
    }
    // Interleaved: each repeat calls every method once, each call on the next layer.
    for (std::int64_t rep = 0; rep < o.repeats && !stop.stop_requested(); ++rep) {
      for (std::size_t mi = 0; mi < methods.size() && !stop.stop_requested(); ++mi) {
        Row& row = run.rows[first + mi];
        row.times.push_back(perf::timed_decode(cold, methods[mi], queries, arena, row.profile));
      }
      progress.step(fmt::format("{}: repeat {}/{}", tag, rep + 1, o.repeats));
    }
  }
  run.interrupted = stop.stop_requested();
  if (!run.interrupted) {
    measure_floor_ceilings(run, meter, base, std::size_t(o.batch), progress, stop);
  }
  progress.finish();
  finish(run);

  if (o.json)
    fmt::print("{}\n", to_json(o, run, heads).dump(2));
  else if (o.csv)
    print_csv(run);
  else {
    print_machine(run);
    print_table(o, run, heads);
    print_floors(run);
    print_placement(run);
  }
  if (!o.plot.empty()) write_plot(gnuplot, o.plot, o, run, heads);
  if (run.interrupted) {
    fmt::print(stderr, "sparq roofline: interrupted: printed what was measured so far\n");
    return perf::kExitInterrupted;
  }
  return kExitOk;
}

Action setup(CLI::App& cmd) {
  auto o = std::make_shared<RooflineOptions>();
  cmd.add_option("--seq-lens", o->seq_lens, "Cache lengths S, e.g. 4k,16k,64k (k = 1024, M = 1048576)")
      ->delimiter(',')
      ->transform(size_in(1, 1ull << 30))
      ->default_str("4k,16k,64k");
  cmd.add_option("--heads", o->heads, "Query/KV heads, e.g. 32/8 (GQA) or 16 (MHA)")->capture_default_str();
  cmd.add_option("--head-dim", o->head_dim, "Head dimension d")
      ->transform(integer_in(1, perf::kMaxHeadDim))
      ->capture_default_str();
  cmd.add_option("--dtype", o->dtype, "Storage type of the cached K/V")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}))
      ->capture_default_str();
  cmd.add_option("--ratio", o->ratios, "SparQ compression ratio(s) c >= 1, e.g. 4,8,16")
      ->delimiter(',')
      ->check(number_at_least(1.0))
      ->capture_default_str();
  perf::add_sparq_overrides(cmd, o->r, o->k, o->window);
  cmd.add_option("--gqa", o->gqa, "SparQ GQA selection")
      ->check(CLI::IsMember({"shared", "per-head"}))
      ->capture_default_str();
  cmd.add_option("--threads", o->threads, "Threads for the kernels and the ceilings (0: all hardware threads)")
      ->transform(integer_in(0, perf::kMaxThreads))
      ->capture_default_str();
  cmd.add_option("--batch", o->batch, "Sequences per decode call")
      ->transform(integer_in(1, 4096))
      ->capture_default_str();
  cmd.add_option("--repeats", o->repeats, "Timed calls per method and S (median reported)")
      ->transform(integer_in(1, perf::kMaxRepeats))
      ->capture_default_str();
  cmd.add_option("--block-tokens", o->block_tokens, "Tokens per cache block")
      ->transform(integer_in(1, 1 << 16))
      ->capture_default_str();
  add_storage_options(cmd, o->layout, o->d_major_type, {"both", "fused"});
  cmd.add_option("--placement", o->placement, "NUMA placement of the cache blocks")
      ->check(CLI::IsMember({"local", "interleave", "by-head"}))
      ->capture_default_str();
  cmd.add_option("--working-set", o->working_set,
                 "Bytes the timed calls rotate over, e.g. 1G (default: far above the last-level cache)")
      ->transform(size_in(1, 1ull << 40));
  cmd.add_option("--bw-buffer", o->bw_buffer, "Read-bandwidth buffer, e.g. 512M (default: 8x LLC within [256M, 1G])")
      ->transform(size_in(1ull << 20, 1ull << 40));
  auto* json = cmd.add_flag("--json", o->json, "Print JSON (fields listed in apps/sparq/roofline.cpp)");
  cmd.add_flag("--csv", o->csv, "Print the table as CSV with a header row")->excludes(json);
  cmd.add_option("--plot", o->plot, "Also write a roofline chart (SVG, needs gnuplot)");
  return [o] { return run(*o); };
}

}  // namespace
}  // namespace roofline

Subcommand roofline_subcommand() {
  return {"roofline", "Measure memory bandwidth and FMA peak, then place dense and SparQ decode on the roofline",
          &roofline::setup};
}

}  // namespace sparq::cli
