// AVX-512 (avx512bw) instantiation of the SparQ stage2 kernels; built with this ISA's flags only.
#include "kernels/sparq/sparq_stage2_inl.hpp"

namespace sparq::kernels {
template struct SparqStage2<xsimd::avx512bw>;
}  // namespace sparq::kernels
