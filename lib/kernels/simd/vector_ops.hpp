// Row-level entry points to the register helpers of load_convert.hpp, one instantiation
// per ISA: what the tests compare against lib/cache/element.hpp and std::exp2, and what
// baseline code may call when it needs a widened row.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/simd/arch_list.hpp"
#include "sparq/types.hpp"

namespace sparq::kernels {

// dst[0, n) = src[0, n) of storage type dtype, widened to f32.
template <class Arch>
struct WidenRow {
  void operator()(Arch, DType dtype, const void* src, float* dst, std::size_t n) const;
};

// dst[0, n) = int8 src[0, n) widened to f32 (the quantized d-major key copy).
template <class Arch>
struct WidenI8Row {
  void operator()(Arch, const std::int8_t* src, float* dst, std::size_t n) const;
};

// y[i] = 2^x[i] by kernels::exp2<Arch>.
template <class Arch>
struct Exp2Row {
  void operator()(Arch, const float* x, float* y, std::size_t n) const;
};

// y[i] = x[i] clamped to [-limit, limit] by kernels::clamp_score<Arch> (NaN kept), or by
// kernels::rank_score<Arch> (NaN to -limit) when `rank`.
template <class Arch>
struct ClampScoreRow {
  void operator()(Arch, const float* x, float* y, std::size_t n, float limit, bool rank) const;
};

// sums[i] = sum of row i of rows [W][W] (W = this variant's f32 lanes, returned), by
// kernels::row_sums<Arch>.
template <class Arch>
struct SumRows {
  std::size_t operator()(Arch, const float* rows, float* sums) const;
};

#define SPARQ_EXTERN_VECTOR_OPS(isa, arch)    \
  extern template struct WidenRow<arch>;      \
  extern template struct WidenI8Row<arch>;    \
  extern template struct Exp2Row<arch>;       \
  extern template struct ClampScoreRow<arch>; \
  extern template struct SumRows<arch>;
SPARQ_FOR_EACH_ARCH(SPARQ_EXTERN_VECTOR_OPS)
#undef SPARQ_EXTERN_VECTOR_OPS

}  // namespace sparq::kernels
