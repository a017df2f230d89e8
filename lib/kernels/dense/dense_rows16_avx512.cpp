// AVX-512 score loop of dense decode for f16 caches (see dense_rows16.hpp). Raw
// intrinsics for the f16 conversion (xsimd 8.1 has none) and, alongside, the FMAs.
#include <immintrin.h>

#include "kernels/dense/dense_rows16.hpp"
#include "kernels/dense/prefetch_rows_avx512.hpp"
#include "kernels/dense/shape_dispatch.hpp"
#include "kernels/simd/row_sums16_avx512.hpp"

namespace sparq::kernels::rows16 {
namespace {

// One 64-byte line of 32 16-bit values widened to two registers of f32.
struct F16Line {  // natural order: values 0-15, 16-31
  static void widen(const std::uint16_t* p, __m512& a, __m512& b) noexcept {
    a = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    b = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16)));
  }
};
struct Bf16Line {  // pair order: even values, odd values (q is permuted to match)
  static void widen(const std::uint16_t* p, __m512& a, __m512& b) noexcept {
    const __m512i x = _mm512_loadu_si512(p);
    a = _mm512_castsi512_ps(_mm512_slli_epi32(x, 16));
    b = _mm512_castsi512_ps(_mm512_and_si512(x, _mm512_set1_epi32(int(0xffff0000u))));
  }
};

// Scores of the G heads over P = 16 / G rows per batch, all 16 accumulators (head x row)
// in registers: each 64-byte line of a row is widened once and multiplied by every head's
// q, read from L1 as the FMAs' memory operand (q in registers as well would not fit).
template <class Line, std::size_t G, std::size_t L>
void scores_impl(const std::uint16_t* k, std::size_t k_stride, std::size_t n, const float* q, std::size_t q_stride,
                 float* sc) noexcept {
  constexpr std::size_t P = 16 / G;
  for (std::size_t b = 0; b * P < n; ++b) {
    __m512 acc[16];
    for (auto& a : acc) a = _mm512_setzero_ps();
    for (std::size_t pl = 0; pl < P; ++pl) {
      const std::size_t p = b * P + pl;
      const std::uint16_t* row = k + (p < n ? p : 0) * k_stride;
      prefetch_ahead(k + p * k_stride, L);
      for (std::size_t c = 0; c < L; ++c) {
        __m512 x[2];
        Line::widen(row + 32 * c, x[0], x[1]);
        for (std::size_t h = 0; h < G; ++h)
          for (std::size_t half = 0; half < 2; ++half)
            acc[h * P + pl] =
                _mm512_fmadd_ps(_mm512_loadu_ps(q + h * q_stride + 16 * (2 * c + half)), x[half], acc[h * P + pl]);
      }
    }
    _mm512_storeu_ps(sc + b * 16, row_sums16_avx512(acc));
  }
}

}  // namespace

void scores(const std::uint16_t* k, std::size_t d, std::size_t k_stride, std::size_t n, std::size_t g, const float* q,
            std::size_t q_stride, float* sc) noexcept {
  shape_dispatch::with_shape(
      g, d, [&]<std::size_t G, std::size_t L>() { scores_impl<F16Line, G, L>(k, k_stride, n, q, q_stride, sc); });
}

void scores_bf16(const std::uint16_t* k, std::size_t d, std::size_t k_stride, std::size_t n, std::size_t g,
                 const float* q, std::size_t q_stride, float* sc) noexcept {
  shape_dispatch::with_shape(
      g, d, [&]<std::size_t G, std::size_t L>() { scores_impl<Bf16Line, G, L>(k, k_stride, n, q, q_stride, sc); });
}

}  // namespace sparq::kernels::rows16
