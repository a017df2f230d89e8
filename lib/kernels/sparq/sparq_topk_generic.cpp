// x86-64 baseline (SSE2) instantiation of the SparQ topk kernels; built with this ISA's flags only.
#include "kernels/sparq/sparq_topk_inl.hpp"

namespace sparq::kernels {
template struct SparqTopkKeys<xsimd::sse2>;
template struct SparqTopkCollect<xsimd::sse2>;
template struct SparqTopkEmit<xsimd::sse2>;
}  // namespace sparq::kernels
