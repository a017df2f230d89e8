// Vector ops for avx2: instantiations only (built with this ISA's flags, lib/kernels/CMakeLists.txt).
#include "kernels/simd/vector_ops_inl.hpp"

template struct sparq::kernels::WidenRow<xsimd::fma3<xsimd::avx2>>;
template struct sparq::kernels::WidenI8Row<xsimd::fma3<xsimd::avx2>>;
template struct sparq::kernels::Exp2Row<xsimd::fma3<xsimd::avx2>>;
template struct sparq::kernels::ClampScoreRow<xsimd::fma3<xsimd::avx2>>;
template struct sparq::kernels::SumRows<xsimd::fma3<xsimd::avx2>>;
