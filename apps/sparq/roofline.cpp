// `sparq roofline`: how close dense and SparQ decode attention get to this machine's
// measured memory bandwidth, and what SparQ saves (DESIGN §2 "Profiler and roofline").
//
// 1. Measures the ceilings in this process: read bandwidth (sparq::measure_read_bandwidth,
//    for 1..threads), FMA peak (for `threads`).
// 2. For each S: fills a cache of random K/V with enough layers that the rotation's
//    working set is far above the last-level cache, then times dense and SparQ (per
//    ratio) interleaved, each call on the next layer (cold data); the profile counts the
//    bytes and FLOPs of every call.
// 3. Measures the read bandwidth again, and prints the table: median time, GB/s, % of
//    the read bandwidth measured before the runs, GFLOP/s, FLOP/byte, bytes moved (and
//    the DESIGN §1 model), speed-up and byte ratio against dense at the same S.
//
// --json fields: tool, config{...}, machine{cpu_model, cores, hardware_threads,
// numa_nodes, llc_bytes, llc_instances, isa, threads, read_buffer_bytes,
// read_bandwidth[{threads, gb_per_s, best_gb_per_s, worst_gb_per_s}],
// read_gb_per_s_before, read_gb_per_s_after, fma_peak_gflops, ridge_intensity},
// results[{seq_len, method, ratio, r, k, window, reallocation, layers, working_set_bytes,
// repeats, median_seconds, min_seconds, gb_per_s, bandwidth_fraction, gflops,
// intensity, bytes, model_bytes, flops, speedup_vs_dense, byte_ratio_vs_dense,
// phases{<phase>: {bytes, flops, seconds}}}], dense_vs_read_bandwidth{before, after},
// interrupted. Exit codes: 0, 2 (bad options; --plot without gnuplot), 1 (failure),
// 130 (Ctrl-C: what was measured is printed first).
#include "sparq/roofline.hpp"

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "perf_common.hpp"
#include "sparq/isa.hpp"
#include "sparq/machine.hpp"

