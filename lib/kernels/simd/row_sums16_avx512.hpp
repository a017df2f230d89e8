// Transposing reduction of 16 AVX-512 rows on raw registers: lane i of the result = sum
// of row i. xsimd 8.1's avx512 haddp returns the sums in the lane order 0 1 4 5 2 3 6 7 8
// 9 12 13 10 11 14 15 (checked with one-hot rows), so AVX-512 has its own: 45 ops
// (unpack, shuffle within 128-bit lanes, then across them). static: internal linkage,
// so the bf16 dot-product TU (built with one more ISA flag) shares no symbol with the
// avx512 kernels.
#pragma once

#include <immintrin.h>

namespace sparq::kernels {

static inline __m512 row_sums16_avx512(const __m512* row) noexcept {
  // Per 128-bit chunk of each pair (a, b): [a0+a2, b0+b2, a1+a3, b1+b3].
  __m512 s1[8];
  for (int k = 0; k < 8; ++k) {
    const __m512 a = row[2 * k], b = row[2 * k + 1];
    s1[k] = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  }
  // Per chunk: the chunk's partial sums of rows 4m .. 4m+3.
  __m512 s2[4];
  for (int m = 0; m < 4; ++m) {
    const __m512 c = s1[2 * m], e = s1[2 * m + 1];
    s2[m] = _mm512_add_ps(_mm512_shuffle_ps(c, e, _MM_SHUFFLE(1, 0, 1, 0)),
                          _mm512_shuffle_ps(c, e, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  // Sum the four chunks of s2[m] into chunk m of the result.
  const __m512 u01 = _mm512_add_ps(_mm512_shuffle_f32x4(s2[0], s2[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_f32x4(s2[0], s2[1], _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 u23 = _mm512_add_ps(_mm512_shuffle_f32x4(s2[2], s2[3], _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_f32x4(s2[2], s2[3], _MM_SHUFFLE(3, 2, 3, 2)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(u01, u23, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(u01, u23, _MM_SHUFFLE(3, 1, 3, 1)));
}

}  // namespace sparq::kernels
