// measure_fma_peak(): f32 FMA throughput from independent chains in registers.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "roofline/peak_kernels.hpp"
#include "roofline/pinned_arena.hpp"
#include "sparq/error.hpp"
#include "sparq/tools/machine.hpp"

namespace sparq {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

const FmaSample* FmaPeak::at(std::size_t threads) const noexcept {
  for (const auto& s : samples)
    if (s.threads == threads) return &s;
  return nullptr;
}

FmaPeak measure_fma_peak(const FmaPeakOptions& options) {
  const MachineInfo machine = describe_machine();
  std::vector<std::size_t> counts = options.thread_counts;
  if (counts.empty())
    for (std::size_t t = 1; t <= machine.hardware_threads; ++t) counts.push_back(t);
  for (std::size_t t : counts)
    if (t < 1 || t > 4096)
      throw Error(ErrorCode::invalid_argument,
                  "thread count " + std::to_string(t) + " out of range: must be in [1, 4096]");
  if (options.repeats < 1) throw Error(ErrorCode::invalid_argument, "repeats=0: must be at least 1");
  if (!(options.seconds_per_pass > 0) || !std::isfinite(options.seconds_per_pass))
    throw Error(ErrorCode::invalid_argument, "seconds_per_pass must be a positive finite number");
  const Isa isa = options.isa.value_or(active_isa());
  if (!cpu_supports(isa))
    throw Error(ErrorCode::unsupported, "isa=" + std::string(to_string(isa)) + " cannot run on this CPU");

  FmaPeak result;
  result.isa = isa;
  result.chains = profile::fma_chain_count(isa);
  result.lanes = profile::fma_lanes(isa);
  const double flops_per_iteration = double(profile::fma_flops_per_iteration(isa));

  // Calibrate on this thread: iterations for one pass of about seconds_per_pass.
  volatile float sink = 0.0f;
  std::uint64_t iterations = 1 << 14;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    sink = sink + profile::fma_chains(isa, iterations, 1.0f);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s >= 0.01 || iterations >= (std::uint64_t{1} << 40)) {
      iterations =
          std::max<std::uint64_t>(1, std::uint64_t(double(iterations) * options.seconds_per_pass / std::max(s, 1e-9)));
      break;
    }
    iterations *= 4;
  }

  for (std::size_t threads : counts) {
    profile::PinnedArena arena(threads, options.pin_threads);
    std::vector<float> out(threads, 0.0f);
    const auto pass = [&] {
      arena.run(threads, [&](std::size_t i) { out[i] = profile::fma_chains(isa, iterations, 1.0f + float(i)); });
    };
    pass();  // warm-up (also lets AVX-512 frequency licences settle)
    std::vector<double> rates;
    for (std::size_t r = 0; r < options.repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      pass();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      rates.push_back(flops_per_iteration * double(iterations) * double(threads) / s * 1e-9);
    }
    for (float v : out) sink = sink + v;
    result.samples.push_back({threads, median(rates), *std::max_element(rates.begin(), rates.end())});
  }
  return result;
}

}  // namespace sparq
