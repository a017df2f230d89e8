// x86-64 baseline (SSE2) instantiation of the SparQ stage1 kernels; built with this ISA's flags only.
#include "kernels/sparq/sparq_stage1_inl.hpp"

namespace sparq::kernels {
template struct SparqStage1<xsimd::sse2>;
}  // namespace sparq::kernels
