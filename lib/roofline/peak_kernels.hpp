// Kernels of the machine-ceiling measurements (machine.hpp): a streaming read and
// independent FMA chains, one functor each templated on the xsimd architecture.
// Definitions live in peak_kernels_impl.hpp, included only by the per-ISA
// translation units (peak_kernels_<isa>.cpp), which are built with that ISA's flags
// and only instantiate; everything else sees the extern templates below.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/simd/arch_list.hpp"
#include "sparq/isa.hpp"

namespace sparq::profile {

// Sum of n floats at `data` (64-byte aligned, n a multiple of kReadSumStep). Reads
// every byte once, in order; the sum only keeps the loads alive.
inline constexpr std::size_t kReadSumStep = 1024;  // floats: 4 KiB, a multiple of every unroll

template <class Arch>
struct ReadSum {
  float operator()(Arch, const float* data, std::size_t n) const noexcept;
};

// Sum of n_runs runs of run_floats floats (a multiple of 16) at base + runs[i] *
// run_floats (64-byte aligned), read in order with the runs kScatterAhead places ahead
// prefetched into L1: the gathers of SparQ's stages read and prefetch this way.
inline constexpr std::size_t kScatterAhead = 8;

template <class Arch>
struct ScatterSum {
  float operator()(Arch, const float* base, const std::uint32_t* runs, std::size_t n_runs,
                   std::size_t run_floats) const noexcept;
};

// `iterations` rounds of one FMA on each of chains() independent accumulators kept in
// registers; returns a value derived from all of them so none is optimized away.
template <class Arch>
struct FmaChains {
  // Enough chains to cover FMA latency x issue width on current cores, few enough to
  // stay in registers (32 zmm on AVX-512; 16 ymm/xmm otherwise, two hold constants).
  // (Arch::alignment() is the vector width in bytes and is declared for every arch,
  // also in translation units built without that ISA's flags.)
  static constexpr std::size_t lanes() noexcept { return Arch::alignment() / sizeof(float); }
  static constexpr std::size_t chains() noexcept { return lanes() == 16 ? 16 : 12; }
  float operator()(Arch, std::uint64_t iterations, float seed) const noexcept;
};

// One variant per entry of the kernels' ISA list (kernels/arch_list.hpp).
#define SPARQ_PROFILE_EXTERN(isa, arch)    \
  extern template struct ReadSum<arch>;    \
  extern template struct ScatterSum<arch>; \
  extern template struct FmaChains<arch>;
SPARQ_FOR_EACH_ARCH(SPARQ_PROFILE_EXTERN)
#undef SPARQ_PROFILE_EXTERN

// Dispatch on a run-time Isa (the caller has checked cpu_supports(isa)).
float read_sum(Isa isa, const float* data, std::size_t n) noexcept;
float scatter_sum(Isa isa, const float* base, const std::uint32_t* runs, std::size_t n_runs,
                  std::size_t run_floats) noexcept;
float fma_chains(Isa isa, std::uint64_t iterations, float seed) noexcept;
// FLOPs of one iteration of fma_chains(isa): chains x lanes x 2.
std::uint64_t fma_flops_per_iteration(Isa isa) noexcept;
std::size_t fma_chain_count(Isa isa) noexcept;
std::size_t fma_lanes(Isa isa) noexcept;

}  // namespace sparq::profile
