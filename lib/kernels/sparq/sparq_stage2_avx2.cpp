// AVX2 + FMA + F16C instantiation of the SparQ stage2 kernels; built with this ISA's flags only.
#include "kernels/sparq/sparq_stage2_inl.hpp"

namespace sparq::kernels {
template struct SparqStage2<xsimd::fma3<xsimd::avx2>>;
}  // namespace sparq::kernels
