// The one list of compiled SIMD variants (best first). It drives runtime dispatch
// (dispatch_isa below), the extern-template declarations of every kernel family
// (SPARQ_FOR_EACH_ARCH), the typed tests and the benchmarks. Adding a variant is one
// line here plus one flag set in cmake/SparqAreas.cmake and one instantiation file per family.
//
// Only names xsimd architecture tag types; including it in a baseline TU instantiates
// no ISA code (the kernels are extern templates, defined in per-ISA object files).
#pragma once

#include <cstddef>
#include <utility>
#include <xsimd/xsimd.hpp>

#include "sparq/isa.hpp"

// X(isa enumerator, xsimd architecture). xsimd 8.1's avx512bw needs -mavx512{f,cd,dq,bw};
// fma3<avx2> is AVX2 + FMA (we also require F16C for it, see isa.cpp); sse2 is the
// x86-64 baseline.
#define SPARQ_FOR_EACH_ARCH(X)          \
  X(avx512, ::xsimd::avx512bw)          \
  X(avx2, ::xsimd::fma3<::xsimd::avx2>) \
  X(generic, ::xsimd::sse2)

namespace sparq::kernels {

template <Isa I>
struct arch_for;
#define SPARQ_ARCH_FOR(isa, arch) \
  template <>                     \
  struct arch_for<Isa::isa> {     \
    using type = arch;            \
  };
SPARQ_FOR_EACH_ARCH(SPARQ_ARCH_FOR)
#undef SPARQ_ARCH_FOR

template <class Arch>
inline constexpr Isa isa_of = [] {
#define SPARQ_ISA_OF(isa, arch)             \
  if constexpr (std::is_same_v<Arch, arch>) \
    return Isa::isa;                        \
  else
  SPARQ_FOR_EACH_ARCH(SPARQ_ISA_OF)
#undef SPARQ_ISA_OF
  return Isa::generic;
}();

// Compiled variants, best first (the same order as Isa's enumerators).
inline constexpr Isa kCompiledIsas[] = {
#define SPARQ_ISA_ENTRY(isa, arch) Isa::isa,
    SPARQ_FOR_EACH_ARCH(SPARQ_ISA_ENTRY)
#undef SPARQ_ISA_ENTRY
};
inline constexpr std::size_t kCompiledIsaCount = std::size(kCompiledIsas);

// Widest float batch of any compiled variant: sizes of scratch buffers shared by all.
inline constexpr std::size_t kMaxLanes = 16;

// Calls f(Arch{}) for the variant `isa` (the caller has checked that the CPU runs it).
// Dispatch happens once, above the loops: f runs the whole kernel for that Arch.
template <class F>
decltype(auto) dispatch_isa(Isa isa, F&& f) {
  switch (isa) {
#define SPARQ_DISPATCH_CASE(isa, arch) \
  case Isa::isa:                       \
    return std::forward<F>(f)(arch{});
    SPARQ_FOR_EACH_ARCH(SPARQ_DISPATCH_CASE)
#undef SPARQ_DISPATCH_CASE
  }
  return std::forward<F>(f)(typename arch_for<Isa::generic>::type{});
}

}  // namespace sparq::kernels
