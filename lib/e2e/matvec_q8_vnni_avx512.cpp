// The q8 kernel on AVX512-VNNI (built with the avx512 flags and -mavx512vnni; called only
// when the CPU has both). One vpdpbusd per 64 weights of a row: unsigned x bytes times
// signed weights, four products per 32-bit lane, summed exactly in int32 (a lane adds at
// most 4 * 255 * 127 per chunk: exact for K < 2^20, which PackedMatrix enforces).
#include <immintrin.h>

#include "e2e/matvec_kernels.hpp"

namespace sparq::e2e {

void q8_vnni_rows(const PackedView& m, const std::uint8_t* x_u8, float x_scale, std::size_t tile_begin,
                  std::size_t tile_end, float* y) noexcept {
  const std::size_t tile_bytes = m.tile_bytes();
  for (std::size_t t = tile_begin; t < tile_end; ++t) {
    const std::byte* w = m.data + t * tile_bytes;
    __m512i acc[kTileRows];
    for (auto& a : acc) a = _mm512_setzero_si512();
    for (std::size_t c = 0; c < m.chunks; ++c, w += kTileRows * kChunkBytes) {
      _mm_prefetch(reinterpret_cast<const char*>(w + kPrefetchBytes), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(w + kPrefetchBytes + kTileRows * kChunkBytes / 2), _MM_HINT_T0);
      const __m512i xv = _mm512_load_si512(x_u8 + c * kChunkBytes);
      for (std::size_t r = 0; r < kTileRows; ++r)
        acc[r] = _mm512_dpbusd_epi32(acc[r], xv, _mm512_load_si512(w + r * kChunkBytes));
    }
    for (std::size_t r = 0; r < kTileRows; ++r) {
      const std::size_t row = t * kTileRows + r;
      if (row >= m.rows) continue;
      const std::int64_t dot = std::int64_t(_mm512_reduce_add_epi32(acc[r])) - 128 * std::int64_t(m.sums[row]);
      y[row] = m.scales[row] * x_scale * float(dot);
    }
  }
}

}  // namespace sparq::e2e
