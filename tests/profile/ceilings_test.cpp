// The measured ceilings: the FMA peak and the scattered read are smoke-tested; the peak
// kernels compute what they claim on every ISA this CPU runs; bad options are rejected.
// (The read ceiling's check against an independent read is read_ceiling_test.cpp.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "roofline/peak_kernels.hpp"
#include "sparq/error.hpp"
#include "sparq/tools/machine.hpp"

namespace sparq {
namespace {

TEST(Machine, DescribesThisMachine) {
  const MachineInfo m = describe_machine();
  EXPECT_FALSE(m.cpu_model.empty());
  EXPECT_GE(m.hardware_threads, 1u);
  EXPECT_GE(m.cores, 1u);
  EXPECT_LE(m.cores, m.hardware_threads);
  EXPECT_GE(m.numa_nodes, 1u);
  const std::size_t buf = default_read_buffer_bytes(m);
  EXPECT_GE(buf, std::size_t{64} << 20);
  EXPECT_LE(buf, std::size_t{1024} << 20);
  EXPECT_EQ(buf % (std::size_t{2} << 20), 0u);
}

TEST(PeakKernels, ReadSumAndFmaChainsOnEveryIsa) {
  std::vector<float, std::allocator<float>> raw(4 * profile::kReadSumStep + 64, 1.0f);
  // 64-byte aligned start inside the vector.
  auto* p = raw.data();
  while (reinterpret_cast<std::uintptr_t>(p) % 64) ++p;
  for (Isa isa : compiled_isas()) {
    if (!cpu_supports(isa)) {
      GTEST_LOG_(INFO) << "skipping isa=" << to_string(isa) << ": not supported by this CPU";
      continue;
    }
    EXPECT_EQ(profile::read_sum(isa, p, 2 * profile::kReadSumStep), float(2 * profile::kReadSumStep))
        << "isa=" << to_string(isa);
    // Every chain converges to 1: the sum is chains x lanes.
    const float f = profile::fma_chains(isa, 20000, 1.0f);
    const float expected = float(profile::fma_chain_count(isa) * profile::fma_lanes(isa));
    EXPECT_NEAR(f, expected, 1e-3f * expected) << "isa=" << to_string(isa);  // float rounding of the fixed point
    EXPECT_EQ(profile::fma_flops_per_iteration(isa), profile::fma_chain_count(isa) * profile::fma_lanes(isa) * 2);
  }
}

TEST(PeakKernels, ScatterSumReadsExactlyTheRunsOnEveryIsa) {
  // Buffer value = its index: the sum over chosen runs is known in closed form, so a run
  // read at the wrong place, read twice or cut short changes it.
  constexpr std::size_t kRunFloats = 16 * 3;  // 192 bytes: not a power of two
  constexpr std::size_t kRuns = 40;
  std::vector<float> raw(kRuns * kRunFloats + 64);
  auto* p = raw.data();
  while (reinterpret_cast<std::uintptr_t>(p) % 64) ++p;
  for (std::size_t i = 0; i < kRuns * kRunFloats; ++i) p[i] = float(i % 97);
  const std::vector<std::uint32_t> runs = {3, 0, 39, 3, 17, 22, 8, 31, 30, 1, 2, 5};  // longer than kScatterAhead
  double expected = 0.0;
  for (std::uint32_t r : runs)
    for (std::size_t j = 0; j < kRunFloats; ++j) expected += double((r * kRunFloats + j) % 97);
  for (Isa isa : compiled_isas()) {
    if (!cpu_supports(isa)) {
      GTEST_LOG_(INFO) << "skipping isa=" << to_string(isa) << ": not supported by this CPU";
      continue;
    }
    EXPECT_EQ(double(profile::scatter_sum(isa, p, runs.data(), runs.size(), kRunFloats)), expected)
        << "isa=" << to_string(isa);  // integers below 2^24: exact in float
  }
}

// Smoke test for the figures (finite, ordered; their size is not checked), real checks
// for the options: the pattern is reported as asked and bad groups are refused. The
// streaming read's size is checked in ReadCeilingMatchesAnIndependentRead.
TEST(Ceilings, ScatteredReadSmoke) {
  const ReadBandwidthMeter meter(16u << 20, 2);
  for (std::size_t run : {64u, 512u}) {
    const ReadBandwidth bw = meter.measure({.thread_counts = {1, 2}, .repeats = 3, .scattered = {.run_bytes = run}});
    EXPECT_EQ(bw.scattered.run_bytes, run);
    ASSERT_EQ(bw.samples.size(), 2u);
    for (const auto& s : bw.samples) {
      EXPECT_TRUE(std::isfinite(s.gb_per_s)) << "run=" << run << " threads=" << s.threads;
      EXPECT_GT(s.gb_per_s, 0.01) << "run=" << run << " threads=" << s.threads;
      EXPECT_LT(s.gb_per_s, 100000.0) << "run=" << run << " threads=" << s.threads;
      EXPECT_LE(s.worst_gb_per_s, s.gb_per_s);
      EXPECT_GE(s.best_gb_per_s, s.gb_per_s);
    }
  }
  // Grouped as a KV head's blocks: 16 runs in the first 64 KiB of every 192 KiB.
  const ReadBandwidth grouped = meter.measure(
      {.thread_counts = {2},
       .repeats = 3,
       .scattered = {
           .run_bytes = 512, .runs_per_group = 16, .group_bytes = 64u << 10, .group_stride_bytes = 192u << 10}});
  EXPECT_EQ(grouped.scattered.runs_per_group, 16u);
  EXPECT_EQ(grouped.scattered.group_stride_bytes, 192u << 10);
  ASSERT_EQ(grouped.samples.size(), 1u);
  EXPECT_GT(grouped.samples[0].gb_per_s, 0.01);
  EXPECT_EQ(meter.measure({.thread_counts = {1}, .repeats = 1}).scattered.run_bytes, 0u);
  // A group that cannot hold its runs, a stride shorter than the group, groups without runs.
  EXPECT_THROW(
      (void)meter.measure(
          {.thread_counts = {1},
           .scattered = {.run_bytes = 512, .runs_per_group = 4, .group_bytes = 1024, .group_stride_bytes = 4096}}),
      Error);
  EXPECT_THROW((void)meter.measure({.thread_counts = {1},
                                    .scattered = {.run_bytes = 512, .group_bytes = 4096, .group_stride_bytes = 2048}}),
               Error);
  EXPECT_THROW(
      (void)meter.measure({.thread_counts = {1}, .scattered = {.group_bytes = 4096, .group_stride_bytes = 8192}}),
      Error);
}

// Smoke test: the FMA peak runs and reports a finite figure (its size is not checked:
// nothing independent measures an FMA rate here); the kernels' arithmetic is checked in
// PeakKernels.ReadSumAndFmaChainsOnEveryIsa.
TEST(Ceilings, FmaPeakSmoke) {
  const FmaPeak peak = measure_fma_peak({.thread_counts = {1}, .repeats = 3, .seconds_per_pass = 0.01});
  ASSERT_EQ(peak.samples.size(), 1u);
  EXPECT_EQ(peak.isa, active_isa());
  EXPECT_GE(peak.chains, 8u);
  EXPECT_GE(peak.lanes, 4u);
  const FmaSample& s = peak.samples[0];
  EXPECT_TRUE(std::isfinite(s.gflops));
  EXPECT_GT(s.gflops, 0.1);
  EXPECT_LT(s.gflops, 100000.0);
  EXPECT_GE(s.best_gflops, s.gflops);
}

TEST(Ceilings, RejectsBadOptions) {
  EXPECT_THROW((void)measure_read_bandwidth({.thread_counts = {0}, .buffer_bytes = 4u << 20}), Error);
  EXPECT_THROW((void)measure_read_bandwidth({.thread_counts = {1}, .buffer_bytes = 1024}), Error);
  EXPECT_THROW((void)measure_read_bandwidth({.thread_counts = {1}, .buffer_bytes = 4u << 20, .repeats = 0}), Error);
  EXPECT_THROW(
      (void)measure_read_bandwidth({.thread_counts = {1}, .buffer_bytes = 4u << 20, .scattered = {.run_bytes = 100}}),
      Error);  // not a multiple of 64
  EXPECT_THROW((void)measure_read_bandwidth(
                   {.thread_counts = {1}, .buffer_bytes = 4u << 20, .scattered = {.run_bytes = 128u << 10}}),
               Error);  // longer than 64 KiB
  EXPECT_THROW((void)measure_fma_peak({.thread_counts = {1}, .seconds_per_pass = -1.0}), Error);
  EXPECT_THROW((void)measure_fma_peak({.thread_counts = {1}, .repeats = 0}), Error);
  for (Isa isa : compiled_isas()) {
    if (!cpu_supports(isa)) {
      EXPECT_THROW((void)measure_fma_peak({.thread_counts = {1}, .isa = isa}), Error) << "isa=" << to_string(isa);
    }
  }
}

}  // namespace
}  // namespace sparq