namespace sparq::cli {
namespace {

struct RooflineOptions {
  std::vector<std::string> seq_lens{"4k", "16k", "64k"};
  std::string heads = "32/8";
  std::int64_t head_dim = 128;
  std::string dtype = "bf16";
  std::vector<double> ratios{8.0};
  std::optional<std::int64_t> r, k, window;
  std::string gqa = "shared";
  std::int64_t threads = 0;  // 0: all hardware threads
  std::int64_t batch = 1;
  std::int64_t repeats = 15;
  std::int64_t block_tokens = 256;
  std::string placement = "local";
  std::string working_set;  // "" = auto
  std::string bw_buffer;    // "" = auto
  bool json = false, csv = false;
  std::string plot;
};

struct Row {
  std::size_t seq_len = 0;
  std::string method;  // "dense" or "sparq"
  double ratio = 0.0;
  Method m;
  std::optional<SparQResolved> params;
  std::size_t layers = 0;
  std::uint64_t working_set = 0;
  std::vector<double> times;
  Profile profile;
  ModelCost model;
  // Filled by finish():
  RooflinePoint point;
  double speedup = 0.0, byte_ratio = 0.0;
  [[nodiscard]] std::string label() const { return method == "dense" ? "dense" : fmt::format("sparq c={:g}", ratio); }
};

struct Run {
  MachineInfo machine;
  ReadBandwidth bw_before;
  std::optional<BandwidthSample> bw_after;
  FmaPeak fma;
  Ceilings ceilings;
  std::size_t threads = 0;
  std::vector<Row> rows;
  bool interrupted = false;
};

std::uint64_t auto_working_set(const MachineInfo& m) {
  // Far above the last-level cache, and at least 3 layers (build_cold_cache). Virtual
  // machines may report the host's whole L3 for every core (here hwloc says 2 x 508 MiB
  // where one core's share measures ~32 MiB and the read bandwidth is flat from
  // 256 MiB up), so the default is capped at 512 MiB; --working-set overrides it.
  const std::uint64_t llc = std::uint64_t(m.llc_bytes) * std::max<std::size_t>(m.llc_instances, 1);
  return std::clamp<std::uint64_t>(4 * llc, 256ull << 20, 512ull << 20);
}

void check(const RooflineOptions& o) {
  if (o.json && o.csv) usage_error("--json and --csv are exclusive: choose one output format");
  if (o.head_dim < 1 || o.head_dim > 4096)
    usage_error(fmt::format("--head-dim={} is invalid: must be in [1, 4096]", o.head_dim));
  for (double c : o.ratios)
    if (!std::isfinite(c) || c < 1.0)
      usage_error(fmt::format("--ratio={} is invalid: the compression ratio must be a finite number >= 1", c));
  if (o.r && (*o.r < 1 || *o.r > o.head_dim))
    usage_error(fmt::format("--r={} is invalid: r must be in [1, head_dim={}]", *o.r, o.head_dim));
  if (o.k && *o.k < 1) usage_error(fmt::format("--k={} is invalid: k (positions fetched) must be at least 1", *o.k));
  if (o.window && *o.window < 0) usage_error(fmt::format("--window={} is negative: must be >= 0", *o.window));
  if (o.threads < 0 || o.threads > 4096)
    usage_error(fmt::format("--threads={} is invalid: must be in [1, 4096] (0 or omitted: all)", o.threads));
  if (o.batch < 1 || o.batch > 4096) usage_error(fmt::format("--batch={} is invalid: must be in [1, 4096]", o.batch));
  if (o.repeats < 1 || o.repeats > 100000)
    usage_error(fmt::format("--repeats={} is invalid: must be in [1, 100000]", o.repeats));
  if (o.block_tokens < 1 || o.block_tokens > (1 << 20))
    usage_error(fmt::format("--block-tokens={} is invalid: must be in [1, 1048576]", o.block_tokens));
  if (!o.plot.empty() && !perf::on_path("gnuplot"))
    usage_error("--plot needs gnuplot, which is not on PATH (Debian: apt-get install gnuplot-nox)");
}

Method make_sparq(const RooflineOptions& o, double ratio) {
  SparQ m = SparQ::for_ratio(ratio);
  if (o.r) m.r = std::size_t(*o.r);
  if (o.k) m.k = std::size_t(*o.k);
  if (o.window) m.window = std::size_t(*o.window);
  m.gqa = *parse_gqa_selection(o.gqa);
  return m;
}

// Speed-up and byte ratio against the dense row of the same S; roofline placement.
void finish(Run& run) {
  for (Row& row : run.rows) {
    const std::uint64_t calls = row.times.size();
    if (!calls) continue;
    row.point = roofline_point(row.profile, calls, run.ceilings, perf::median(row.times));
  }
  for (Row& row : run.rows) {
    for (const Row& d : run.rows)
      if (d.method == "dense" && d.seq_len == row.seq_len && !d.times.empty() && !row.times.empty()) {
        row.speedup = d.point.seconds / row.point.seconds;
        row.byte_ratio = row.point.bytes ? double(d.point.bytes) / double(row.point.bytes) : 0.0;
      }
  }
}

// Dense GB/s at the largest S measured, as a fraction of a bandwidth figure.
std::optional<double> dense_fraction(const Run& run, double gb_per_s) {
  const Row* best = nullptr;
  for (const Row& r : run.rows)
    if (r.method == "dense" && !r.times.empty() && (!best || r.seq_len > best->seq_len)) best = &r;
  if (!best || gb_per_s <= 0) return std::nullopt;
  return best->point.gb_per_s / gb_per_s;
}

nlohmann::json to_json(const RooflineOptions& o, const Run& run, const perf::Heads& heads) {
  nlohmann::json j;
  j["tool"] = "roofline";
  j["config"] = {
      {"q_heads", heads.q}, {"kv_heads", heads.kv}, {"head_dim", o.head_dim},         {"dtype", o.dtype},
      {"batch", o.batch},   {"repeats", o.repeats}, {"block_tokens", o.block_tokens}, {"placement", o.placement},
      {"gqa", o.gqa},       {"ratios", o.ratios}};
  auto bw = nlohmann::json::array();
  for (const auto& s : run.bw_before.samples)
    bw.push_back({{"threads", s.threads},
                  {"gb_per_s", s.gb_per_s},
                  {"best_gb_per_s", s.best_gb_per_s},
                  {"worst_gb_per_s", s.worst_gb_per_s}});
  const FmaSample* fma = run.fma.at(run.threads);
  j["machine"] = {{"cpu_model", run.machine.cpu_model},
                  {"cores", run.machine.cores},
                  {"hardware_threads", run.machine.hardware_threads},
                  {"numa_nodes", run.machine.numa_nodes},
                  {"llc_bytes", run.machine.llc_bytes},
                  {"llc_instances", run.machine.llc_instances},
                  {"isa", std::string(to_string(active_isa()))},
                  {"threads", run.threads},
                  {"read_buffer_bytes", run.bw_before.buffer_bytes},
                  {"read_bandwidth", bw},
                  {"read_gb_per_s_before", run.ceilings.read_gb_per_s},
                  {"read_gb_per_s_after", run.bw_after ? nlohmann::json(run.bw_after->gb_per_s) : nlohmann::json()},
                  {"fma_peak_gflops", fma ? fma->gflops : 0.0},
                  {"ridge_intensity", run.ceilings.ridge_intensity()}};
  auto results = nlohmann::json::array();
  for (const Row& r : run.rows) {
    if (r.times.empty()) continue;
    nlohmann::json phases = nlohmann::json::object();
    for (std::size_t p = 0; p < kPhaseCount; ++p) {
      const PhaseStats& s = r.profile.phases[p];
      if (!s.calls && !s.bytes_read) continue;
      const double n = double(r.times.size());
      phases[std::string(to_string(Phase(p)))] = {
          {"bytes", double(s.bytes_read) / n}, {"flops", double(s.flops) / n}, {"seconds", s.seconds / n}};
    }
    nlohmann::json row = {{"seq_len", r.seq_len},
                          {"method", r.method},
                          {"ratio", r.method == "dense" ? nlohmann::json() : nlohmann::json(r.ratio)},
                          {"layers", r.layers},
                          {"working_set_bytes", r.working_set},
                          {"repeats", r.times.size()},
                          {"median_seconds", r.point.seconds},
                          {"min_seconds", *std::min_element(r.times.begin(), r.times.end())},
                          {"gb_per_s", r.point.gb_per_s},
                          {"bandwidth_fraction", r.point.bandwidth_fraction},
                          {"gflops", r.point.gflops},
                          {"intensity", r.point.intensity},
                          {"bytes", r.point.bytes},
                          {"model_bytes", r.model.bytes},
                          {"flops", r.point.flops},
                          {"speedup_vs_dense", r.speedup},
                          {"byte_ratio_vs_dense", r.byte_ratio},
                          {"phases", phases}};
    if (r.params) {
      row["r"] = r.params->r;
      row["k"] = r.params->k;
      row["window"] = r.params->window;
      row["reallocation"] = r.params->reallocation;
    } else {
      for (const char* key : {"r", "k", "window", "reallocation"}) row[key] = nullptr;
    }
    results.push_back(row);
  }
  j["results"] = results;
  const auto before = dense_fraction(run, run.ceilings.read_gb_per_s);
  const auto after = run.bw_after ? dense_fraction(run, run.bw_after->gb_per_s) : std::nullopt;
  j["dense_vs_read_bandwidth"] = {{"before", before ? nlohmann::json(*before) : nlohmann::json()},
                                  {"after", after ? nlohmann::json(*after) : nlohmann::json()}};
  j["interrupted"] = run.interrupted;
  return j;
}

void print_csv(const Run& run) {
  fmt::print(
      "seq_len,method,ratio,r,k,window,median_ms,gb_per_s,pct_of_read_bw,gflops,flop_per_byte,bytes,"
      "model_bytes,speedup_vs_dense,byte_ratio_vs_dense\n");
  for (const Row& r : run.rows) {
    if (r.times.empty()) continue;
    fmt::print("{},{},{},{},{},{},{:.6f},{:.3f},{:.2f},{:.3f},{:.4f},{},{},{:.3f},{:.3f}\n", r.seq_len, r.method,
               r.params ? fmt::format("{:g}", r.ratio) : "", r.params ? fmt::format("{}", r.params->r) : "",
               r.params ? fmt::format("{}", r.params->k) : "", r.params ? fmt::format("{}", r.params->window) : "",
               r.point.seconds * 1e3, r.point.gb_per_s, r.point.bandwidth_fraction * 100, r.point.gflops,
               r.point.intensity, r.point.bytes, r.model.bytes, r.speedup, r.byte_ratio);
  }
}

void print_machine(const Run& run) {
  const MachineInfo& m = run.machine;
  fmt::print("machine\n");
  fmt::print("  cpu             {} ({} cores, {} hardware threads, {} NUMA node{})\n", m.cpu_model, m.cores,
             m.hardware_threads, m.numa_nodes, m.numa_nodes == 1 ? "" : "s");
  if (m.llc_bytes)
    fmt::print("  last-level      {} x L{} {} (hwloc)\n", m.llc_instances, m.llc_level,
               perf::human_bytes(double(m.llc_bytes)));
  fmt::print("  isa             {}\n", to_string(active_isa()));
  fmt::print("  threads         {}\n", run.threads);
  std::string bw;
  for (const auto& s : run.bw_before.samples)
    bw += fmt::format("{}{:.1f} GB/s ({} thr)", bw.empty() ? "" : ", ", s.gb_per_s, s.threads);
  fmt::print("  read bandwidth  {}   [sum over {}, median of passes, {}]\n", bw,
             perf::human_bytes(double(run.bw_before.buffer_bytes)), run.bw_before.pinned ? "pinned" : "not pinned");
  const FmaSample* fma = run.fma.at(run.threads);
  fmt::print("  FMA peak        {:.1f} GFLOP/s ({} thr, f32, {})\n", fma ? fma->gflops : 0.0, run.threads,
             to_string(run.fma.isa));
  fmt::print("  ridge point     {:.2f} FLOP/byte\n", run.ceilings.ridge_intensity());
}

void print_table(const RooflineOptions& o, const Run& run, const perf::Heads& heads) {
  std::size_t calls = 0;
  for (const Row& r : run.rows)
    if (!r.times.empty()) calls = calls ? std::min(calls, r.times.size()) : r.times.size();
  fmt::print("\nresults: one layer, {} query / {} KV heads, d={}, {}, batch {}; median of {} cold calls{}\n", heads.q,
             heads.kv, o.head_dim, o.dtype, o.batch, calls, run.interrupted ? " (interrupted)" : "");
  fmt::print("{:>6}  {:<12} {:>10} {:>8} {:>6} {:>8} {:>7} {:>11} {:>7} {:>8} {:>8}\n", "S", "method", "time", "GB/s",
             "%BW", "GFLOP/s", "FLOP/B", "bytes", "model", "speedup", "bytes/x");
  for (const Row& r : run.rows) {
    if (r.times.empty()) continue;
    const double model_ratio = r.model.bytes ? double(r.point.bytes) / double(r.model.bytes) : 0.0;
    fmt::print("{:>6}  {:<12} {:>7.3f} ms {:>8.1f} {:>5.0f}% {:>8.2f} {:>7.3f} {:>11} {:>6.3f}x {:>7.2f}x {:>7.2f}x\n",
               perf::count_label(r.seq_len), r.label(), r.point.seconds * 1e3, r.point.gb_per_s,
               r.point.bandwidth_fraction * 100, r.point.gflops, r.point.intensity,
               perf::human_bytes(double(r.point.bytes)), model_ratio, r.speedup, r.byte_ratio);
  }
  fmt::print(
      "(model: bytes counted / DESIGN §1 transfer model; speedup and bytes/x: dense at the same S over this "
      "row)\n");
  if (run.bw_after) {
    const auto before = dense_fraction(run, run.ceilings.read_gb_per_s);
    const auto after = dense_fraction(run, run.bw_after->gb_per_s);
    fmt::print("\nread bandwidth after the runs: {:.1f} GB/s ({} thr)", run.bw_after->gb_per_s, run.threads);
    if (before && after)
      fmt::print("; dense at the largest S reached {:.0f}% of the bandwidth before, {:.0f}% after", *before * 100,
                 *after * 100);
    fmt::print("\n");
  }
}

void write_plot(const std::string& file, const RooflineOptions& o, const Run& run, const perf::Heads& heads) {
  double lo = 1e9, hi = 0;
  for (const Row& r : run.rows)
    if (!r.times.empty() && r.point.intensity > 0) {
      lo = std::min(lo, r.point.intensity);
      hi = std::max(hi, r.point.intensity);
    }
  const double ridge = run.ceilings.ridge_intensity();
  lo = std::min(lo, ridge) / 4;
  hi = std::max(hi, ridge) * 4;
  const auto esc = [](const std::string& s) {
    std::string out;
    for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out;
  };
  std::string script;
  script += fmt::format("set terminal svg size 900,600 dynamic font 'sans,12' background '#ffffff'\n");
  script += fmt::format("set output '{}'\n", esc(file));
  script += fmt::format("set title '{} — {} thr, {} query / {} KV heads, d={}, {}' noenhanced\n",
                        esc(run.machine.cpu_model), run.threads, heads.q, heads.kv, o.head_dim, o.dtype);
  script += "set logscale xy\nset grid\nset key left top noenhanced\n";
  script += "set xlabel 'arithmetic intensity (FLOP/byte)'\nset ylabel 'GFLOP/s'\n";
  script += fmt::format("bw = {}\npeak = {}\nroof(x) = x * bw < peak ? x * bw : peak\n", run.ceilings.read_gb_per_s,
                        run.ceilings.peak_gflops);
  script += fmt::format("set xrange [{}:{}]\nset samples 400\n", lo, hi);
  std::string dense, sparq;
  for (const Row& r : run.rows) {
    if (r.times.empty()) continue;
    (r.method == "dense" ? dense : sparq) +=
        fmt::format("{} {} \"{} S={}\"\n", r.point.intensity, r.point.gflops, r.label(), perf::count_label(r.seq_len));
  }
  script += "$dense << EOD\n" + (dense.empty() ? "1e-9 1e-9 \"\"\n" : dense) + "EOD\n";
  script += "$sparq << EOD\n" + (sparq.empty() ? "1e-9 1e-9 \"\"\n" : sparq) + "EOD\n";
  script += fmt::format(
      "plot roof(x) with lines lw 2 lc rgb '#444444' title sprintf('roofline: read %.1f GB/s, FMA %.0f GFLOP/s', bw, "
      "peak), \\\n"
      "  $dense using 1:2 with points pt 7 ps 1.3 lc rgb '#d62728' title 'dense', \\\n"
      "  $dense using 1:2:3 with labels left offset 1,0 font 'sans,9' notitle, \\\n"
      "  $sparq using 1:2 with points pt 5 ps 1.3 lc rgb '#1f77b4' title 'SparQ', \\\n"
      "  $sparq using 1:2:3 with labels left offset 1,0 font 'sans,9' notitle\n");
  FILE* gp = popen("gnuplot", "w");
  if (!gp) throw Error(ErrorCode::io_error, "--plot: cannot start gnuplot");
  std::fwrite(script.data(), 1, script.size(), gp);
  const int status = pclose(gp);
  if (status != 0)
    throw Error(ErrorCode::io_error, fmt::format("--plot: gnuplot failed writing {} (status {})", file, status));
}

int run(const RooflineOptions& o) {
  check(o);
  const perf::Heads heads = perf::parse_heads(o.heads);
  const auto seq_lens = perf::parse_count_list(o.seq_lens, "--seq-lens");
  for (auto s : seq_lens)
    if (s > (1ull << 30)) usage_error(fmt::format("--seq-lens: {} is too long: at most 1G positions", s));
  const DType dtype = *parse_dtype(o.dtype);
  const Placement placement = *parse_placement(o.placement);
  const auto d = std::size_t(o.head_dim);
  const std::size_t group = heads.q / heads.kv;
  const ModelShape shape{.layers = 1, .q_heads = heads.q, .kv_heads = heads.kv, .head_dim = d};
  // Resolve (and so validate) every method for every S before measuring anything.
  std::vector<Method> methods{Dense{}};
  for (double c : o.ratios) methods.push_back(make_sparq(o, c));
  for (auto s : seq_lens)
    for (const Method& m : methods)
      if (const auto* sp = std::get_if<SparQ>(&m)) (void)sp->resolve(d, s, group);
  const std::uint64_t bw_buffer = o.bw_buffer.empty() ? 0 : perf::parse_count(o.bw_buffer, "--bw-buffer");
  if (!o.bw_buffer.empty() && bw_buffer < (1ull << 20))
    usage_error(fmt::format("--bw-buffer={} is too small: at least 1M (bytes, binary suffixes)", o.bw_buffer));
  std::uint64_t working_set = o.working_set.empty() ? 0 : perf::parse_count(o.working_set, "--working-set");

  Run run;
  run.machine = describe_machine();
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
  if (!working_set) working_set = auto_working_set(run.machine);

  tbb::task_arena arena{static_cast<int>(run.threads)};
  const CacheConfig base{.kv_heads = heads.kv,
                         .head_dim = d,
                         .dtype = dtype,
                         .block_tokens = std::size_t(o.block_tokens),
                         .layouts = KeyLayout::both,
                         .placement = placement};
  for (std::size_t si = 0; si < seq_lens.size() && !stop.stop_requested(); ++si) {
    const std::size_t S = seq_lens[si];
    const std::string tag = fmt::format("S={}", perf::count_label(S));
    auto cold = perf::build_cold_cache(base, S, std::size_t(o.batch), working_set, methods.size(),
                                       std::uint32_t(17 + si), [&](double f) {
                                         progress.show(fmt::format("{}: filling the cache {:.0f}%", tag, f * 100));
                                         return !stop.stop_requested();
                                       });
    progress.step(tag);
    if (cold.layers == 0) break;
    const perf::Queries queries(cold, heads.q, d, std::uint32_t(1000 + si));
    const std::size_t first = run.rows.size();
    for (std::size_t mi = 0; mi < methods.size(); ++mi) {
      Row row;
      row.seq_len = S;
      row.m = methods[mi];
      row.method = mi == 0 ? "dense" : "sparq";
      row.ratio = mi == 0 ? 0.0 : o.ratios[mi - 1];
      if (const auto* sp = std::get_if<SparQ>(&row.m)) row.params = sp->resolve(d, S, group);
      row.layers = cold.layers;
      row.working_set = perf::stored_bytes_per_layer(cold.cache->config(), S) * o.batch * cold.layers;
      row.model = model_cost(row.m, shape, S, dtype, std::size_t(o.batch));
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
    progress.show("measuring read bandwidth again");
    run.bw_after = meter.measure({.thread_counts = {run.threads}}).samples.front();
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
  }
  if (!o.plot.empty()) write_plot(o.plot, o, run, heads);
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
      ->capture_default_str();
  cmd.add_option("--heads", o->heads, "Query/KV heads, e.g. 32/8 (GQA) or 16 (MHA)")->capture_default_str();
  cmd.add_option("--head-dim", o->head_dim, "Head dimension d")->capture_default_str();
  cmd.add_option("--dtype", o->dtype, "Storage type of the cached K/V")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}))
      ->capture_default_str();
  cmd.add_option("--ratio", o->ratios, "SparQ compression ratio(s) c >= 1, e.g. 4,8,16")
      ->delimiter(',')
      ->capture_default_str();
  cmd.add_option("--r", o->r, "SparQ query components kept, 1 <= r <= d (overrides the ratio)");
  cmd.add_option("--k", o->k, "SparQ positions fetched, k >= 1 (overrides the ratio)");
  cmd.add_option("--window", o->window, "SparQ local window l >= 0 (default k/4)");
  cmd.add_option("--gqa", o->gqa, "SparQ GQA selection")
      ->check(CLI::IsMember({"shared", "per-head"}))
      ->capture_default_str();
  cmd.add_option("--threads", o->threads, "Threads for the kernels and the ceilings (default: all)");
  cmd.add_option("--batch", o->batch, "Sequences per decode call")->capture_default_str();
  cmd.add_option("--repeats", o->repeats, "Timed calls per method and S (median reported)")->capture_default_str();
  cmd.add_option("--block-tokens", o->block_tokens, "Tokens per cache block")->capture_default_str();
  cmd.add_option("--placement", o->placement, "NUMA placement of the cache blocks")
      ->check(CLI::IsMember({"local", "interleave", "by-head"}))
      ->capture_default_str();
  cmd.add_option("--working-set", o->working_set,
                 "Bytes the timed calls rotate over, e.g. 1G (default: far above the last-level cache)");
  cmd.add_option("--bw-buffer", o->bw_buffer, "Read-bandwidth buffer, e.g. 512M (default: 8x LLC within [256M, 1G])");
  auto* json = cmd.add_flag("--json", o->json, "Print JSON (fields listed in apps/sparq/roofline.cpp)");
  cmd.add_flag("--csv", o->csv, "Print the table as CSV with a header row")->excludes(json);
  cmd.add_option("--plot", o->plot, "Also write a roofline chart (SVG, needs gnuplot)");
  return [o] { return run(*o); };
}

}  // namespace

Subcommand roofline_subcommand() {
  return {"roofline", "Measure memory bandwidth and FMA peak, then place dense and SparQ decode on the roofline",
          &setup};
}

}  // namespace sparq::cli
