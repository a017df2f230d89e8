// DenseChunk for avx512: instantiations only (built with this ISA's flags,
// lib/kernels/CMakeLists.txt): the portable loops and the two AVX-512 kernels.
#include "kernels/dense/dense_decode_inl.hpp"

template struct sparq::kernels::DenseChunk<xsimd::avx512bw>;
template struct sparq::kernels::DenseChunk<xsimd::avx512bw, sparq::kernels::DenseLoops::rows16>;
