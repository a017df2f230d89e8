// `sparq layouts`: what one run measured, shared by the measuring side (layouts.cpp:
// options, the timed runs, the recommendation) and the reports (layouts_report.cpp:
// text, CSV, JSON). The --json fields are listed in layouts.cpp.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "perf_common.hpp"
#include "sparq/kv_cache.hpp"
#include "sparq/profile.hpp"
#include "sparq/tools/machine.hpp"

namespace sparq::cli::layouts {

struct LayoutsOptions {
  std::uint64_t seq_len = 16384;
  std::string heads = "32/8";
  std::int64_t head_dim = 128;
  std::vector<std::string> dtypes{"bf16"};
  std::vector<std::string> layouts{"both", "s-major", "d-major", "fused"};
  std::vector<std::string> d_major_types{"same", "int8"};
  std::vector<std::uint64_t> block_tokens{256};
  double ratio = 8.0;
  std::optional<std::int64_t> r, k, window;
  std::int64_t threads = 0;
  std::int64_t repeats = 7;
  std::optional<std::uint64_t> working_set;  // bytes; unset: perf::default_working_set()
  std::optional<std::uint64_t> bw_buffer;
  bool json = false, csv = false;
};

// One storage choice: a key layout and the element type of its d-major copy.
struct Variant {
  KeyLayout layout = KeyLayout::both;
  DMajorType d_major_type = DMajorType::same;
};
// "both", "fused+int8", "s-major", ...
[[nodiscard]] inline std::string variant_name(const Variant& v) {
  return std::string(to_string(v.layout)) + (v.d_major_type == DMajorType::int8 ? "+int8" : "");
}

struct Result {
  DType dtype = DType::bf16;
  Variant variant;
  std::size_t block = 0;
  MemoryUsage memory;          // one layer of the sequence, all KV heads
  std::uint64_t kv_bytes = 0;  // K and V once each: the memory without a second key copy
  std::vector<double> sparq_times, dense_times;
  Profile sparq_profile, dense_profile;
  std::uint64_t model_bytes = 0;  // SparQ's DESIGN §1 model for this storage

  [[nodiscard]] double sparq_s() const { return perf::median(sparq_times); }
  [[nodiscard]] double dense_s() const { return perf::median(dense_times); }
  [[nodiscard]] std::uint64_t phase_bytes(Phase ph) const {
    return sparq_times.empty() ? 0 : sparq_profile[ph].bytes_read / sparq_times.size();
  }
  // A phase's bytes over its share of the calls' wall time (the profile scales phase
  // times of concurrent units to the call's wall time).
  [[nodiscard]] double phase_gb_per_s(Phase ph) const { return sparq_profile[ph].gb_per_s(); }
  [[nodiscard]] std::uint64_t sparq_bytes() const {
    return sparq_times.empty() ? 0 : sparq_profile.total().bytes_read / sparq_times.size();
  }
  [[nodiscard]] std::uint64_t dense_bytes() const {
    return dense_times.empty() ? 0 : dense_profile.total().bytes_read / dense_times.size();
  }
  [[nodiscard]] double sparq_gb_per_s() const { return sparq_s() > 0 ? double(sparq_bytes()) / sparq_s() * 1e-9 : 0; }
  [[nodiscard]] double dense_gb_per_s() const { return dense_s() > 0 ? double(dense_bytes()) / dense_s() * 1e-9 : 0; }
  [[nodiscard]] double overhead() const {
    const double total = double(memory.k_s_major + memory.k_d_major + memory.values);
    return kv_bytes ? total / double(kv_bytes) - 1.0 : 0.0;
  }
  [[nodiscard]] double speedup() const { return sparq_s() > 0 ? dense_s() / sparq_s() : 0.0; }
  [[nodiscard]] bool complete() const { return !sparq_times.empty() && !dense_times.empty(); }
};

struct Recommendation {
  const Result* chosen = nullptr;  // null: nothing complete for the dtype
  std::string line;                // what and why, with the alternatives
};

struct Run {
  std::size_t seq_len = 0, head_dim = 0, q_heads = 0, kv_heads = 0, threads = 0;
  std::uint64_t working_set = 0;  // bytes each configuration's calls rotate over
  SparQResolved params;
  MachineInfo machine;
  double read_gb_per_s_before = 0.0, read_gb_per_s_after = 0.0;  // streaming, `threads`
  std::vector<Result> results;
  std::vector<Recommendation> recommendations;  // one per dtype
  std::vector<std::string> notes;               // variants asked for but not run, and why
  bool interrupted = false;
  // The figure %BW columns divide by: the read bandwidth measured right before the runs.
  [[nodiscard]] double bw_fraction(double gb_per_s) const {
    return read_gb_per_s_before > 0 ? gb_per_s / read_gb_per_s_before : 0.0;
  }
};

// Acceptance rules of recommend() (layouts.cpp), stated in its output.
inline constexpr double kDenseSlack = 1.10;  // dense within 10% of the fastest layout's
inline constexpr double kSameBlock = 1.05;   // prefer 256-token blocks, and the exact copy, within 5%

// --- Reports (layouts_report.cpp) ------------------------------------------------------
[[nodiscard]] nlohmann::json to_json(const LayoutsOptions& o, const Run& run);
void print_csv(const Run& run);
void print_text(const LayoutsOptions& o, const Run& run);

}  // namespace sparq::cli::layouts
