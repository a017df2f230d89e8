// Shared pieces of the measuring subcommands (`sparq roofline`, `sparq layouts`):
// the options both take, timing of one decode call on cold data (the caches come from
// sparq/tools/cold_caches.hpp, as the benchmarks' do), Ctrl-C handling and a progress
// bar. Header-only so that each tool stays one line in commands.cmake.
#pragma once

#include <fmt/core.h>
#include <oneapi/tbb/task_arena.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "cli.hpp"
#include "options.hpp"
#include "sparq/decode.hpp"
#include "sparq/kv_cache.hpp"
#include "sparq/method.hpp"
#include "sparq/profile.hpp"
#include "sparq/tools/cold_caches.hpp"
#include "sparq/tools/machine.hpp"

namespace sparq::cli::perf {

// --- Parsing --------------------------------------------------------------------------

// "32/8" (query/KV heads) or "8" (multi-head: 8/8), each in [1, 4096].
struct Heads {
  std::size_t q = 0, kv = 0;
};
inline Heads parse_heads(const std::string& text) {
  const auto count = [&](std::string_view part) {
    std::size_t v = 0;
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (part.empty() || ec != std::errc{} || end != part.data() + part.size() || v < 1 || v > 4096)
      usage_error(fmt::format("--heads={} is invalid: expected Q/KV or H, head counts in [1, 4096], e.g. 32/8", text));
    return v;
  };
  const auto slash = text.find('/');
  Heads h;
  h.q = count(std::string_view(text).substr(0, slash));
  h.kv = slash == std::string::npos ? h.q : count(std::string_view(text).substr(slash + 1));
  if (h.q % h.kv != 0)
    usage_error(
        fmt::format("--heads={} is invalid: query heads ({}) must be a multiple of KV heads ({})", text, h.q, h.kv));
  return h;
}

inline std::string human_bytes(double b) {
  if (b >= double(1ull << 30)) return fmt::format("{:.2f} GiB", b / double(1ull << 30));
  if (b >= double(1ull << 20)) return fmt::format("{:.1f} MiB", b / double(1ull << 20));
  if (b >= double(1ull << 10)) return fmt::format("{:.1f} KiB", b / double(1ull << 10));
  return fmt::format("{:.0f} B", b);
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// --- Options both tools share ------------------------------------------------------

// Ranges of the options `sparq roofline` and `sparq layouts` share (integer_in()).
inline constexpr std::int64_t kMaxHeadDim = 4096, kMaxThreads = 4096, kMaxRepeats = 100000;

// What the options' own ranges cannot check: r against the head dimension.
inline void check_r(const std::optional<std::int64_t>& r, std::int64_t head_dim) {
  if (r && *r > head_dim) usage_error(fmt::format("--r={} is invalid: r must be in [1, head_dim={}]", *r, head_dim));
}

// Default bytes the timed calls of `sparq roofline` and `sparq layouts` rotate over: far
// above the last-level cache, at least 256 MiB. Virtual machines may report the host's
// whole L3 for every core (VM-A: hwloc says 2 x 508 MiB where one core's share measures
// ~32 MiB and the read bandwidth is flat from 256 MiB up), so it is capped at 512 MiB;
// --working-set overrides it.
inline std::uint64_t default_working_set(const MachineInfo& m) {
  const std::uint64_t llc = std::uint64_t(m.llc_bytes) * std::max<std::size_t>(m.llc_instances, 1);
  return std::clamp<std::uint64_t>(4 * llc, 256ull << 20, 512ull << 20);
}

// The --r/--k/--window overrides of SparQ's ratio defaults, with their ranges.
inline void add_sparq_overrides(CLI::App& cmd, std::optional<std::int64_t>& r, std::optional<std::int64_t>& k,
                                std::optional<std::int64_t>& window) {
  cmd.add_option("--r", r, "SparQ query components kept, 1 <= r <= d (overrides the ratio)")
      ->transform(integer_in(1, kMaxHeadDim));
  cmd.add_option("--k", k, "SparQ positions fetched, k >= 1 (overrides the ratio)")
      ->transform(integer_in(1, kMaxInt64));
  cmd.add_option("--window", window, "SparQ local window l >= 0 (default k/4)")->transform(integer_in(0, kMaxInt64));
}

// SparQ at compression ratio c with the --r/--k/--window overrides (already checked).
inline SparQ sparq_for(double ratio, const std::optional<std::int64_t>& r, const std::optional<std::int64_t>& k,
                       const std::optional<std::int64_t>& window) {
  SparQ m = SparQ::for_ratio(ratio);
  if (r) m.r = std::size_t(*r);
  if (k) m.k = std::size_t(*k);
  if (window) m.window = std::size_t(*window);
  return m;
}

// --- Ctrl-C ---------------------------------------------------------------------------

// While alive, the first SIGINT sets stop_requested() (the tool finishes the call in
// flight and prints what it measured); a second one kills the process as usual.
class StopOnSigint {
 public:
  StopOnSigint() {
    flag() = 0;
    struct sigaction sa {};
    sa.sa_handler = &StopOnSigint::handle;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;  // the second Ctrl-C gets the default action
    installed_ = sigaction(SIGINT, &sa, &previous_) == 0;
  }
  ~StopOnSigint() {
    if (installed_) sigaction(SIGINT, &previous_, nullptr);
  }
  StopOnSigint(const StopOnSigint&) = delete;
  StopOnSigint& operator=(const StopOnSigint&) = delete;
  [[nodiscard]] static bool stop_requested() noexcept { return flag() != 0; }

 private:
  static volatile sig_atomic_t& flag() noexcept {
    static volatile sig_atomic_t f = 0;
    return f;
  }
  static void handle(int) { flag() = 1; }
  struct sigaction previous_ {};
  bool installed_ = false;
};

// Exit code after an interrupted but cleanly finished run (128 + SIGINT, the shell's).
inline constexpr int kExitInterrupted = 130;

// --- Progress -------------------------------------------------------------------------

// A one-line bar on stderr when stderr is a terminal; silent otherwise.
class Progress {
 public:
  explicit Progress(std::size_t total) : total_(std::max<std::size_t>(total, 1)), tty_(isatty(STDERR_FILENO) == 1) {}
  ~Progress() { finish(); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void step(const std::string& what, std::size_t n = 1) {
    done_ = std::min(total_, done_ + n);
    show(what);
  }
  void show(const std::string& what) {
    if (!tty_) return;
    constexpr std::size_t width = 30;
    const std::size_t filled = done_ * width / total_;
    fmt::print(stderr, "\r\033[K[{}{}] {:3d}% {}", std::string(filled, '#'), std::string(width - filled, '.'),
               int(done_ * 100 / total_), what);
    std::fflush(stderr);
    shown_ = true;
  }
  void finish() {
    if (tty_ && shown_) fmt::print(stderr, "\r\033[K");
    shown_ = false;
  }

 private:
  std::size_t total_;
  std::size_t done_ = 0;
  bool tty_;
  bool shown_ = false;
};

// --- Timed calls on cold data ------------------------------------------------------

// Random queries and output buffers for a batch: items point into the owned vectors.
struct Queries {
  std::vector<std::vector<float>> q, out;
  std::vector<DecodeItem> items;

  Queries(const ColdCaches& cold, std::size_t q_heads, std::size_t head_dim, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (std::size_t i = 0; i < cold.seqs.size(); ++i) {
      q.emplace_back(q_heads * head_dim);
      for (auto& x : q.back()) x = normal(rng);
      out.emplace_back(q_heads * head_dim);
    }
    for (std::size_t i = 0; i < cold.seqs.size(); ++i) items.push_back({.seq = cold.seqs[i], .q = q[i], .out = out[i]});
  }
};

// One decode call on the next layer of the rotation; returns its wall time in seconds
// and adds what it moved to `profile`.
inline double timed_decode(ColdCaches& cold, const Method& method, const Queries& queries, tbb::task_arena& arena,
                           Profile& profile) {
  const std::size_t layer = cold.take_layer();
  const auto t0 = std::chrono::steady_clock::now();
  decode(*cold.cache, layer, method, queries.items, {.profile = &profile, .arena = &arena});
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace sparq::cli::perf
