// Dense decode's score loop for f16 and bf16 caches on AVX-512: K rows are read in address
// order, each 64-byte line widened in registers (f16: vcvtph2ps; bf16: a shift and a mask,
// in pair order) and multiplied by q in f32. Each score batch (P = 16 / g rows) is read by
// passes of hp heads (2 at g = 4, d = 128): the first pass streams the batch's rows from
// memory, the next find them in L1. The f32 loops instead read the batch's 4 rows
// interleaved, a chunk of each at a time, which keeps fewer DRAM reads in flight on this
// core (docs/performance.md). Same arithmetic as the f32 loops (f32 products and sums,
// another order), so the f32 tolerance holds: exact attention over the stored values.
//
// Declared here, defined in dense_rows16_avx512.cpp (intrinsics); called only by the
// rows16 dense kernel (dense_decode.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sparq::kernels::rows16 {

// Head tiles these loops take: 1, 2, 4 or 8 heads (P = 16 / g positions per score batch).
inline constexpr std::size_t kMaxHeads = 8;

// Heads per pass for a head tile of g heads and rows of `lines` 64-byte lines: the most
// (a power of two, at most g) whose q (2 registers per line) and accumulators (one per
// head and row of a score batch of P = 16 / g rows) would fit in 28 of the 32 registers;
// 0 if none.
[[nodiscard]] constexpr std::size_t heads_per_pass(std::size_t g, std::size_t lines) noexcept {
  std::size_t hp = 0;
  for (std::size_t h = 1; h <= g; h *= 2)
    if (h * (2 * lines + 16 / g) <= 28) hp = h;
  return hp;
}

// Shapes these loops take: rows of whole 64-byte lines up to 256 values, head tiles of
// 1, 2, 4 or 8 heads with at least one head per pass.
[[nodiscard]] constexpr bool handles(std::size_t g, std::size_t d) noexcept {
  return d % 32 == 0 && d >= 32 && d <= 256 && (g == 1 || g == 2 || g == 4 || g == 8) && heads_per_pass(g, d / 32) > 0;
}

// Scores of the g heads of one head tile over the n rows of one tile (k: f16 bits, row
// stride d; q: g rows of d floats, stride q_stride): sc[b * 16 + h * P + p] = q_h .
// k_{b P + p} for batches b < ceil(n / P), P = 16 / g; rows past n repeat row 0 (the
// softmax masks their lanes).
void scores(const std::uint16_t* k, std::size_t d, std::size_t n, std::size_t g, const float* q, std::size_t q_stride,
            float* sc) noexcept;
// The same for bf16 rows, with q in pair order (each 32-value line: its 16 even values,
// then its 16 odd ones; see load_bf16_pair).
void scores_bf16(const std::uint16_t* k, std::size_t d, std::size_t n, std::size_t g, const float* q,
                 std::size_t q_stride, float* sc) noexcept;

}  // namespace sparq::kernels::rows16
