// DenseChunk for generic: instantiation only (built with this ISA's flags, sources.cmake).
#include "kernels/dense_decode_inl.hpp"

template struct sparq::kernels::DenseChunk<xsimd::sse2>;
