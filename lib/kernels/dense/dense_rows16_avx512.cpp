// AVX-512 score loop of dense decode for f16 caches (see dense_rows16.hpp). Raw
// intrinsics for the f16 conversion (xsimd 8.1 has none) and, alongside, the FMAs.
#include <immintrin.h>

#include <utility>

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

// One pass: heads H0 .. H0 + HP - 1 of G over the P = 16 / G rows of batch b; L lines
// (2 registers) per row. H0 is a template argument so that every accumulator index is a
// constant (a run-time index would put the whole array in memory: 2x slower).
template <class Line, std::size_t G, std::size_t L, std::size_t H0>
void batch_pass(const std::uint16_t* k, std::size_t k_stride, std::size_t n, std::size_t b, const float* q,
                std::size_t q_stride, __m512 (&acc)[16]) noexcept {
  constexpr std::size_t P = 16 / G, HP = heads_per_pass(G, L);
  __m512 qv[HP][2 * L];
  for (std::size_t h = 0; h < HP; ++h)
    for (std::size_t c = 0; c < 2 * L; ++c) qv[h][c] = _mm512_loadu_ps(q + (H0 + h) * q_stride + 16 * c);
  for (std::size_t pl = 0; pl < P; ++pl) {
    const std::size_t p = b * P + pl;
    const std::uint16_t* row = k + (p < n ? p : 0) * k_stride;
    if constexpr (H0 == 0) prefetch_ahead(k + p * k_stride, L);
    for (std::size_t c = 0; c < L; ++c) {
      __m512 x[2];
      Line::widen(row + 32 * c, x[0], x[1]);
      for (std::size_t half = 0; half < 2; ++half)
        for (std::size_t h = 0; h < HP; ++h)
          acc[(H0 + h) * P + pl] = _mm512_fmadd_ps(qv[h][2 * c + half], x[half], acc[(H0 + h) * P + pl]);
    }
  }
}

template <class Line, std::size_t G, std::size_t L>
void scores_impl(const std::uint16_t* k, std::size_t k_stride, std::size_t n, const float* q, std::size_t q_stride,
                 float* sc) noexcept {
  constexpr std::size_t P = 16 / G, HP = heads_per_pass(G, L);
  if constexpr (HP > 0)
    for (std::size_t b = 0; b * P < n; ++b) {
      __m512 acc[16];
      for (auto& a : acc) a = _mm512_setzero_ps();
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        (batch_pass<Line, G, L, I * HP>(k, k_stride, n, b, q, q_stride, acc), ...);
      }
      (std::make_index_sequence<G / HP>{});
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
