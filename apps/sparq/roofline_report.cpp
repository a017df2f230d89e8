// `sparq roofline`'s reports of a finished Run: the machine and results tables, the
// placement section (bytes per NUMA node), CSV, JSON (fields listed in roofline.cpp) and
// the gnuplot chart.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gnuplot.hpp"
#include "options.hpp"
#include "roofline_run.hpp"
#include "sparq/isa.hpp"

namespace sparq::cli::roofline {
namespace {

// Dense GB/s at the largest S measured, as a fraction of a bandwidth figure.
std::optional<double> dense_fraction(const Run& run, double gb_per_s) {
  const Row* best = nullptr;
  for (const Row& r : run.rows)
    if (r.method == "dense" && !r.times.empty() && (!best || r.seq_len > best->seq_len)) best = &r;
  if (!best || gb_per_s <= 0) return std::nullopt;
  return best->point.gb_per_s / gb_per_s;
}

// A vector of doubles as JSON, or null when empty (a share the OS could not give).
nlohmann::json array_or_null(const std::vector<double>& v) {
  return v.empty() ? nlohmann::json() : nlohmann::json(v);
}

// Whole bytes for JSON and CSV: the split of an integer byte count by shares.
std::vector<double> rounded(const std::vector<double>& v) {
  std::vector<double> out;
  for (const double x : v) out.push_back(std::round(x));
  return out;
}

}  // namespace

nlohmann::json to_json(const RooflineOptions& o, const Run& run, const perf::Heads& heads) {
  nlohmann::json j;
  j["tool"] = "roofline";
  j["config"] = {{"q_heads", heads.q},
                 {"kv_heads", heads.kv},
                 {"head_dim", o.head_dim},
                 {"dtype", o.dtype},
                 {"batch", o.batch},
                 {"repeats", o.repeats},
                 {"block_tokens", o.block_tokens},
                 {"placement", o.placement},
                 {"gqa", o.gqa},
                 {"ratios", o.ratios},
                 {"layout", o.layout},
                 {"d_major_type", o.d_major_type}};
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
    auto scattered = nlohmann::json::array();
    for (const ScatteredCeiling& c : r.scattered)
      scattered.push_back({{"what", std::string(to_string(c.phase))},
                           {"run_bytes", c.pattern.run_bytes},
                           {"runs_per_block", c.pattern.runs_per_group},
                           {"region_bytes", c.pattern.group_bytes},
                           {"block_stride_bytes", c.pattern.group_stride_bytes},
                           {"gb_per_s", c.gb_per_s}});
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
                          {"phases", phases},
                          {"scattered_read", scattered},
                          {"floor_seconds", r.floor_seconds},
                          {"floor_fraction", r.floor_fraction()},
                          {"speedup_bound", r.method == "dense" ? nlohmann::json() : nlohmann::json(r.speedup_bound)},
                          {"bytes_per_node", rounded(r.bytes_per_node)}};
    const NodePlacement* p = run.placement_at(r.seq_len);
    row["resident_share"] = p ? array_or_null(p->resident_share) : nlohmann::json();
    row["model_share"] = p ? nlohmann::json(p->model_share) : nlohmann::json();
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
  auto per_s = nlohmann::json::array();
  for (const NodePlacement& p : run.placements)
    per_s.push_back({{"seq_len", p.seq_len},
                     {"local_node", p.local_node},
                     {"resident_bytes", p.resident_bytes},
                     {"resident_share", array_or_null(p.resident_share)},
                     {"model_share", p.model_share}});
  j["placement"] = {{"policy", std::string(to_string(run.placement))},
                    {"numa_nodes", run.node_os_index.size()},
                    {"node_os_index", run.node_os_index},
                    {"seq_lens", per_s}};
  const auto before = dense_fraction(run, run.ceilings.read_gb_per_s);
  const auto after = run.bw_after ? dense_fraction(run, run.bw_after->gb_per_s) : std::nullopt;
  j["dense_vs_read_bandwidth"] = {{"before", before ? nlohmann::json(*before) : nlohmann::json()},
                                  {"after", after ? nlohmann::json(*after) : nlohmann::json()}};
  const FloorCeilings& f = run.floor_ceilings;
  j["floor_ceilings"] = {
      {"streaming_before_gb_per_s", f.attempts ? nlohmann::json(f.streaming_before_gb_per_s) : nlohmann::json()},
      {"streaming_after_gb_per_s", run.bw_after ? nlohmann::json(run.bw_after->gb_per_s) : nlohmann::json()},
      {"attempts", f.attempts},
      {"steady", run.floor_steady()}};
  j["interrupted"] = run.interrupted;
  return j;
}

