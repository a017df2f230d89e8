// Matrix products of the model runtime: y = x · Wᵀ for a chunk of tokens, on OpenBLAS's
// sgemm when the library can be loaded, else on a portable loop.
//
// OpenBLAS is loaded with dlopen("libopenblas.so.0") on first use rather than linked:
// Debian 12's OpenBLAS 0.3.21 does not recognise recent Xeons (family 6 model 207 here)
// and falls back to its SSE3 "Prescott" kernels (14 GFLOP/s against 59 with its SkylakeX
// kernels, one core, 256x1408x512). Its CPU choice is made once, when the library is
// loaded, from the environment variable OPENBLAS_CORETYPE; so, unless the user set it, we
// set it to the best kernel family the CPU supports (SkylakeX with AVX-512, Haswell with
// AVX2 + FMA) just before loading. Either build of the library works (serial, pthread,
// openmp): its own threading is set to 1 and the runtime splits products over TBB
// threads in fixed column blocks, so results do not depend on the thread count.
// SPARQ_BLAS=off in the environment selects the portable loops (tested that way too).
#pragma once

#include <cstddef>

namespace sparq::model {

// y[n][out] = x[n][in] · W[out][in]ᵀ (+ y when accumulate). Row-major, contiguous.
void linear(const float* x, std::size_t n, std::size_t in, const float* w, std::size_t out, float* y, bool accumulate);

// C[m][n] = alpha · A[m][k] · B[n][k]ᵀ + beta · C, with leading dimensions (one call,
// one thread; for the attention baselines' small products).
void gemm_nt(std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a, std::size_t lda, const float* b,
             std::size_t ldb, float beta, float* c, std::size_t ldc);
// C[m][n] = A[m][k] · B[k][n] (+ C when accumulate).
void gemm_nn(std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda, const float* b,
             std::size_t ldb, float* c, std::size_t ldc, bool accumulate);

// blas_in_use() (llama_model.hpp) describes which of the two is in use.

}  // namespace sparq::model
