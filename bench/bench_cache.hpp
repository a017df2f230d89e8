// Synthetic cache contents shared by the decode benchmarks: deterministic values filled
// fast enough for caches of many gigabytes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include <benchmark/benchmark.h>

#include "sparq/kv_cache.hpp"
#include "sparq/tools/machine.hpp"

namespace sparq::bench {

// Deterministic values in [-1, 1) (filling gigabytes with std::normal_distribution would
// dominate the run).
inline void fill(std::vector<float>& x, std::uint32_t seed) {
  std::uint64_t s = 0x9e3779b97f4a7c15ull * (seed + 1);
  for (float& v : x) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v = float(std::int32_t(s >> 32)) * 0x1p-31f;
  }
}

// Appends S synthetic tokens to every layer of `seq`, in prefill chunks of 2048. With
// heavy_every > 0, every heavy_every-th key is scaled by 3 so that some positions stand
// out, as heavy hitters do in real attention.
inline void append_synthetic(KVCache& cache, SeqId seq, std::size_t S, std::size_t heavy_every = 0) {
  const CacheConfig& c = cache.config();
  const std::size_t chunk = 2048, row = c.kv_heads * c.head_dim;
  std::vector<float> k(chunk * row), v(chunk * row);
  fill(k, 1);
  fill(v, 2);
  if (heavy_every)
    for (std::size_t t = 0; t < chunk; t += heavy_every)
      for (std::size_t i = 0; i < row; ++i) k[t * row + i] *= 3.0f;
  for (std::size_t layer = 0; layer < c.layers; ++layer)
    for (std::size_t t = 0; t < S; t += chunk) {
      const std::size_t n = std::min(chunk, S - t);
      cache.append(seq, layer, std::span(k).first(n * row), std::span(v).first(n * row), n);
    }
}

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
