// AVX2 + FMA + F16C instantiation of the SparQ stage1 kernels; built with this ISA's flags only.
#include "kernels/sparq/sparq_stage1_inl.hpp"

namespace sparq::kernels {
template struct SparqStage1<xsimd::fma3<xsimd::avx2>>;
}  // namespace sparq::kernels
