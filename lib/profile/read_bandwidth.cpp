// measure_read_bandwidth() and ReadBandwidthMeter: STREAM-like read ("sum") over a
// buffer far above the last-level cache.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "profile/peak_kernels.hpp"
#include "profile/pinned_arena.hpp"
#include "sparq/error.hpp"
#include "sparq/machine.hpp"

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

  ReadBandwidth result;
  result.buffer_bytes = impl_->bytes;
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
    const double pass_bytes = double(part) * double(threads) * sizeof(float);
    std::vector<float> sums(threads, 0.0f);
    const auto pass = [&] {
      return arena.run(threads, [&](std::size_t i) { sums[i] = profile::read_sum(isa, data + i * part, part); });
    };
    std::size_t joined = pass();  // warm-up: wakes the workers, fills the TLB
    std::vector<double> rates;
    for (std::size_t r = 0; r < options.repeats; ++r) {
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
  std::size_t max_threads = 0;
  for (std::size_t t : options.thread_counts) max_threads = std::max(max_threads, t);
  const ReadBandwidthMeter meter(options.buffer_bytes, max_threads, options.pin_threads);
  return meter.measure(options);
}

}  // namespace sparq
