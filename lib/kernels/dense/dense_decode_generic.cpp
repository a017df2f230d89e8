// DenseChunk for generic: instantiation only (built with this ISA's flags, lib/kernels/CMakeLists.txt).
#include "kernels/dense/dense_decode_inl.hpp"

template struct sparq::kernels::DenseChunk<xsimd::sse2>;
