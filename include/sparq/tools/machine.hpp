// The machine's ceilings, measured rather than looked up (DESIGN §2 "Profiler and
// roofline"): a STREAM-like multi-threaded read kernel over a buffer far larger than
// the last-level cache, and an FMA peak from independent FMA chains held in registers.
//
// Both run the variant of the active ISA (sparq::active_isa(), the one the kernels use)
// unless told otherwise, on a oneTBB task_arena of exactly `threads` slots whose threads
// are pinned to distinct cores (hwloc) while they run; the previous affinity is restored
// afterwards. Each reported figure is the median of `repeats` timed passes after one
// untimed warm-up pass.
//
// Thread safety: the measurements may be called from any thread, but two of them
// running at once measure each other; call them on a quiet machine.
#pragma once

#include <compare>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sparq/isa.hpp"

namespace sparq {

struct MachineInfo {
  std::string cpu_model;             // /proc/cpuinfo "model name", "unknown" otherwise
  std::size_t hardware_threads = 1;  // processing units this process may run on
  std::size_t cores = 1;             // physical cores among them
  std::size_t numa_nodes = 1;
  std::size_t llc_bytes = 0;      // one instance of the last-level cache (hwloc), 0 if unknown
  std::size_t llc_instances = 0;  // how many such caches the cores share out
  int llc_level = 0;              // 3 for an L3, ...
  Isa isa = Isa::generic;         // active_isa() at the time of the call
};

// Topology through hwloc; degrades to /proc and std::thread::hardware_concurrency()
// when hwloc cannot load the topology.
[[nodiscard]] MachineInfo describe_machine();

// Read-buffer size used when none is given: max(256 MiB, 8 x total LLC), capped at
// 1 GiB and at a quarter of the memory currently available. (Virtual machines may
// report the host's whole L3 as each core's: here hwloc says 2 x 508 MiB where the
// read bandwidth drops to its DRAM level above 32-64 MiB and is flat from 256 MiB up.)
[[nodiscard]] std::size_t default_read_buffer_bytes(const MachineInfo& machine);

// A scattered read: the access pattern of SparQ's stage 1 (runs of block_tokens elements
// of a d-major key row) and stage 2 (rows of head_dim elements). Runs of run_bytes
// contiguous bytes (a multiple of 64, at most 64 KiB), the next 8 runs prefetched as the
// kernels do, each thread its own pseudo-random sequence; a pass reads
// min(64 MiB, buffer / 4) bytes. Where the runs are: group_stride_bytes = 0, uniform over
// the buffer; otherwise as a KV head's blocks are read, groups of runs_per_group runs at
// distinct random run-aligned places (ascending) of the first group_bytes of each group,
// consecutive groups group_stride_bytes apart, wrapping at the buffer's end.
struct ScatteredPattern {
  static constexpr std::size_t kMaxRunBytes = std::size_t{64} << 10;
  std::size_t run_bytes = 0;           // 0: no scattered read; at most kMaxRunBytes
  std::size_t runs_per_group = 1;      // >= 1
  std::size_t group_bytes = 0;         // >= runs_per_group x run_bytes
  std::size_t group_stride_bytes = 0;  // >= group_bytes, <= the buffer
  friend auto operator<=>(const ScatteredPattern&, const ScatteredPattern&) = default;
};

struct ReadBandwidthOptions {
  std::vector<std::size_t> thread_counts = {};  // empty: 1 .. hardware_threads
  std::size_t buffer_bytes = 0;                 // 0: default_read_buffer_bytes(); at least 1 MiB
  std::size_t repeats = 7;                      // timed passes per thread count, >= 1
  std::optional<Isa> isa = std::nullopt;        // default: active_isa(); must run on this CPU
  bool pin_threads = true;
  ScatteredPattern scattered = {};  // run_bytes = 0: the streaming read
};

struct BandwidthSample {
  std::size_t threads = 0;
  double gb_per_s = 0.0;           // median of the passes (1 GB = 1e9 bytes)
  double best_gb_per_s = 0.0;      // fastest pass
  double worst_gb_per_s = 0.0;     // slowest pass
  std::size_t threads_joined = 0;  // distinct arena threads that read a part (== threads when healthy)
};

struct ReadBandwidth {
  std::size_t buffer_bytes = 0;
  ScatteredPattern scattered;  // as asked: run_bytes = 0 for the streaming read
  Isa isa = Isa::generic;
  bool pinned = false;                   // every thread was pinned to its own core
  std::vector<BandwidthSample> samples;  // one per thread count, in the order asked

  // The sample for `threads`, or nullptr.
  [[nodiscard]] const BandwidthSample* at(std::size_t threads) const noexcept;
};

// Sums a buffer of floats (each pass reads every byte once; partitioned into one
// contiguous part per thread). Throws sparq::Error on a bad option or when the buffer
// cannot be allocated.
[[nodiscard]] ReadBandwidth measure_read_bandwidth(const ReadBandwidthOptions& options = {});

// The same measurement, keeping its buffer between calls: for a figure right before
// and right after a run without paying the first touch twice (in some virtual machines
// first-touching fresh memory runs at ~150 MB/s). The buffer is allocated and
// first-touched by `max_threads` pinned threads in the constructor.
class ReadBandwidthMeter {
 public:
  // buffer_bytes = 0: default_read_buffer_bytes(); at least 1 MiB. max_threads = 0: all.
  explicit ReadBandwidthMeter(std::size_t buffer_bytes = 0, std::size_t max_threads = 0, bool pin_threads = true);
  ~ReadBandwidthMeter();
  ReadBandwidthMeter(const ReadBandwidthMeter&) = delete;
  ReadBandwidthMeter& operator=(const ReadBandwidthMeter&) = delete;

  [[nodiscard]] std::size_t buffer_bytes() const noexcept;
  // options.buffer_bytes is ignored (the meter's buffer is used); pin_threads as given.
  [[nodiscard]] ReadBandwidth measure(const ReadBandwidthOptions& options = {}) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct FmaPeakOptions {
  std::vector<std::size_t> thread_counts = {};  // empty: 1 .. hardware_threads
  std::size_t repeats = 5;                      // >= 1
  double seconds_per_pass = 0.05;               // approximate length of one timed pass, > 0
  std::optional<Isa> isa = std::nullopt;        // default: active_isa()
  bool pin_threads = true;
};

struct FmaSample {
  std::size_t threads = 0;
  double gflops = 0.0;  // median; an FMA counts as two FLOPs (f32 lanes)
  double best_gflops = 0.0;
};

struct FmaPeak {
  Isa isa = Isa::generic;
  std::size_t chains = 0;  // independent accumulators per thread
  std::size_t lanes = 0;   // f32 lanes per vector of that ISA
  std::vector<FmaSample> samples;

  [[nodiscard]] const FmaSample* at(std::size_t threads) const noexcept;
};

// f32 FMA throughput (for `generic`, a multiply and an add: SSE2 has no FMA).
[[nodiscard]] FmaPeak measure_fma_peak(const FmaPeakOptions& options = {});

}  // namespace sparq
