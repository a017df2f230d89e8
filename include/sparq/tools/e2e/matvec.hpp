// Weight matrices for matrix-vector products at the speed of memory: what a decode step
// of a whole model spends most of its bytes on (docs/e2e.md).
//
// A PackedMatrix holds M x K weights (y = W x, W row-major in the caller's view) in one of
// two formats, both packed for one sequential read per thread:
//   q8    int8 weights with one f32 scale per row (w = scale[r] * q, q in [-127, 127],
//         scale = max|w_r| / 127): 1 byte per weight + 8 bytes per row (scale and the row's
//         sum of q). Two kernels: `vnni` (AVX512-VNNI vpdpbusd on x quantized to 8 bits
//         with one scale per call; integer sums are exact, the only error is x's
//         rounding: |x_j - x̂_j| <= max|x| / 254) and `widen` (int8 widened to f32 in
//         registers, f32 FMAs on x as given). `automatic` takes vnni where the CPU has it
//         and the active ISA is avx512, widen otherwise.
//   bf16  bf16 weights (w rounded to nearest even), widened in registers: 2 bytes/weight.
// Layout: rows in tiles of kTileRows; per tile, the K columns in chunks of 64 bytes per
// row, the tile's rows side by side (chunk c of rows 0..7, then chunk c+1 ...), so a range
// of tiles is one contiguous stream. K is padded with zeros to a whole chunk and M to a
// whole tile. Memory is 2 MiB aligned and advised onto transparent huge pages.
//
// matvec() runs the variant of sparq::active_isa() (SPARQ_ISA / force_isa lower it), on
// the caller's oneTBB arena when given, split over tiles; every output row is summed by
// one thread in a fixed order, so results are bit-identical whatever the thread count
// (for a fixed ISA and kernel).
//
// Thread safety: a PackedMatrix is immutable after construction; matvec() may be called
// concurrently (each call keeps its own scratch).
#pragma once

#include <oneapi/tbb/task_arena.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "sparq/isa.hpp"

namespace sparq::e2e {

enum class WeightFormat : std::uint8_t { q8, bf16 };
[[nodiscard]] std::string_view to_string(WeightFormat f) noexcept;
// "q8" | "bf16"; nullopt otherwise.
[[nodiscard]] std::optional<WeightFormat> parse_weight_format(std::string_view name) noexcept;

// Which q8 kernel runs (see above).
enum class Q8Kernel : std::uint8_t { automatic, vnni, widen };
[[nodiscard]] std::string_view to_string(Q8Kernel k) noexcept;
// "auto" | "vnni" | "widen".
[[nodiscard]] std::optional<Q8Kernel> parse_q8_kernel(std::string_view name) noexcept;
// Whether this CPU (and OS) runs AVX512-VNNI.
[[nodiscard]] bool cpu_supports_vnni() noexcept;
// The kernel `requested` resolves to under the active ISA: vnni needs the avx512 ISA and
// AVX512-VNNI (automatic falls back to widen; an explicit vnni that cannot run throws
// sparq::Error(unsupported)).
[[nodiscard]] Q8Kernel resolve_q8_kernel(Q8Kernel requested);

inline constexpr std::size_t kTileRows = 8;
inline constexpr std::size_t kChunkBytes = 64;

// Fills row r (K values) of the matrix being packed; called once per row, possibly
// from several threads at once (rows in any order).
using RowSource = std::function<void(std::size_t row, std::span<float> out)>;

class PackedMatrix {
 public:
  // Packs an M x K matrix given row by row (rows are packed in parallel on the current
  // TBB arena). Throws sparq::Error: M or K = 0, K > 2^20 (the int32 sums of vnni stay
  // exact below it), non-finite weights.
  PackedMatrix(std::size_t rows, std::size_t cols, WeightFormat format, const RowSource& source);
  // From a row-major M x K array.
  PackedMatrix(std::size_t rows, std::size_t cols, WeightFormat format, std::span<const float> row_major);
  ~PackedMatrix();
  PackedMatrix(PackedMatrix&&) noexcept;
  PackedMatrix& operator=(PackedMatrix&&) noexcept;

  [[nodiscard]] std::size_t rows() const noexcept;
  [[nodiscard]] std::size_t cols() const noexcept;
  [[nodiscard]] WeightFormat format() const noexcept;
  // Bytes one matvec reads from memory: the packed weights (padding included) and the
  // per-row scales and sums.
  [[nodiscard]] std::uint64_t bytes() const noexcept;
  // The stored weights of row r as f32 (the values the kernels multiply by).
  void dequantize_row(std::size_t row, std::span<float> out) const;

  // y[0, M) = W x[0, K). Throws sparq::Error on size mismatch or non-finite x (checked
  // for q8 with the vnni kernel, whose scale comes from max|x|).
  void matvec(std::span<const float> x, std::span<float> y, tbb::task_arena* arena = nullptr,
              Q8Kernel kernel = Q8Kernel::automatic) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparq::e2e
