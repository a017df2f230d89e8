// Definitions of the matvec kernels; include only from matvec_kernels_<isa>.cpp.
#pragma once

#include <cstring>
#include <xsimd/xsimd.hpp>

#include "e2e/matvec_kernels.hpp"
#include "e2e/widen_i8.hpp"

namespace sparq::e2e {

// One accumulator per row of the tile: 8 independent FMA chains cover the FMA latency
// (4 cycles, 2 per cycle); the tile's rows are read side by side in address order, so a
// range of tiles is one stream for the hardware prefetcher (docs/e2e.md, "Kernels").
template <class Arch>
void Q8WidenRows<Arch>::operator()(Arch, const PackedView& m, const float* x, std::size_t tile_begin,
                                   std::size_t tile_end, float* y) const noexcept {
  using B = xsimd::batch<float, Arch>;
  constexpr std::size_t W = B::size;
  constexpr std::size_t P = kQ8ChunkCols / W;  // registers per 64-byte row chunk
  const std::size_t tile_bytes = m.tile_bytes();
  for (std::size_t t = tile_begin; t < tile_end; ++t) {
    const auto* w = reinterpret_cast<const std::int8_t*>(m.data + t * tile_bytes);
    B acc[kTileRows];
    for (auto& a : acc) a = B(0.0f);
    for (std::size_t c = 0; c < m.chunks; ++c, w += kTileRows * kChunkBytes) {
      __builtin_prefetch(w + kPrefetchBytes, 0, 3);
      __builtin_prefetch(w + kPrefetchBytes + kTileRows * kChunkBytes / 2, 0, 3);
      const float* xc = x + c * kQ8ChunkCols;
      for (std::size_t p = 0; p < P; ++p) {
        const B xv = B::load_aligned(xc + p * W);
        for (std::size_t r = 0; r < kTileRows; ++r)
          acc[r] = xsimd::fma(WidenI8<Arch>::load(w + r * kChunkBytes + p * W), xv, acc[r]);
      }
    }
    for (std::size_t r = 0; r < kTileRows; ++r) {
      const std::size_t row = t * kTileRows + r;
      if (row < m.rows) y[row] = m.scales[row] * xsimd::hadd(acc[r]);
    }
  }
}

// A bf16 pair read as one 32-bit lane: the odd element is its top half (mask), the even
// one its bottom half shifted up: two integer ops, no shuffle.
template <class Arch>
void Bf16Rows<Arch>::operator()(Arch, const PackedView& m, const float* x_pairs, std::size_t tile_begin,
                                std::size_t tile_end, float* y) const noexcept {
  using B = xsimd::batch<float, Arch>;
  using U = xsimd::batch<std::uint32_t, Arch>;
  constexpr std::size_t W = B::size;
  constexpr std::size_t G = kBf16ChunkCols / (2 * W);  // groups of 2W values per row chunk
  const std::size_t tile_bytes = m.tile_bytes();
  const U high(0xffff0000u);
  for (std::size_t t = tile_begin; t < tile_end; ++t) {
    const std::byte* w = m.data + t * tile_bytes;
    B acc[kTileRows];
    for (auto& a : acc) a = B(0.0f);
    for (std::size_t c = 0; c < m.chunks; ++c, w += kTileRows * kChunkBytes) {
      __builtin_prefetch(w + kPrefetchBytes, 0, 3);
      __builtin_prefetch(w + kPrefetchBytes + kTileRows * kChunkBytes / 2, 0, 3);
      for (std::size_t g = 0; g < G; ++g) {
        const float* xg = x_pairs + c * kBf16ChunkCols + g * 2 * W;
        const B xe = B::load_aligned(xg);
        const B xo = B::load_aligned(xg + W);
        for (std::size_t r = 0; r < kTileRows; ++r) {
          const U v = U::load_unaligned(reinterpret_cast<const std::uint32_t*>(w + r * kChunkBytes + g * 4 * W));
          acc[r] = xsimd::fma(xsimd::bitwise_cast<B>(v << 16), xe, acc[r]);
          acc[r] = xsimd::fma(xsimd::bitwise_cast<B>(v & high), xo, acc[r]);
        }
      }
    }
    for (std::size_t r = 0; r < kTileRows; ++r) {
      const std::size_t row = t * kTileRows + r;
      if (row < m.rows) y[row] = xsimd::hadd(acc[r]);
    }
  }
}

template <class Arch>
void Bf16PairOrder<Arch>::operator()(Arch, const float* x, float* out, std::size_t n) const noexcept {
  constexpr std::size_t W = xsimd::batch<float, Arch>::size;
  for (std::size_t g = 0; g < n; g += 2 * W)
    for (std::size_t i = 0; i < W; ++i) {
      out[g + i] = x[g + 2 * i];
      out[g + W + i] = x[g + 2 * i + 1];
    }
}

}  // namespace sparq::e2e
