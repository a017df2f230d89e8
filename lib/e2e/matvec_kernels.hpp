// The matrix-vector kernels of PackedMatrix (sparq/tools/e2e/matvec.hpp), one functor
// per (format, step) templated on the xsimd architecture. Definitions are in
// matvec_kernels_inl.hpp, included only by matvec_kernels_<isa>.cpp (built with that ISA's
// flags); everything else sees the extern templates below. The AVX512-VNNI kernel is not
// a template (one ISA only): matvec_q8_vnni_avx512.cpp, built with -mavx512vnni.
//
// Every kernel computes the rows of tiles [tile_begin, tile_end) and writes y[row] for
// the rows below `rows` (the padding rows of the last tile are skipped).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/simd/arch_list.hpp"
#include "sparq/tools/e2e/matvec.hpp"

namespace sparq::e2e {

// What the kernels read of a packed matrix (see matvec.hpp for the layout).
struct PackedView {
  const std::byte* data = nullptr;     // tiles: [rows_padded / 8][chunks][8][64 bytes]
  const float* scales = nullptr;       // q8: [rows_padded] row scales
  const std::int32_t* sums = nullptr;  // q8: [rows_padded] sum of the row's int8 weights
  std::size_t rows = 0;                // M (valid rows)
  std::size_t chunks = 0;              // 64-byte chunks per row: K padded / (64 / element bytes)
  [[nodiscard]] std::size_t tile_bytes() const noexcept { return chunks * kTileRows * kChunkBytes; }
};

// Every kernel prefetches 2 lines of the tile chunk 2 KiB ahead (the 128-byte pair
// prefetcher and the streamer fetch the rest): q8/vnni 8-30% faster than without on this
// VM, where the L2 streamer stops at each 4 KiB page (docs/e2e.md, "Kernels").
inline constexpr std::size_t kPrefetchBytes = 2048;

// Columns per 64-byte chunk.
inline constexpr std::size_t kQ8ChunkCols = kChunkBytes;        // int8
inline constexpr std::size_t kBf16ChunkCols = kChunkBytes / 2;  // bf16

// q8, widen: y[r] = scale[r] * sum_j q[r][j] x[j] in f32; x is padded with zeros to
// chunks * 64 and 64-byte aligned.
template <class Arch>
struct Q8WidenRows {
  void operator()(Arch, const PackedView& m, const float* x, std::size_t tile_begin, std::size_t tile_end,
                  float* y) const noexcept;
};

// bf16: x in this variant's "pair order" (Bf16PairOrder below), padded with zeros.
template <class Arch>
struct Bf16Rows {
  void operator()(Arch, const PackedView& m, const float* x_pairs, std::size_t tile_begin, std::size_t tile_end,
                  float* y) const noexcept;
};

// x[0, n) (n a multiple of 32) rearranged so that each group of 2W values (W = this
// variant's f32 lanes) becomes its W even-indexed values then its W odd-indexed ones: a
// bf16 pair read as one 32-bit lane widens to (even, odd) with a shift and a mask.
template <class Arch>
struct Bf16PairOrder {
  void operator()(Arch, const float* x, float* out, std::size_t n) const noexcept;
};

#define SPARQ_E2E_EXTERN(isa, arch)         \
  extern template struct Q8WidenRows<arch>; \
  extern template struct Bf16Rows<arch>;    \
  extern template struct Bf16PairOrder<arch>;
SPARQ_FOR_EACH_ARCH(SPARQ_E2E_EXTERN)
#undef SPARQ_E2E_EXTERN

// AVX512-VNNI (call only when cpu_supports_vnni() and the CPU runs avx512): x quantized
// as x_u8[j] = round(x[j] / x_scale) + 128 (padding 128, i.e. zero), 64-byte aligned;
// y[r] = scale[r] * x_scale * (sum_j x_u8[j] q[r][j] - 128 * sums[r]), summed exactly.
void q8_vnni_rows(const PackedView& m, const std::uint8_t* x_u8, float x_scale, std::size_t tile_begin,
                  std::size_t tile_end, float* y) noexcept;

}  // namespace sparq::e2e
