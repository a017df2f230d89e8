// What the decode benchmarks share: the timing policy and the bandwidth counters. Their
// cold caches come from sparq/tools/cold_caches.hpp (build_cold_caches, fill_synthetic),
// the harness `sparq roofline` and `sparq layouts` use too.
#pragma once

#include <benchmark/benchmark.h>

#include <cstddef>
#include <map>

#include "sparq/tools/cold_caches.hpp"
#include "sparq/tools/machine.hpp"

namespace sparq::bench {

// The timing policy every decode benchmark uses, so dense and SparQ rows are measured
// the same way: median of 5 repetitions of real (wall) time, at least 0.2 s each.
inline void apply_decode_timing(benchmark::internal::Benchmark* b) {
  b->Repetitions(5)->DisplayAggregatesOnly(true)->UseRealTime()->MinTime(0.2)->Unit(benchmark::kMillisecond);
}

// Read bandwidth (GB/s) of `threads` pinned threads, measured once per thread count in
// this process with the library's own ceiling (sparq::measure_read_bandwidth, the
// figure `sparq roofline` divides by), before the first benchmark that needs it.
inline double read_bandwidth_gbs(std::size_t threads) {
  static std::map<std::size_t, double> measured;
  auto it = measured.find(threads);
  if (it == measured.end())
    it = measured.emplace(threads, measure_read_bandwidth({.thread_counts = {threads}}).samples.front().gb_per_s).first;
  return it->second;
}

// The bandwidth counters of every decode benchmark, as plain values (a rate counter
// would print "GB/s=15.6/s" and make the percentage a rate too): GB/s over the timed
// calls' wall time and its percentage of the read bandwidth measured in this process.
inline void set_bandwidth_counters(benchmark::State& state, double bytes_per_call, double seconds_per_call,
                                   double read_bw_gbs) {
  const double gbs = seconds_per_call > 0 ? bytes_per_call * 1e-9 / seconds_per_call : 0.0;
  state.counters["MB_per_call"] = bytes_per_call * 1e-6;
  state.counters["GB_per_s"] = gbs;
  state.counters["pct_read_bw"] = read_bw_gbs > 0 ? 100.0 * gbs / read_bw_gbs : 0.0;
  state.counters["read_bw_GB_per_s"] = read_bw_gbs;
}

}  // namespace sparq::bench
