// Dense decode's score loop for f16 and bf16 caches on AVX-512: K rows are read in address
// order, each 64-byte line widened in registers (f16: vcvtph2ps; bf16: a shift and a mask,
// in pair order) and multiplied by q in f32. Each score batch (P = 16 / g rows) keeps its
// 16 accumulators (head x row) in registers and reads q from L1 as the FMAs' memory
// operand. The f32 loops instead read the batch's 4 rows interleaved, a chunk of each at
// a time, which keeps fewer DRAM reads in flight on this core (docs/performance.md). Same
// arithmetic as the f32 loops (f32 products and sums, another order), so the f32
// tolerance holds: exact attention over the stored values.
//
// Declared here, defined in dense_rows16_avx512.cpp (intrinsics); called only by the
// rows16 dense kernel (dense_decode.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sparq::kernels::rows16 {

// Head tiles these loops take: 1, 2, 4 or 8 heads (P = 16 / g positions per score batch).
inline constexpr std::size_t kMaxHeads = 8;

// Shapes these loops take: rows of whole 64-byte lines up to 256 values, head tiles of
// 1, 2, 4 or 8 heads.
[[nodiscard]] constexpr bool handles(std::size_t g, std::size_t d) noexcept {
  return d % 32 == 0 && d >= 32 && d <= 256 && (g == 1 || g == 2 || g == 4 || g == 8);
}

// Scores of the g heads of one head tile over the n rows of one tile (k: f16 bits, row
// stride k_stride elements; q: g rows of d floats, stride q_stride): sc[b * 16 + h * P + p] = q_h .
// k_{b P + p} for batches b < ceil(n / P), P = 16 / g; rows past n repeat row 0 (the
// softmax masks their lanes).
void scores(const std::uint16_t* k, std::size_t d, std::size_t k_stride, std::size_t n, std::size_t g, const float* q,
            std::size_t q_stride, float* sc) noexcept;
// The same for bf16 rows, with q in pair order (each 32-value line: its 16 even values,
// then its 16 odd ones; see load_bf16_pair).
void scores_bf16(const std::uint16_t* k, std::size_t d, std::size_t k_stride, std::size_t n, std::size_t g,
                 const float* q, std::size_t q_stride, float* sc) noexcept;

}  // namespace sparq::kernels::rows16
