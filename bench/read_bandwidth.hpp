// A small STREAM-like read-bandwidth measurement for the benchmarks: `threads` workers
// (in a task_arena of that size) each sum their contiguous share of a buffer far larger
// than the last-level cache. Baseline SSE2 loads: 16-byte loads, 8 independent sums,
// ~40 B/cycle of load issue, well above what DRAM delivers to one core.
// (lib/profile will carry the library's own measurement; this one is deliberately tiny.)
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include <emmintrin.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>

namespace sparq::bench {

namespace detail {
inline float sum_floats(const float* p, std::size_t n) {
  __m128 a[8];
  for (auto& x : a) x = _mm_setzero_ps();
  for (std::size_t i = 0; i + 32 <= n; i += 32)
    for (int k = 0; k < 8; ++k) a[k] = _mm_add_ps(a[k], _mm_load_ps(p + i + 4 * k));
  for (int k = 1; k < 8; ++k) a[0] = _mm_add_ps(a[0], a[k]);
  float o[4];
  _mm_storeu_ps(o, a[0]);
  return o[0] + o[1] + o[2] + o[3];
}
}  // namespace detail

struct ReadBandwidth {
  double median_gbs = 0;
  double best_gbs = 0;
};

// Median and best of `reps` passes over `bytes` (first touched by the same workers).
inline ReadBandwidth measure_read_bandwidth(std::size_t threads, std::size_t bytes = std::size_t{1} << 30,
                                            int reps = 9) {
  const std::size_t n = bytes / sizeof(float) / (32 * threads) * (32 * threads);
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> buf(static_cast<float*>(std::aligned_alloc(4096, n * sizeof(float))));
  tbb::task_arena arena{int(threads)};
  const std::size_t share = n / threads;
  auto each_share = [&](auto&& f) {
    arena.execute([&] {
      tbb::parallel_for(std::size_t{0}, threads, [&](std::size_t t) { f(buf.get() + t * share); },
                        tbb::static_partitioner());
    });
  };
  each_share([&](float* p) { std::memset(p, 0, share * sizeof(float)); });
  std::vector<double> gbs;
  volatile float sink = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    each_share([&](float* p) { sink = sink + detail::sum_floats(p, share); });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    gbs.push_back(double(n * sizeof(float)) / s * 1e-9);
  }
  std::sort(gbs.begin(), gbs.end());
  return {gbs[gbs.size() / 2], gbs.back()};
}

}  // namespace sparq::bench
