// `sparq roofline`: what one run measured, shared by the measuring side (roofline.cpp:
// options, validation, the timed runs) and the reports (roofline_report.cpp: text
// table, CSV, JSON, gnuplot chart). The --json fields are listed in roofline.cpp.
#pragma once

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "perf_common.hpp"
#include "sparq/tools/machine.hpp"
#include "sparq/tools/roofline.hpp"

namespace sparq::cli::roofline {

struct RooflineOptions {
  std::vector<std::uint64_t> seq_lens{4096, 16384, 65536};
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
  std::string layout = "both";        // both | fused (the layouts with both key copies)
  std::string d_major_type = "same";  // same | int8
  std::string placement = "local";
  std::optional<std::uint64_t> working_set;  // bytes; unset: perf::default_working_set()
  std::optional<std::uint64_t> bw_buffer;    // bytes; unset: default_read_buffer_bytes()
  bool json = false, csv = false;
  std::string plot;
};

// Where the cache of one S lives, per node of Topology::this_system() (its node order).
struct NodePlacement {
  std::size_t seq_len = 0;
  // Layer 0 of every sequence of the batch, all KV heads, as the OS placed its pages
  // (resident_bytes_by_node); sums to 0 when the OS could not say.
  std::vector<std::uint64_t> resident_bytes;
  std::vector<double> resident_share;  // resident_bytes / their sum; empty when unknown
  std::vector<double> model_share;     // node_byte_shares() for the policy
  std::size_t local_node = 0;          // the model's "local": the node of the thread that filled the cache
  // The shares bytes are split by: measured when known, else the model's.
  [[nodiscard]] const std::vector<double>& share() const {
    return resident_share.empty() ? model_share : resident_share;
  }
};

// Read bandwidth of one SparQ stage's access pattern, measured at the run's thread
// count: runs of the stage's size, runs_per_group of them at random places of the first
// group_bytes of every cache block (group_stride_bytes apart).
struct ScatteredCeiling {
  Phase phase = Phase::stage1;  // stage1 (runs of a d-major key row) or stage2 (K and V rows)
  ScatteredPattern pattern;
  double gb_per_s = 0.0;
};

struct Row {
  std::size_t seq_len = 0;
  std::string method;  // "dense" or "sparq"
  double ratio = 0.0;
  Method m;
  std::optional<SparQResolved> params;
  std::size_t layers = 0;
  std::uint64_t working_set = 0;
  std::size_t d_major_run_bytes = 0;  // mean run of one key component over a head's blocks (d_major_run_bytes())
  std::size_t d_major_elem = 0;       // bytes of one element of the d-major copy (1: int8)
  std::vector<double> times;
  Profile profile;
  ModelCost model;
  // Filled by finish():
  RooflinePoint point;
  double speedup = 0.0, byte_ratio = 0.0;
  std::vector<double> bytes_per_node;       // point.bytes x the S's NodePlacement::share()
  std::vector<ScatteredCeiling> scattered;  // SparQ rows: stage1, stage2 (none of a stage that reads every row)
  // Each phase's bytes at the bandwidth of its access pattern (streaming, or the
  // scattered ceilings for SparQ's stages): the least time this machine's memory allows.
  double floor_seconds = 0.0;
  double speedup_bound = 0.0;  // SparQ: dense's floor / this floor at the same S (0 for dense)
  // floor / measured median (0 before finish() sets the point).
  [[nodiscard]] double floor_fraction() const { return point.seconds > 0 ? floor_seconds / point.seconds : 0.0; }
  // The bandwidth `phase` of this row reads at: its scattered ceiling, else `streaming`.
  [[nodiscard]] double phase_gb_per_s(Phase phase, double streaming) const {
    for (const ScatteredCeiling& c : scattered)
      if (c.phase == phase) return c.gb_per_s;
    return streaming;
  }
  [[nodiscard]] std::string label() const { return method == "dense" ? "dense" : fmt::format("sparq c={:g}", ratio); }
};

// The cache as the floor's probes see it (one row's rotation).
struct FloorGeometry {
  std::size_t seq_len = 0, head_dim = 0, kv_heads = 0, batch = 1, block_tokens = 0;
  std::size_t elem = 0;          // bytes of a K/V element
  std::size_t d_major_elem = 0;  // bytes of a d-major element (1: int8)
  KeyLayout layouts = KeyLayout::both;
  std::size_t d_major_run_bytes = 0;  // mean stage-1 run; 0: one block's row
  std::size_t block_stride = 0;       // bytes from one block to the next in the cache
};

// The scattered read pattern of SparQ's stage 1 or 2 when it reads `bytes_per_call`;
// nullopt when the stage reads every run of its region (a streaming read) or nothing.
// Stage 1: runs of one key component over a head's blocks (d_major_run_bytes), d of them
// side by side per stretch of the d-major copy. Stage 2: per block, the selected rows of
// its K and V regions: two runs of d·elem per position, or one run of 2·d·elem when the
// layout is fused ([B][key | value]). Runs are rounded up to whole cache lines.
[[nodiscard]] inline std::optional<ScatteredPattern> floor_pattern(Phase phase, const FloorGeometry& g,
                                                                   double bytes_per_call) {
  const auto line_multiple = [](std::size_t b) {
    return std::min<std::size_t>((b + 63) / 64 * 64, ScatteredPattern::kMaxRunBytes);
  };
  const auto ceil_div = [](std::size_t a, std::size_t b) { return (a + b - 1) / b; };
  if (bytes_per_call <= 0 || g.block_tokens == 0 || g.head_dim == 0) return std::nullopt;
  ScatteredPattern p;
  std::size_t groups = 0;
  if (phase == Phase::stage1) {
    p.run_bytes = line_multiple(g.d_major_run_bytes ? g.d_major_run_bytes : g.block_tokens * g.d_major_elem);
    p.group_bytes = p.group_stride_bytes = g.head_dim * p.run_bytes;
    groups = g.kv_heads * g.batch * ceil_div(g.seq_len * g.d_major_elem, p.run_bytes);
  } else if (phase == Phase::stage2) {
    const std::size_t row = g.head_dim * g.elem;
    const std::size_t region = row * g.block_tokens;  // one block's K (or V) rows
    p.run_bytes = line_multiple(g.layouts == KeyLayout::fused ? 2 * row : row);
    p.group_bytes = std::min(2 * region / 64 * 64, g.block_stride);
    p.group_stride_bytes = g.block_stride;
    groups = g.kv_heads * g.batch * ceil_div(g.seq_len, g.block_tokens);
  } else {
    return std::nullopt;
  }
  if (groups == 0 || p.group_bytes < p.run_bytes) return std::nullopt;
  const std::size_t runs_in_group = p.group_bytes / p.run_bytes;
  p.runs_per_group = std::clamp<std::size_t>(
      std::size_t(std::llround(bytes_per_call / double(groups) / double(p.run_bytes))), 1, runs_in_group);
  if (p.runs_per_group == runs_in_group) return std::nullopt;  // every run of the region: streaming
  return p;
}

// How the floor's ceilings were measured (measure_floor_ceilings in roofline.cpp): the
// streaming read bandwidth right before SparQ's scattered patterns (the one right after
// them is Run::bw_after), and how many sets it took for the two to agree.
inline constexpr int kFloorAttempts = 3;
inline constexpr double kSteadyTolerance = 0.10;
// Two bandwidth figures agree: they differ by at most kSteadyTolerance of the larger.
[[nodiscard]] inline bool steady(double a, double b) {
  return std::abs(a - b) <= kSteadyTolerance * std::max(a, b);
}
struct FloorCeilings {
  double streaming_before_gb_per_s = 0.0;
  int attempts = 0;  // 0: not measured (interrupted run)
};

struct Run {
  MachineInfo machine;
  ReadBandwidth bw_before;
  std::optional<BandwidthSample> bw_after;
  // The streaming bandwidth of the memory floor: bw_after when measured (right after the
  // scattered patterns, so both ceilings of a floor come from the same minutes of a
  // machine whose bandwidth drifts), else the one before the runs.
  [[nodiscard]] double floor_streaming_gb_per_s() const {
    return bw_after ? bw_after->gb_per_s : ceilings.read_gb_per_s;
  }
  FloorCeilings floor_ceilings;
  // The streaming figures before and after the scattered patterns agree within
  // kSteadyTolerance: the memory floors (and the speed-up bound) come from one mode of a
  // machine whose bandwidth drifts.
  [[nodiscard]] bool floor_steady() const {
    return bw_after && floor_ceilings.attempts > 0 &&
           steady(floor_ceilings.streaming_before_gb_per_s, bw_after->gb_per_s);
  }
  FmaPeak fma;
  Ceilings ceilings;
  std::size_t threads = 0;
  std::vector<Row> rows;
  Placement placement = Placement::local;
  std::vector<unsigned> node_os_index;    // per node of Topology::this_system()
  std::vector<NodePlacement> placements;  // one per S measured
  bool interrupted = false;

  [[nodiscard]] const NodePlacement* placement_at(std::size_t seq_len) const {
    for (const NodePlacement& p : placements)
      if (p.seq_len == seq_len) return &p;
    return nullptr;
  }
};

// --- Reports (roofline_report.cpp) ------------------------------------------------------

[[nodiscard]] nlohmann::json to_json(const RooflineOptions& o, const Run& run, const perf::Heads& heads);
void print_csv(const Run& run);
void print_machine(const Run& run);
void print_table(const RooflineOptions& o, const Run& run, const perf::Heads& heads);
// Each row's memory floor and SparQ's speed-up bound (nothing without SparQ rows).
void print_floors(const Run& run);
// Per S: each node's resident share (and the model's) and bytes per node of every row.
void print_placement(const Run& run);
// An SVG roofline chart through `gnuplot` (require_gnuplot()); throws Error(io_error)
// when gnuplot fails.
void write_plot(const std::string& gnuplot, const std::string& file, const RooflineOptions& o, const Run& run,
                const perf::Heads& heads);

}  // namespace sparq::cli::roofline
