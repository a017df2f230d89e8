// Shared pieces of the measuring subcommands (`sparq roofline`, `sparq layouts`):
// parsing of sizes and lists, timing of one decode call on cold data (the caches come
// from sparq/tools/cold_caches.hpp, as the benchmarks' do), Ctrl-C handling and a
// progress bar. Header-only so that each tool stays one line in commands.cmake.
#pragma once

#include <fmt/core.h>
#include <oneapi/tbb/task_arena.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "sparq/decode.hpp"
#include "sparq/kv_cache.hpp"
#include "sparq/method.hpp"
#include "sparq/profile.hpp"
#include "sparq/tools/cold_caches.hpp"

namespace sparq::cli::perf {

// --- Parsing --------------------------------------------------------------------------

// "4096", "4k" (4096), "64K", "1M" (1048576), "1G": a count with a binary suffix.
// Throws a usage error naming `option` for anything else, zero, or overflow.
inline std::uint64_t parse_count(std::string_view text, std::string_view option) {
  const auto bad = [&](std::string_view why) { usage_error(fmt::format("{}={} is invalid: {}", option, text, why)); };
  if (text.empty()) bad("expected a positive integer such as 4096, 4k or 1M");
  std::uint64_t value = 0;
  std::size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (value > (~std::uint64_t{0} - 9) / 10) bad("too large");
    value = value * 10 + std::uint64_t(text[i] - '0');
  }
  if (i == 0) bad("expected a positive integer such as 4096, 4k or 1M");
  std::string_view suffix = text.substr(i);
  if (suffix == "iB" || suffix == "B") suffix = {};
  unsigned shift = 0;
  if (!suffix.empty()) {
    const char c = char(suffix[0] | 0x20);
    shift = c == 'k' ? 10 : c == 'm' ? 20 : c == 'g' ? 30 : 64;
    const std::string_view rest = suffix.substr(1);
    if (shift == 64 || !(rest.empty() || rest == "i" || rest == "iB" || rest == "B"))
      bad("unknown suffix (use k, M or G, binary: 4k = 4096)");
  }
  if (shift && value > (~std::uint64_t{0} >> shift)) bad("too large");
  value <<= shift;
  if (value == 0) bad("must be at least 1");
  return value;
}

// "a,b,c" or repeated options -> counts; each item parsed by parse_count.
inline std::vector<std::uint64_t> parse_count_list(const std::vector<std::string>& items, std::string_view option) {
  std::vector<std::uint64_t> out;
  for (const auto& item : items) {
    std::size_t start = 0;
    while (start <= item.size()) {
      const std::size_t comma = std::min(item.find(',', start), item.size());
      out.push_back(parse_count(std::string_view(item).substr(start, comma - start), option));
      start = comma + 1;
    }
  }
  if (out.empty()) usage_error(fmt::format("{} needs at least one value", option));
  return out;
}

// "32/8" (query/KV heads) or "8" (multi-head: 8/8).
struct Heads {
  std::size_t q = 0, kv = 0;
};
inline Heads parse_heads(const std::string& text) {
  const auto slash = text.find('/');
  Heads h;
  h.q = parse_count(std::string_view(text).substr(0, slash), "--heads");
  h.kv = slash == std::string::npos ? h.q : parse_count(std::string_view(text).substr(slash + 1), "--heads");
  if (h.q > 4096 || h.kv > 4096) usage_error(fmt::format("--heads={} is invalid: at most 4096 heads", text));
  if (h.q % h.kv != 0)
    usage_error(
        fmt::format("--heads={} is invalid: query heads ({}) must be a multiple of KV heads ({})", text, h.q, h.kv));
  return h;
}

// "4096" for exact counts, "4k"/"1M" when they divide evenly: how S is shown.
inline std::string count_label(std::uint64_t n) {
  if (n >= (1u << 20) && n % (1u << 20) == 0) return fmt::format("{}M", n >> 20);
  if (n >= (1u << 10) && n % (1u << 10) == 0) return fmt::format("{}k", n >> 10);
  return fmt::format("{}", n);
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

// The options `sparq roofline` and `sparq layouts` have in common, checked the same way
// and in this order (the first bad one is reported).
struct SharedOptions {
  bool json = false, csv = false;
  std::int64_t head_dim = 0;
  std::vector<double> ratios;
  std::optional<std::int64_t> r, k, window;
  std::int64_t threads = 0;
};

inline void check_shared_options(const SharedOptions& o) {
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
}

inline void check_repeats(std::int64_t repeats) {
  if (repeats < 1 || repeats > 100000)
    usage_error(fmt::format("--repeats={} is invalid: must be in [1, 100000]", repeats));
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
