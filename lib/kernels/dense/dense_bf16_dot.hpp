// Dense decode's inner loops on AVX512-BF16 dot products (vdpbf16ps) for bf16 caches.
// q and the softmax weights are rounded to bf16 once (per chunk, per tile); the products
// of two bf16 values are exact in f32 and are summed in f32, so the only extra error is
// that rounding, the same size as the cache's own (tests/kernels/dense_bf16_dot_test).
//
// Why: q of 4 heads fits in registers as bf16, so every K line is read once, in address
// order (the f32 loops reload q or read rows interleaved and keep fewer DRAM reads in
// flight); 20-27% faster cold on one thread (docs/performance.md, "AVX512-BF16").
//
// Declared here, defined in dense_bf16_dot_avx512.cpp (intrinsics, built with the avx512
// flags plus -mavx512bf16); called only by the bf16_dot dense kernel (dense_decode.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sparq::kernels::bf16_dot {

// Shapes these loops take: rows of whole 64-byte lines up to 256 values, and head tiles
// of 1, 2, 4 or 8 heads (P = 16 / g positions per score batch, even: V pairs rows).
inline constexpr std::size_t kMaxHeads = 8;

// Bound on the relative error of one head's output against f32 arithmetic on the same
// stored values, used by the tests and the benchmark's check. Rounding q and the weights
// to bf16 (unit roundoff u = 2^-9) moves a score by up to u * sum_i |q_i k_i| and a
// weight by ln 2 times that plus u; with q up to sigma 4 (a peaky softmax) the output
// moved by up to 0.6% (tests/kernels/dense_decode_test.cpp). 2^-6 leaves headroom and
// still fails on a single misplaced weight.
inline constexpr double kRelErrorBound = 1.0 / 64;
[[nodiscard]] constexpr bool handles(std::size_t d) noexcept {
  return d % 32 == 0 && d >= 32 && d <= 256;
}

// rows x d floats (row stride `stride`) rounded to bf16, nearest even, into dst[rows][d].
void round_rows(const float* src, std::size_t stride, std::size_t rows, std::size_t d, std::uint16_t* dst) noexcept;

// Scores of the g heads of one head tile over the n rows of one tile (k: row stride d):
// sc[b * 16 + h * P + p] = qb_h . k_{b P + p} for batches b < ceil(n / P); rows past n
// repeat row 0 (the softmax masks their lanes).
void scores(const std::uint16_t* k, std::size_t d, std::size_t n, std::size_t g, const std::uint16_t* qb,
            float* sc) noexcept;

// o_h = o_h * corr_h + sum_{p < n} w_h(p) v_p for the g heads, with w_h(p) = pr[b * 16 +
// h * P + p % P] (b = p / P) rounded to bf16. o rows (stride o_stride floats) hold d
// values in unpack order (see to_natural_order); corr may be null (no rescale). wbuf:
// scratch of ceil(n / P) * 8 words.
void accumulate_v(const std::uint16_t* v, std::size_t d, std::size_t n, std::size_t g, const float* pr,
                  std::uint32_t* wbuf, float* o, std::size_t o_stride, const float* corr) noexcept;

// One row of d values from unpack order (accumulate_v's) to natural order.
void to_natural_order(const float* src, float* dst, std::size_t d) noexcept;

}  // namespace sparq::kernels::bf16_dot