void print_csv(const Run& run) {
  fmt::print(
      "seq_len,method,ratio,r,k,window,median_ms,gb_per_s,pct_of_read_bw,gflops,flop_per_byte,bytes,"
      "model_bytes,speedup_vs_dense,byte_ratio_vs_dense,bytes_per_node\n");
  for (const Row& r : run.rows) {
    if (r.times.empty()) continue;
    // One column whatever the node count: "n0:bytes;n1:bytes".
    std::string per_node;
    for (std::size_t n = 0; n < r.bytes_per_node.size(); ++n)
      per_node += fmt::format("{}n{}:{:.0f}", n ? ";" : "", n, r.bytes_per_node[n]);
    fmt::print("{},{},{},{},{},{},{:.6f},{:.3f},{:.2f},{:.3f},{:.4f},{},{},{:.3f},{:.3f},{}\n", r.seq_len, r.method,
               r.params ? fmt::format("{:g}", r.ratio) : "", r.params ? fmt::format("{}", r.params->r) : "",
               r.params ? fmt::format("{}", r.params->k) : "", r.params ? fmt::format("{}", r.params->window) : "",
               r.point.seconds * 1e3, r.point.gb_per_s, r.point.bandwidth_fraction * 100, r.point.gflops,
               r.point.intensity, r.point.bytes, r.model.bytes, r.speedup, r.byte_ratio, per_node);
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
  fmt::print(
      "\nresults: one layer, {} query / {} KV heads, d={}, {}, {} layout, {} d-major copy, batch {}; median of {} "
      "cold calls{}\n",
      heads.q, heads.kv, o.head_dim, o.dtype, o.layout, o.d_major_type, o.batch, calls,
      run.interrupted ? " (interrupted)" : "");
  fmt::print("{:>6}  {:<12} {:>10} {:>8} {:>6} {:>8} {:>7} {:>11} {:>7} {:>8} {:>8}\n", "S", "method", "time", "GB/s",
             "%BW", "GFLOP/s", "FLOP/B", "bytes", "model", "speedup", "bytes/x");
  for (const Row& r : run.rows) {
    if (r.times.empty()) continue;
    const double model_ratio = r.model.bytes ? double(r.point.bytes) / double(r.model.bytes) : 0.0;
    fmt::print("{:>6}  {:<12} {:>7.3f} ms {:>8.1f} {:>5.0f}% {:>8.2f} {:>7.3f} {:>11} {:>6.3f}x {:>7.2f}x {:>7.2f}x\n",
               size_label(r.seq_len), r.label(), r.point.seconds * 1e3, r.point.gb_per_s,
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
    if (!steady(run.ceilings.read_gb_per_s, run.bw_after->gb_per_s))
      fmt::print(
          "warning: the read bandwidth moved by more than {:.0f}% between before and after the runs: the % column "
          "(against the figure before) is that uncertain\n",
          kSteadyTolerance * 100);
  }
}

void print_floors(const Run& run) {
  if (std::none_of(run.rows.begin(), run.rows.end(), [](const Row& r) { return r.method != "dense"; })) return;
  fmt::print(
      "\nmemory floor: each phase's bytes at the read bandwidth of its access pattern (streaming {:.1f} GB/s{}; "
      "SparQ's stages: as many runs of their size as the profile counted, at random places of each stretch of d-major "
      "keys (stage 1) or block's K and V (stage 2), {} "
      "thr)\n",
      run.floor_streaming_gb_per_s(), run.bw_after ? ", measured after the runs" : "", run.threads);
  const FloorCeilings& f = run.floor_ceilings;
  if (f.attempts && run.bw_after) {
    if (run.floor_steady())
      fmt::print("(streaming {:.1f} GB/s right before the scattered patterns: steady within {:.0f}%{})\n",
                 f.streaming_before_gb_per_s, kSteadyTolerance * 100,
                 f.attempts > 1 ? fmt::format(", at attempt {}", f.attempts) : "");
    else
      fmt::print(
          "warning: streaming {:.1f} GB/s right before the scattered patterns, {:.1f} right after ({} attempts, "
          "none within {:.0f}%): the machine changed bandwidth mode meanwhile, so the floors and speed-up bounds "
          "below mix two modes; run again\n",
          f.streaming_before_gb_per_s, run.bw_after->gb_per_s, f.attempts, kSteadyTolerance * 100);
  }
  fmt::print("{:>6}  {:<12} {:>10} {:>8} {:>15}   {}\n", "S", "method", "floor", "of time", "speed-up bound",
             "scattered read");
  for (const Row& r : run.rows) {
    if (r.times.empty()) continue;
    std::string patterns = r.method != "dense" && r.scattered.empty() ? "streaming (every row fetched)" : "";
    for (const ScatteredCeiling& c : r.scattered)
      patterns += fmt::format("{}{} {} x {} B: {:.1f} GB/s", patterns.empty() ? "" : "; ",
                              c.phase == Phase::stage1 ? "stage 1" : "stage 2", c.pattern.runs_per_group,
                              c.pattern.run_bytes, c.gb_per_s);
    const std::string bound = r.method == "dense" ? "" : fmt::format("{:.2f}x", r.speedup_bound);
    std::string line = fmt::format("{:>6}  {:<12} {:>7.3f} ms {:>7.0f}% {:>15}   {}", size_label(r.seq_len), r.label(),
                                   r.floor_seconds * 1e3, r.floor_fraction() * 100, bound, patterns);
    line.erase(line.find_last_not_of(' ') + 1);
    fmt::print("{}\n", line);
  }
  fmt::print("(of time: floor / measured median; speed-up bound: dense's floor / this row's floor)\n");
}

void print_placement(const Run& run) {
  const std::size_t nodes = run.node_os_index.size();
  // Resident: layer 0's pages as the OS reports them; bytes: the row's bytes x that share.
  fmt::print("\nplacement: {} over {} NUMA node{} (per node: share of the pages, the policy's share, bytes read)\n",
             to_string(run.placement), nodes, nodes == 1 ? "" : "s");
  for (const NodePlacement& p : run.placements) {
    std::vector<const Row*> rows;
    for (const Row& r : run.rows)
      if (r.seq_len == p.seq_len && !r.times.empty()) rows.push_back(&r);
    if (rows.empty()) continue;
    // One line per node; S only on the first (one line per S on a single-node machine).
    for (std::size_t n = 0; n < nodes; ++n) {
      std::string line = fmt::format("{:>6}  node{}", n == 0 ? size_label(p.seq_len) : "", n);
      line += p.resident_share.empty() ? std::string("      ?") : fmt::format(" {:5.1f}%", p.resident_share[n] * 100);
      line += fmt::format(" (model {:5.1f}%)", n < p.model_share.size() ? p.model_share[n] * 100 : 0.0);
      for (const Row* r : rows)
        line += fmt::format("  {} {}", r->label(),
                            perf::human_bytes(n < r->bytes_per_node.size() ? r->bytes_per_node[n] : 0.0));
      fmt::print("{}\n", line);
    }
    if (p.resident_share.empty())
      fmt::print("        (the OS did not report where the pages are: bytes split by the model)\n");
  }
}

void write_plot(const std::string& gnuplot, const std::string& file, const RooflineOptions& o, const Run& run,
                const perf::Heads& heads) {
  double lo = 1e9, hi = 0;
  for (const Row& r : run.rows)
    if (!r.times.empty() && r.point.intensity > 0) {
      lo = std::min(lo, r.point.intensity);
      hi = std::max(hi, r.point.intensity);
    }
  const double ridge = run.ceilings.ridge_intensity();
  lo = std::min(lo, ridge) / 4;
  hi = std::max(hi, ridge) * 4;
  std::string script;
  script += fmt::format("set terminal svg size 900,600 dynamic font 'sans,12' background '#ffffff'\n");
  script += fmt::format("set output {}\n", gnuplot_quoted(file));
  script +=
      fmt::format("set title {} noenhanced\n",
                  gnuplot_quoted(fmt::format("{} — {} thr, {} query / {} KV heads, d={}, {}", run.machine.cpu_model,
                                             run.threads, heads.q, heads.kv, o.head_dim, o.dtype)));
  script += "set logscale xy\nset grid\nset key left top noenhanced\n";
  script += "set xlabel 'arithmetic intensity (FLOP/byte)'\nset ylabel 'GFLOP/s'\n";
  script += fmt::format("bw = {}\npeak = {}\nroof(x) = x * bw < peak ? x * bw : peak\n", run.ceilings.read_gb_per_s,
                        run.ceilings.peak_gflops);
  script += fmt::format("set xrange [{}:{}]\nset samples 400\n", lo, hi);
  std::string dense, sparq;
  for (const Row& r : run.rows) {
    if (r.times.empty()) continue;
    (r.method == "dense" ? dense : sparq) +=
        fmt::format("{} {} \"{} S={}\"\n", r.point.intensity, r.point.gflops, r.label(), size_label(r.seq_len));
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
  run_gnuplot(gnuplot, script, file);
}

}  // namespace sparq::cli::roofline
