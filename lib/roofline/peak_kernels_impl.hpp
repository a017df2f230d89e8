// Definitions of the peak kernels; include only from peak_kernels_<isa>.cpp.
#pragma once

#include <array>
#include <utility>

#include "roofline/peak_kernels.hpp"

namespace sparq::profile {

template <class Arch>
float ReadSum<Arch>::operator()(Arch, const float* data, std::size_t n) const noexcept {
  using B = xsimd::batch<float, Arch>;
  constexpr std::size_t W = B::size;
  // 8 independent accumulators: the loads, not the add latency, are then the limit at
  // every width (docs/performance.md, "Machine ceilings").
  constexpr std::size_t U = 8;
  B a0(0.0f), a1(0.0f), a2(0.0f), a3(0.0f), a4(0.0f), a5(0.0f), a6(0.0f), a7(0.0f);
  for (std::size_t i = 0; i < n; i += U * W) {
    a0 += B::load_aligned(data + i + 0 * W);
    a1 += B::load_aligned(data + i + 1 * W);
    a2 += B::load_aligned(data + i + 2 * W);
    a3 += B::load_aligned(data + i + 3 * W);
    a4 += B::load_aligned(data + i + 4 * W);
    a5 += B::load_aligned(data + i + 5 * W);
    a6 += B::load_aligned(data + i + 6 * W);
    a7 += B::load_aligned(data + i + 7 * W);
  }
  return xsimd::hadd(((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)));
}

template <class Arch>
float ScatterSum<Arch>::operator()(Arch, const float* base, const std::uint32_t* runs, std::size_t n_runs,
                                   std::size_t run_floats) const noexcept {
  using B = xsimd::batch<float, Arch>;
  constexpr std::size_t W = B::size;
  B acc(0.0f);  // one accumulator: scattered misses, not the add latency, set the pace
  for (std::size_t i = 0; i < n_runs; ++i) {
    if (i + kScatterAhead < n_runs) {
      const char* next = reinterpret_cast<const char*>(base + std::size_t(runs[i + kScatterAhead]) * run_floats);
      for (std::size_t b = 0; b < run_floats * sizeof(float); b += 64) __builtin_prefetch(next + b, 0, 3);
    }
    const float* run = base + std::size_t(runs[i]) * run_floats;
    for (std::size_t j = 0; j < run_floats; j += W) acc += B::load_aligned(run + j);
  }
  return xsimd::hadd(acc);
}

template <class Arch>
float FmaChains<Arch>::operator()(Arch, std::uint64_t iterations, float seed) const noexcept {
  using B = xsimd::batch<float, Arch>;
  constexpr std::size_t C = chains();
  // acc = acc * m + c converges to c / (1 - m) = 1: no overflow, no denormals.
  const B m(0.999f);
  const B c(0.001f);
  std::array<B, C> acc;
  for (std::size_t j = 0; j < C; ++j) acc[j] = B(seed + 0.01f * float(j));
  const auto step = [&]<std::size_t... J>(std::index_sequence<J...>) {
    ((acc[J] = xsimd::fma(acc[J], m, c)), ...);
  };
  for (std::uint64_t it = 0; it < iterations; ++it) step(std::make_index_sequence<C>{});
  B sum(0.0f);
  for (std::size_t j = 0; j < C; ++j) sum += acc[j];
  return xsimd::hadd(sum);
}

}  // namespace sparq::profile
