#include "model/linear.hpp"

#include <dlfcn.h>
#include <fmt/core.h>
#include <oneapi/tbb/parallel_for.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <string_view>

#include "sparq/tools/model/llama_model.hpp"

namespace sparq::model {

namespace {

// CBLAS constants (cblas.h), so that the build needs no BLAS headers.
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
using SgemmFn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
using SetThreadsFn = void (*)(int);
using NameFn = char* (*)();

struct Blas {
  SgemmFn sgemm = nullptr;
  std::string description;
};

const char* best_coretype() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return nullptr;
}

const Blas& blas() {
  static Blas b;
  static std::once_flag once;
  std::call_once(once, [] {
    if (const char* off = std::getenv("SPARQ_BLAS"); off != nullptr && std::string_view(off) == "off") {
      b.description = "portable loops (SPARQ_BLAS=off)";
      return;
    }
    const char* forced = std::getenv("OPENBLAS_CORETYPE");
    if (forced == nullptr)
      if (const char* best = best_coretype()) ::setenv("OPENBLAS_CORETYPE", best, 0);
    void* lib = ::dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      b.description = "portable loops (libopenblas.so.0 not found; Debian: apt-get install libopenblas0-serial)";
      return;
    }
    b.sgemm = reinterpret_cast<SgemmFn>(::dlsym(lib, "cblas_sgemm"));
    const auto set_threads = reinterpret_cast<SetThreadsFn>(::dlsym(lib, "openblas_set_num_threads"));
    const auto config = reinterpret_cast<NameFn>(::dlsym(lib, "openblas_get_config"));
    const auto core = reinterpret_cast<NameFn>(::dlsym(lib, "openblas_get_corename"));
    if (b.sgemm == nullptr) {
      b.description = "portable loops (libopenblas.so.0 has no cblas_sgemm)";
      return;
    }
    if (set_threads) set_threads(1);
    b.description = fmt::format("{} / {}{}", config ? config() : "OpenBLAS", core ? core() : "?",
                                forced ? " (OPENBLAS_CORETYPE set by the user)" : "");
  });
  return b;
}

// The portable fallback: plain loops, rows of B read contiguously.
void gemm_nt_loops(std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a, std::size_t lda,
                   const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      float acc[8] = {};
      std::size_t p = 0;
      for (; p + 8 <= k; p += 8)
        for (std::size_t u = 0; u < 8; ++u) acc[u] += a[i * lda + p + u] * b[j * ldb + p + u];
      float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
      for (; p < k; ++p) s += a[i * lda + p] * b[j * ldb + p];
      c[i * ldc + j] = alpha * s + (beta == 0.0f ? 0.0f : beta * c[i * ldc + j]);
    }
}

}  // namespace

void gemm_nt(std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a, std::size_t lda, const float* b,
             std::size_t ldb, float beta, float* c, std::size_t ldc) {
  if (m == 0 || n == 0) return;
  if (const SgemmFn f = blas().sgemm)
    f(kRowMajor, kNoTrans, kTrans, int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
  else
    gemm_nt_loops(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm_nn(std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda, const float* b,
             std::size_t ldb, float* c, std::size_t ldc, bool accumulate) {
  if (m == 0 || n == 0) return;
  if (const SgemmFn f = blas().sgemm) {
    f(kRowMajor, kNoTrans, kNoTrans, int(m), int(n), int(k), 1.0f, a, int(lda), b, int(ldb), accumulate ? 1.0f : 0.0f,
      c, int(ldc));
    return;
  }
  for (std::size_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    if (!accumulate) std::fill(ci, ci + n, 0.0f);
    for (std::size_t p = 0; p < k; ++p) {
      const float aip = a[i * lda + p];
      const float* bp = b + p * ldb;
      for (std::size_t j = 0; j < n; ++j) ci[j] += aip * bp[j];
    }
  }
}

void linear(const float* x, std::size_t n, std::size_t in, const float* w, std::size_t out, float* y, bool accumulate) {
  // Fixed column blocks (never a function of the thread count): each is one sgemm over
  // all n rows. 128 outputs of 512 inputs are 256 KiB of weights, L2-sized.
  constexpr std::size_t kBlock = 128;
  const std::size_t blocks = (out + kBlock - 1) / kBlock;
  auto run = [&](std::size_t blk) {
    const std::size_t o0 = blk * kBlock, nb = std::min(kBlock, out - o0);
    gemm_nt(n, nb, in, 1.0f, x, in, w + o0 * in, in, accumulate ? 1.0f : 0.0f, y + o0, out);
  };
  if (blocks == 1 || n * in * out < (std::size_t{1} << 16)) {
    for (std::size_t blk = 0; blk < blocks; ++blk) run(blk);
  } else {
    tbb::parallel_for(std::size_t{0}, blocks, run);
  }
}

std::string blas_in_use() {
  return blas().description;
}

}  // namespace sparq::model
