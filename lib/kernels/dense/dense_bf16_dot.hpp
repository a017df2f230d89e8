// Dense decode's inner loops on AVX512-BF16 dot products (vdpbf16ps) for bf16 caches.
// q and the softmax weights are rounded to bf16 once (per chunk, per tile); the products
// of two bf16 values are exact in f32 and are summed in f32, so the only extra error is
// that rounding, the same size as the cache's own (tests/kernels/dense_bf16_dot_test).
//
// Why (probe of these loops vs the f32 ones, 1 GiB of [K 64 KiB][V 64 KiB] tiles on huge
// pages, 1 core, Zen 5): 22-24 GB/s against 14-16 for the f32 loops, and 28-30 for a plain
// read. The f32 loops cannot hold q of 4 heads in registers (32 of them), so they either
// reload q (extra L1 loads) or read 4 rows interleaved; both keep fewer DRAM reads in
// flight. In bf16, q of 4 heads at d = 128 is 16 registers and every line is read once,
// in address order, by 4 instructions. V's weights go in pairs of rows (vdpbf16ps sums
// pairs), so 2 heads x a whole row fit in 16 accumulators.
// In the kernel (bench/dense_decode_bench, GQA 32/8, bf16, 3 alternating rounds against
// SPARQ_BF16_DOT=0 in the same minutes, with the prefetch of kAheadBytes): S = 64k,
// 1 thread 14.8-15.8 ms vs 19.4-20.3 (61-70% of the in-process read bandwidth vs 45-53%);
// 2 threads 6.75-9.5 ms vs 9.1-11.4; S = 16k, 1 thread 3.7-4.1 ms vs 4.8-5.1. The probe's
// loops alone run faster than the kernel still: the softmax between them (9% of the
// kernel's samples) and the second pass over V's rows for the other 2 heads are not in
// the probe; fusing the softmax into the score loop gained nothing measurable.
// V in passes of all 4 heads x half rows (each line unpacked once, not once per 2 heads)
// ran 30% faster with the tile hot in L2 (K+V 6.7 vs 9.5 ns per position, 1 core) but
// slower cold, even with whole rows prefetched in the first pass (2 alternating rounds,
// 64k, 1 thread 11.7-12.1 vs 11.2-11.5 ms, 2 threads 6.2-6.6 vs 5.7-6.0): a first pass
// over half of each row does not keep the DRAM stream in address order. Sub-tiles of 64
// rows whose first pass keeps the unpacked pairs in a 16 KiB L1 scratch for the second
// (no second load and unpack): 17% faster in the L2 harness, not in the kernel (3
// alternating rounds: with the data in L3 0.265-0.276 vs 0.230-0.273 ms, cold 64k 1
// thread 12.5-14.0 vs 12.7-13.4 ms).
//
// Declared here, defined in dense_bf16_dot_avx512.cpp (intrinsics, built with the avx512
// flags plus -mavx512bf16); called only by the avx512 dense kernel when
// sparq::bf16_dot_active().
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
