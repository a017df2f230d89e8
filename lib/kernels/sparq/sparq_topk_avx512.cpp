// AVX-512 (avx512bw) instantiation of the SparQ topk kernels; built with this ISA's flags only.
#include "kernels/sparq/sparq_topk_inl.hpp"

namespace sparq::kernels {
template struct SparqTopkKeys<xsimd::avx512bw>;
template struct SparqTopkCollect<xsimd::avx512bw>;
template struct SparqTopkEmit<xsimd::avx512bw>;
}  // namespace sparq::kernels
