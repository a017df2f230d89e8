// AVX2 + FMA + F16C instantiation of the SparQ topk kernels; built with this ISA's flags only.
#include "kernels/sparq/sparq_topk_inl.hpp"

namespace sparq::kernels {
template struct SparqTopkKeys<xsimd::fma3<xsimd::avx2>>;
template struct SparqTopkCollect<xsimd::fma3<xsimd::avx2>>;
template struct SparqTopkEmit<xsimd::fma3<xsimd::avx2>>;
}  // namespace sparq::kernels
