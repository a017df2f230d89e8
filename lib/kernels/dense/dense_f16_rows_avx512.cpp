// AVX-512 score loop of dense decode for f16 caches (see dense_f16_rows.hpp). Raw
// intrinsics for the f16 conversion (xsimd 8.1 has none) and, alongside, the FMAs.
#include <immintrin.h>

#include <utility>

#include "kernels/dense/dense_f16_rows.hpp"
#include "kernels/dense/prefetch_rows_avx512.hpp"
#include "kernels/dense/shape_dispatch.hpp"
#include "kernels/simd/row_sums16_avx512.hpp"

namespace sparq::kernels::f16_rows {
namespace {

// 16 f16 values widened to f32.
__m512 load_f16(const std::uint16_t* p) noexcept {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// One pass: heads H0 .. H0 + HP - 1 of G over the P = 16 / G rows of batch b; L lines
// (2 registers) per row. H0 is a template argument so that every accumulator index is a
// constant (a run-time index would put the whole array in memory: 2x slower).
template <std::size_t G, std::size_t L, std::size_t H0>
void batch_pass(const std::uint16_t* k, std::size_t n, std::size_t b, const float* q, std::size_t q_stride,
                __m512 (&acc)[16]) noexcept {
  constexpr std::size_t P = 16 / G, d = 32 * L, HP = heads_per_pass(G, L);
  __m512 qv[HP][2 * L];
  for (std::size_t h = 0; h < HP; ++h)
    for (std::size_t c = 0; c < 2 * L; ++c) qv[h][c] = _mm512_loadu_ps(q + (H0 + h) * q_stride + 16 * c);
  for (std::size_t pl = 0; pl < P; ++pl) {
    const std::size_t p = b * P + pl;
    const std::uint16_t* row = k + (p < n ? p : 0) * d;
    if constexpr (H0 == 0) prefetch_ahead(k + p * d, L);
    for (std::size_t c = 0; c < 2 * L; ++c) {
      const __m512 x = load_f16(row + 16 * c);
      for (std::size_t h = 0; h < HP; ++h)
        acc[(H0 + h) * P + pl] = _mm512_fmadd_ps(qv[h][c], x, acc[(H0 + h) * P + pl]);
    }
  }
}

template <std::size_t G, std::size_t L>
void scores_impl(const std::uint16_t* k, std::size_t n, const float* q, std::size_t q_stride, float* sc) noexcept {
  constexpr std::size_t P = 16 / G, HP = heads_per_pass(G, L);
  if constexpr (HP > 0)
    for (std::size_t b = 0; b * P < n; ++b) {
      __m512 acc[16];
      for (auto& a : acc) a = _mm512_setzero_ps();
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        (batch_pass<G, L, I * HP>(k, n, b, q, q_stride, acc), ...);
      }
      (std::make_index_sequence<G / HP>{});
      _mm512_storeu_ps(sc + b * 16, row_sums16_avx512(acc));
    }
}

}  // namespace

void scores(const std::uint16_t* k, std::size_t d, std::size_t n, std::size_t g, const float* q, std::size_t q_stride,
            float* sc) noexcept {
  shape_dispatch::with_shape(g, d, [&]<std::size_t G, std::size_t L>() { scores_impl<G, L>(k, n, q, q_stride, sc); });
}

}  // namespace sparq::kernels::f16_rows
