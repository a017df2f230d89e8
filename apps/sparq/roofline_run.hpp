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
  std::string placement = "local";
  std::optional<std::uint64_t> working_set;  // bytes; unset: auto_working_set()
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
