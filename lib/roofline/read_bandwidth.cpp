// measure_read_bandwidth() and ReadBandwidthMeter: STREAM-like read ("sum") over a
// buffer far above the last-level cache, or a scattered read of short runs over it.
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "roofline/peak_kernels.hpp"
#include "roofline/pinned_arena.hpp"
#include "sparq/error.hpp"
#include "sparq/tools/machine.hpp"

namespace sparq {
namespace {

constexpr std::size_t kAlign = std::size_t{2} << 20;  // 2 MiB: transparent huge pages may back it
constexpr std::size_t kMaxThreads = 4096;

struct FreeDeleter {
  void operator()(float* p) const noexcept { std::free(p); }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

constexpr std::size_t kScatteredPassBytes = std::size_t{64} << 20;

// The checks that need no buffer (measure_read_bandwidth runs them before allocating).
void check_scattered(const ScatteredPattern& p) {
  if (p.run_bytes % 64 != 0 || p.run_bytes > ScatteredPattern::kMaxRunBytes)
    throw Error(ErrorCode::invalid_argument, "scattered run_bytes=" + std::to_string(p.run_bytes) +
                                                 ": must be a multiple of 64 bytes, at most 64 KiB");
  if (p.group_stride_bytes && (!p.run_bytes || p.runs_per_group < 1 || p.group_bytes < p.runs_per_group * p.run_bytes ||
                               p.group_stride_bytes < p.group_bytes))
    throw Error(
        ErrorCode::invalid_argument,
        "scattered groups of " + std::to_string(p.runs_per_group) + " runs in " + std::to_string(p.group_bytes) +
            " bytes every " + std::to_string(p.group_stride_bytes) +
            " bytes: need run_bytes, at least one run, runs x run_bytes <= group bytes <= stride <= the buffer");
}

struct RunPattern {
  std::size_t total_runs = 0;   // runs in the buffer
  std::size_t per_group = 1;    // runs per group
  std::size_t group_runs = 0;   // span of a group in runs; 0: uniform over the buffer
  std::size_t stride_runs = 0;  // group starts apart, in runs
};

// Run indices of one thread's part of one pass: a fixed pseudo-random sequence
// (splitmix64) per (pass, thread), so that consecutive passes read different runs and
// the last-level cache keeps almost nothing of the previous pass.
void scattered_runs(std::uint64_t seed, const RunPattern& p, std::vector<std::uint32_t>& out) {
  const auto next = [&seed] {
    std::uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  if (p.group_runs == 0) {
    for (auto& r : out) r = std::uint32_t(next() % p.total_runs);
    return;
  }
  // Groups one stride apart from a random start; inside a group, per_group distinct
  // places (a partial Fisher-Yates draw), sorted.
  const std::size_t groups = std::max<std::size_t>(1, p.total_runs / p.stride_runs);
  std::size_t group = next() % groups;
  std::vector<std::uint32_t> slots(p.group_runs);
  for (std::size_t i = 0; i < out.size();) {
    for (std::size_t j = 0; j < p.group_runs; ++j) slots[j] = std::uint32_t(j);
    const std::size_t n = std::min(p.per_group, out.size() - i);
    for (std::size_t j = 0; j < n; ++j) std::swap(slots[j], slots[j + next() % (p.group_runs - j)]);
    std::sort(slots.begin(), slots.begin() + std::ptrdiff_t(n));
    for (std::size_t j = 0; j < n; ++j) out[i + j] = std::uint32_t(group * p.stride_runs + slots[j]);
    i += n;
    group = (group + 1) % groups;
  }
}

void check_threads(std::size_t t) {
  if (t < 1 || t > kMaxThreads)
    throw Error(ErrorCode::invalid_argument, "thread count " + std::to_string(t) + " out of range: must be in [1, " +
                                                 std::to_string(kMaxThreads) + "]");
}

}  // namespace

struct ReadBandwidthMeter::Impl {
  std::unique_ptr<float[], FreeDeleter> buffer;
  std::size_t bytes = 0;
  std::size_t hardware_threads = 1;
};

ReadBandwidthMeter::ReadBandwidthMeter(std::size_t buffer_bytes, std::size_t max_threads, bool pin_threads)
    : impl_(std::make_unique<Impl>()) {
  const MachineInfo machine = describe_machine();
  impl_->hardware_threads = machine.hardware_threads;
  if (max_threads == 0) max_threads = machine.hardware_threads;
  check_threads(max_threads);
  std::size_t bytes = buffer_bytes ? buffer_bytes : default_read_buffer_bytes(machine);
  if (bytes < (std::size_t{1} << 20))
    throw Error(ErrorCode::invalid_argument,
                "buffer_bytes=" + std::to_string(bytes) + " too small: must be at least 1 MiB");
  bytes = (bytes + kAlign - 1) / kAlign * kAlign;
  impl_->buffer.reset(static_cast<float*>(std::aligned_alloc(kAlign, bytes)));
  if (!impl_->buffer)
    throw Error(ErrorCode::capacity_exhausted,
                "cannot allocate a read buffer of " + std::to_string(bytes >> 20) + " MiB");
  impl_->bytes = bytes;
  // Transparent huge pages, as the cache's slabs have (block_pool.cpp): the ceiling is
  // the read of the same kind of memory the kernels read (15-25% above 4 KiB pages here:
  // docs/performance.md). Advisory: without THP both fall back to small pages.
  madvise(impl_->buffer.get(), bytes, MADV_HUGEPAGE);
  // First touch in parallel so that each part's pages live near the thread that reads
  // it most (matters on multi-node machines only).
  const std::size_t n = bytes / sizeof(float);
  profile::PinnedArena arena(max_threads, pin_threads);
  const std::size_t chunk = n / max_threads;
  float* data = impl_->buffer.get();
  arena.run(max_threads, [&](std::size_t i) {
    const std::size_t end = i + 1 == max_threads ? n : (i + 1) * chunk;
    std::fill(data + i * chunk, data + end, 1.0f);
  });
}

ReadBandwidthMeter::~ReadBandwidthMeter() = default;

std::size_t ReadBandwidthMeter::buffer_bytes() const noexcept {
  return impl_->bytes;
}

ReadBandwidth ReadBandwidthMeter::measure(const ReadBandwidthOptions& options) const {
  std::vector<std::size_t> counts = options.thread_counts;
  if (counts.empty())
    for (std::size_t t = 1; t <= impl_->hardware_threads; ++t) counts.push_back(t);
  for (std::size_t t : counts) check_threads(t);
  if (options.repeats < 1) throw Error(ErrorCode::invalid_argument, "repeats=0: must be at least 1");
  const Isa isa = options.isa.value_or(active_isa());
  if (!cpu_supports(isa))
    throw Error(ErrorCode::unsupported, "isa=" + std::string(to_string(isa)) + " cannot run on this CPU");

  const ScatteredPattern& sp = options.scattered;
  check_scattered(sp);
  const std::size_t run_bytes = sp.run_bytes;
  const std::size_t total_runs = run_bytes ? impl_->bytes / run_bytes : 0;
  if (total_runs > UINT32_MAX)
    throw Error(ErrorCode::invalid_argument, "scattered run_bytes=" + std::to_string(run_bytes) +
                                                 " is too small for a buffer of " + std::to_string(impl_->bytes >> 20) +
                                                 " MiB (more than 2^32 runs)");
  if (sp.group_stride_bytes > impl_->bytes)
    throw Error(ErrorCode::invalid_argument, "scattered group_stride_bytes=" + std::to_string(sp.group_stride_bytes) +
                                                 " exceeds the buffer of " + std::to_string(impl_->bytes) + " bytes");
  RunPattern pattern{.total_runs = total_runs, .per_group = sp.runs_per_group};
  if (sp.group_stride_bytes) {
    pattern.group_runs = sp.group_bytes / run_bytes;
    pattern.stride_runs = std::max<std::size_t>(1, sp.group_stride_bytes / run_bytes);
  }
  ReadBandwidth result;
  result.buffer_bytes = impl_->bytes;
  result.scattered = sp;
  result.isa = isa;
  result.pinned = options.pin_threads;
  const float* data = impl_->buffer.get();
  const std::size_t n = impl_->bytes / sizeof(float);
  volatile float sink = 0.0f;
  for (std::size_t threads : counts) {
    profile::PinnedArena arena(threads, options.pin_threads);
    // Parts: equal, multiples of the kernel's step; the remainder is not read.
    const std::size_t part = n / threads / profile::kReadSumStep * profile::kReadSumStep;
    if (part == 0)
      throw Error(ErrorCode::invalid_argument, "buffer of " + std::to_string(impl_->bytes) +
                                                   " bytes is too small for " + std::to_string(threads) + " threads");
    // Scattered: each thread reads its own sequence of runs spread over the whole buffer.
    const std::size_t runs_per_thread =
        run_bytes ? std::max<std::size_t>(1, std::min(kScatteredPassBytes, impl_->bytes / 4) / run_bytes / threads) : 0;
    std::vector<std::vector<std::uint32_t>> runs(run_bytes ? threads : 0, std::vector<std::uint32_t>(runs_per_thread));
    std::uint64_t pass_no = 0;
    const auto prepare = [&] {
      for (std::size_t i = 0; i < runs.size(); ++i) scattered_runs((pass_no << 32) + i, pattern, runs[i]);
      ++pass_no;
    };
    const double pass_bytes = run_bytes ? double(runs_per_thread) * double(run_bytes) * double(threads)
                                        : double(part) * double(threads) * sizeof(float);
    std::vector<float> sums(threads, 0.0f);
    const auto pass = [&] {
      if (run_bytes)
        return arena.run(threads, [&](std::size_t i) {
          sums[i] = profile::scatter_sum(isa, data, runs[i].data(), runs_per_thread, run_bytes / sizeof(float));
        });
      return arena.run(threads, [&](std::size_t i) { sums[i] = profile::read_sum(isa, data + i * part, part); });
    };
    prepare();
    std::size_t joined = pass();  // warm-up: wakes the workers, fills the TLB
    std::vector<double> rates;
    for (std::size_t r = 0; r < options.repeats; ++r) {
      prepare();
      const auto t0 = std::chrono::steady_clock::now();
      joined = std::min(joined, pass());
      const auto t1 = std::chrono::steady_clock::now();
      rates.push_back(pass_bytes / std::chrono::duration<double>(t1 - t0).count() * 1e-9);
    }
    for (float s : sums) sink = sink + s;
    BandwidthSample sample;
    sample.threads = threads;
    sample.gb_per_s = median(rates);
    sample.best_gb_per_s = *std::max_element(rates.begin(), rates.end());
    sample.worst_gb_per_s = *std::min_element(rates.begin(), rates.end());
    sample.threads_joined = joined;
    result.samples.push_back(sample);
    result.pinned = result.pinned && arena.pinned();
  }
  return result;
}

const BandwidthSample* ReadBandwidth::at(std::size_t threads) const noexcept {
  for (const auto& s : samples)
    if (s.threads == threads) return &s;
  return nullptr;
}

ReadBandwidth measure_read_bandwidth(const ReadBandwidthOptions& options) {
  // Validate before allocating.
  for (std::size_t t : options.thread_counts) check_threads(t);
  if (options.repeats < 1) throw Error(ErrorCode::invalid_argument, "repeats=0: must be at least 1");
  check_scattered(options.scattered);
  std::size_t max_threads = 0;
  for (std::size_t t : options.thread_counts) max_threads = std::max(max_threads, t);
  const ReadBandwidthMeter meter(options.buffer_bytes, max_threads, options.pin_threads);
  return meter.measure(options);
}

}  // namespace sparq
