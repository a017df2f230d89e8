// Vector ops for avx512: instantiations only (built with this ISA's flags, lib/kernels/CMakeLists.txt).
#include "kernels/simd/vector_ops_inl.hpp"

template struct sparq::kernels::WidenRow<xsimd::avx512bw>;
template struct sparq::kernels::WidenI8Row<xsimd::avx512bw>;
template struct sparq::kernels::Exp2Row<xsimd::avx512bw>;
template struct sparq::kernels::ClampScoreRow<xsimd::avx512bw>;
template struct sparq::kernels::SumRows<xsimd::avx512bw>;
