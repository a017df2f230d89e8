// AVX512-BF16 loops of dense decode (see dense_bf16_dot.hpp). Raw intrinsics: xsimd 8.1
// has no bf16 dot product. Built with the avx512 flags plus -mavx512bf16 (lib/kernels/CMakeLists.txt);
// every helper here has internal linkage, so nothing built with that flag can be picked by
// the linker for code that runs on CPUs without it.
#include <immintrin.h>

#include "kernels/dense/dense_bf16_dot.hpp"
#include "kernels/dense/prefetch_rows_avx512.hpp"
#include "kernels/dense/shape_dispatch.hpp"
#include "kernels/simd/row_sums16_avx512.hpp"

namespace sparq::kernels::bf16_dot {
namespace {

using shape_dispatch::with_shape;

__m512bh load_bh(const std::uint16_t* p) noexcept {
  return (__m512bh)_mm512_loadu_si512(p);
}

// G heads x P = 16 / G rows per batch; L lines (32 values) per row. q of the tile stays in
// registers for G * L <= 16 (d = 128 and g = 4: 16); rows are read once, in address order.
template <std::size_t G, std::size_t L>
void scores_impl(const std::uint16_t* k, std::size_t n, const std::uint16_t* qb, float* sc) noexcept {
  constexpr std::size_t P = 16 / G, d = 32 * L;
  __m512bh q[G][L];
  for (std::size_t h = 0; h < G; ++h)
    for (std::size_t c = 0; c < L; ++c) q[h][c] = load_bh(qb + h * d + 32 * c);
  for (std::size_t b = 0; b * P < n; ++b) {
    __m512 acc[16];
    for (auto& a : acc) a = _mm512_setzero_ps();
    for (std::size_t pl = 0; pl < P; ++pl) {
      const std::size_t p = b * P + pl;
      const std::uint16_t* row = k + (p < n ? p : 0) * d;
      prefetch_ahead(k + p * d, L);
      for (std::size_t c = 0; c < L; ++c) {
        const __m512bh x = load_bh(row + 32 * c);
        for (std::size_t h = 0; h < G; ++h) acc[h * P + pl] = _mm512_dpbf16_ps(acc[h * P + pl], q[h][c], x);
      }
    }
    _mm512_storeu_ps(sc + b * 16, row_sums16_avx512(acc));
  }
}

// Pairs of rows (p, p+1) interleaved by 16-bit unpacks: lane j of vv[2c + half] is
// (v_p[e], v_p+1[e]) with e = 32c + 8 (j / 4) + 4 half + j % 4 ("unpack order"), and
// vdpbf16ps with the broadcast weight pair (w_p, w_p+1) adds w_p v_p[e] + w_p+1 v_p+1[e].
// HT heads x 2L accumulators per pass (at most 16); each pass reads the tile's rows once.
template <std::size_t G, std::size_t L>
void accumulate_v_impl(const std::uint16_t* v, std::size_t n, const float* pr, std::uint32_t* wbuf, float* o,
                       std::size_t o_stride, const float* corr) noexcept {
  constexpr std::size_t P = 16 / G, d = 32 * L, NB = 2 * L;
  constexpr std::size_t HT = 16 / NB < G ? 16 / NB : G;  // NB <= 16: at least 1
  static_assert(P % 2 == 0, "row pairs must not span score batches");
  // The tile's weights in bf16: word (b * 8 + (h * P + p % P) / 2) = (w_h(p), w_h(p + 1)), p even.
  for (std::size_t b = 0; b * P < n; ++b)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(wbuf + b * 8),
                        (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(pr + b * 16)));
  for (std::size_t hs = 0; hs < G; hs += HT) {
    __m512 acc[HT * NB];
    for (std::size_t hh = 0; hh < HT; ++hh) {
      const __m512 cr = _mm512_set1_ps(corr ? corr[hs + hh] : 1.0f);
      for (std::size_t j = 0; j < NB; ++j)
        acc[hh * NB + j] = _mm512_mul_ps(_mm512_loadu_ps(o + (hs + hh) * o_stride + 16 * j), cr);
    }
    for (std::size_t p = 0; p < n; p += 2) {
      const std::uint16_t* r0 = v + p * d;
      const std::uint16_t* r1 = p + 1 < n ? r0 + d : r0;  // weight 0: the lane is masked
      __m512bh vv[NB];
      for (std::size_t c = 0; c < L; ++c) {
        const __m512i a = _mm512_loadu_si512(r0 + 32 * c), b = _mm512_loadu_si512(r1 + 32 * c);
        vv[2 * c] = (__m512bh)_mm512_unpacklo_epi16(a, b);
        vv[2 * c + 1] = (__m512bh)_mm512_unpackhi_epi16(a, b);
      }
      const std::uint32_t* w = wbuf + (p / P) * 8 + (p % P) / 2;
      for (std::size_t hh = 0; hh < HT; ++hh) {
        const __m512bh wb = (__m512bh)_mm512_set1_epi32(static_cast<int>(w[(hs + hh) * P / 2]));
        for (std::size_t j = 0; j < NB; ++j) acc[hh * NB + j] = _mm512_dpbf16_ps(acc[hh * NB + j], wb, vv[j]);
      }
    }
    for (std::size_t hh = 0; hh < HT; ++hh)
      for (std::size_t j = 0; j < NB; ++j) _mm512_storeu_ps(o + (hs + hh) * o_stride + 16 * j, acc[hh * NB + j]);
  }
}

}  // namespace

void round_rows(const float* src, std::size_t stride, std::size_t rows, std::size_t d, std::uint16_t* dst) noexcept {
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < d; c += 32) {
      const float* s = src + r * stride + c;
      const __m512bh x = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + 16), _mm512_loadu_ps(s));
      _mm512_storeu_si512(dst + r * d + c, (__m512i)x);
    }
}

void scores(const std::uint16_t* k, std::size_t d, std::size_t n, std::size_t g, const std::uint16_t* qb,
            float* sc) noexcept {
  with_shape(g, d, [&]<std::size_t G, std::size_t L>() { scores_impl<G, L>(k, n, qb, sc); });
}

void accumulate_v(const std::uint16_t* v, std::size_t d, std::size_t n, std::size_t g, const float* pr,
                  std::uint32_t* wbuf, float* o, std::size_t o_stride, const float* corr) noexcept {
  with_shape(g, d, [&]<std::size_t G, std::size_t L>() { accumulate_v_impl<G, L>(v, n, pr, wbuf, o, o_stride, corr); });
}

void to_natural_order(const float* src, float* dst, std::size_t d) noexcept {
  for (std::size_t c = 0; c < d; c += 32)
    for (std::size_t half = 0; half < 2; ++half)
      for (std::size_t j = 0; j < 16; ++j) dst[c + 8 * (j / 4) + 4 * half + j % 4] = src[c + 16 * half + j];
}

}  // namespace sparq::kernels::bf16_dot
