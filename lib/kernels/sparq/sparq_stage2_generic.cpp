// x86-64 baseline (SSE2) instantiation of the SparQ stage2 kernels; built with this ISA's flags only.
#include "kernels/sparq/sparq_stage2_inl.hpp"

namespace sparq::kernels {
template struct SparqStage2<xsimd::sse2>;
}  // namespace sparq::kernels
