// Run-time choice among the per-ISA peak kernels (built without ISA flags).
#include "roofline/peak_kernels.hpp"

namespace sparq::profile {

float read_sum(Isa isa, const float* data, std::size_t n) noexcept {
  return kernels::dispatch_isa(isa, [&](auto arch) { return ReadSum<decltype(arch)>{}(arch, data, n); });
}

float scatter_sum(Isa isa, const float* base, const std::uint32_t* runs, std::size_t n_runs,
                  std::size_t run_floats) noexcept {
  return kernels::dispatch_isa(
      isa, [&](auto arch) { return ScatterSum<decltype(arch)>{}(arch, base, runs, n_runs, run_floats); });
}

float fma_chains(Isa isa, std::uint64_t iterations, float seed) noexcept {
  return kernels::dispatch_isa(isa, [&](auto arch) { return FmaChains<decltype(arch)>{}(arch, iterations, seed); });
}

std::size_t fma_chain_count(Isa isa) noexcept {
  return kernels::dispatch_isa(isa, [](auto arch) { return FmaChains<decltype(arch)>::chains(); });
}

std::size_t fma_lanes(Isa isa) noexcept {
  return kernels::dispatch_isa(isa, [](auto arch) { return FmaChains<decltype(arch)>::lanes(); });
}

std::uint64_t fma_flops_per_iteration(Isa isa) noexcept {
  return std::uint64_t(fma_chain_count(isa)) * fma_lanes(isa) * 2;
}

}  // namespace sparq::profile
