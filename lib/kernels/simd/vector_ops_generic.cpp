// Vector ops for generic: instantiations only (built with this ISA's flags, lib/kernels/CMakeLists.txt).
#include "kernels/simd/vector_ops_inl.hpp"

template struct sparq::kernels::WidenRow<xsimd::sse2>;
template struct sparq::kernels::WidenI8Row<xsimd::sse2>;
template struct sparq::kernels::Exp2Row<xsimd::sse2>;
template struct sparq::kernels::ClampScoreRow<xsimd::sse2>;
template struct sparq::kernels::SumRows<xsimd::sse2>;
