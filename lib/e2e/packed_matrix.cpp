// PackedMatrix: packing (quantization, tiling) and the threaded, dispatched matvec.
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "common/half_float.hpp"
#include "e2e/matvec_kernels.hpp"
#include "sparq/error.hpp"

namespace sparq::e2e {

std::string_view to_string(WeightFormat f) noexcept {
  return f == WeightFormat::q8 ? "q8" : "bf16";
}

std::optional<WeightFormat> parse_weight_format(std::string_view name) noexcept {
  if (name == "q8") return WeightFormat::q8;
  if (name == "bf16") return WeightFormat::bf16;
  return std::nullopt;
}

std::string_view to_string(Q8Kernel k) noexcept {
  switch (k) {
    case Q8Kernel::automatic:
      return "auto";
    case Q8Kernel::vnni:
      return "vnni";
    case Q8Kernel::widen:
      return "widen";
  }
  return "auto";
}

std::optional<Q8Kernel> parse_q8_kernel(std::string_view name) noexcept {
  if (name == "auto") return Q8Kernel::automatic;
  if (name == "vnni") return Q8Kernel::vnni;
  if (name == "widen") return Q8Kernel::widen;
  return std::nullopt;
}

bool cpu_supports_vnni() noexcept {
  static const bool yes = [] {
    __builtin_cpu_init();
    return cpu_supports(Isa::avx512) && __builtin_cpu_supports("avx512vnni");
  }();
  return yes;
}

Q8Kernel resolve_q8_kernel(Q8Kernel requested) {
  const bool vnni_runs = active_isa() == Isa::avx512 && cpu_supports_vnni();
  switch (requested) {
    case Q8Kernel::automatic:
      return vnni_runs ? Q8Kernel::vnni : Q8Kernel::widen;
    case Q8Kernel::widen:
      return Q8Kernel::widen;
    case Q8Kernel::vnni:
      if (!vnni_runs)
        throw Error(ErrorCode::unsupported,
                    std::string("q8 kernel vnni needs AVX512-VNNI and the avx512 ISA (active: ") +
                        std::string(to_string(active_isa())) + (cpu_supports_vnni() ? ")" : ", CPU without VNNI)"));
      return Q8Kernel::vnni;
  }
  return Q8Kernel::widen;
}

namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr std::size_t kMaxCols = std::size_t{1} << 20;

struct FreeDeleter {
  void operator()(void* p) const noexcept { std::free(p); }
};
template <class T>
using AlignedPtr = std::unique_ptr<T[], FreeDeleter>;

template <class T>
AlignedPtr<T> aligned_array(std::size_t n, std::size_t align) {
  const std::size_t bytes = std::max<std::size_t>((n * sizeof(T) + align - 1) / align * align, align);
  void* p = std::aligned_alloc(align, bytes);
  if (!p) throw Error(ErrorCode::capacity_exhausted, "cannot allocate " + std::to_string(bytes >> 20) + " MiB");
  // Huge pages as the cache's slabs have (advisory): a 4 KiB-page stream reads 15-25%
  // slower here (docs/performance.md).
  if (align >= kHugePage) madvise(p, bytes, MADV_HUGEPAGE);
  return AlignedPtr<T>(static_cast<T*>(p));
}

}  // namespace

struct PackedMatrix::Impl {
  std::size_t rows = 0, cols = 0, rows_padded = 0, chunks = 0;
  WeightFormat format = WeightFormat::q8;
  AlignedPtr<std::byte> data;
  std::vector<float> scales;
  std::vector<std::int32_t> sums;

  [[nodiscard]] std::size_t chunk_cols() const noexcept {
    return format == WeightFormat::q8 ? kQ8ChunkCols : kBf16ChunkCols;
  }
  [[nodiscard]] std::size_t cols_padded() const noexcept { return chunks * chunk_cols(); }
  [[nodiscard]] PackedView view() const noexcept {
    return {.data = data.get(), .scales = scales.data(), .sums = sums.data(), .rows = rows, .chunks = chunks};
  }
  // Where chunk c of row r starts.
  [[nodiscard]] std::byte* chunk_at(std::size_t r, std::size_t c) const noexcept {
    return data.get() + ((r / kTileRows * chunks + c) * kTileRows + r % kTileRows) * kChunkBytes;
  }
  void pack_row(std::size_t r, const float* w);
};

void PackedMatrix::Impl::pack_row(std::size_t r, const float* w) {
  const std::size_t cc = chunk_cols();
  if (format == WeightFormat::q8) {
    float max_abs = 0.0f;
    for (std::size_t j = 0; j < cols; ++j) max_abs = std::max(max_abs, std::fabs(w[j]));
    const float scale = max_abs > 0.0f ? max_abs / 127.0f : 1.0f;
    std::int32_t sum = 0;
    for (std::size_t c = 0; c < chunks; ++c) {
      auto* dst = reinterpret_cast<std::int8_t*>(chunk_at(r, c));
      for (std::size_t i = 0; i < cc; ++i) {
        const std::size_t j = c * cc + i;
        const float q = j < cols ? std::clamp(std::nearbyint(w[j] / scale), -127.0f, 127.0f) : 0.0f;
        dst[i] = std::int8_t(q);
        sum += std::int32_t(q);
      }
    }
    scales[r] = scale;
    sums[r] = sum;
  } else {
    for (std::size_t c = 0; c < chunks; ++c) {
      auto* dst = reinterpret_cast<std::uint16_t*>(chunk_at(r, c));
      for (std::size_t i = 0; i < cc; ++i) {
        const std::size_t j = c * cc + i;
        dst[i] = j < cols ? half::f32_to_bf16(w[j]) : 0;
      }
    }
  }
}

PackedMatrix::PackedMatrix(std::size_t rows, std::size_t cols, WeightFormat format, const RowSource& source)
    : impl_(std::make_unique<Impl>()) {
  if (rows == 0 || cols == 0)
    throw Error(ErrorCode::invalid_argument, "matrix of " + std::to_string(rows) + " x " + std::to_string(cols) +
                                                 ": rows and cols must be at least 1");
  if (cols > kMaxCols)
    throw Error(ErrorCode::invalid_argument,
                "cols=" + std::to_string(cols) + " too large: at most 2^20 (the q8 kernels' exact int32 sums)");
  Impl& m = *impl_;
  m.rows = rows;
  m.cols = cols;
  m.format = format;
  m.rows_padded = (rows + kTileRows - 1) / kTileRows * kTileRows;
  m.chunks = (cols + m.chunk_cols() - 1) / m.chunk_cols();
  const std::size_t data_bytes = m.rows_padded * m.chunks * kChunkBytes;
  m.data = aligned_array<std::byte>(data_bytes, data_bytes >= kHugePage ? kHugePage : 64);
  if (format == WeightFormat::q8) {
    m.scales.assign(m.rows_padded, 0.0f);
    m.sums.assign(m.rows_padded, 0);
  }
  // Padding rows of the last tile: zero weights.
  for (std::size_t r = rows; r < m.rows_padded; ++r)
    for (std::size_t c = 0; c < m.chunks; ++c) std::memset(m.chunk_at(r, c), 0, kChunkBytes);

  std::atomic<bool> non_finite{false};
  const std::size_t tiles = m.rows_padded / kTileRows;
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, tiles), [&](const tbb::blocked_range<std::size_t>& range) {
    std::vector<float> row(cols);
    for (std::size_t t = range.begin(); t < range.end(); ++t)
      for (std::size_t r = t * kTileRows; r < std::min(rows, (t + 1) * kTileRows); ++r) {
        source(r, row);
        if (!std::all_of(row.begin(), row.end(), [](float v) { return std::isfinite(v); })) {
          non_finite = true;
          continue;
        }
        m.pack_row(r, row.data());
      }
  });
  if (non_finite) throw Error(ErrorCode::non_finite_input, "matrix weights must be finite");
}

namespace {
RowSource rows_of(std::span<const float> row_major, std::size_t rows, std::size_t cols) {
  if (row_major.size() != rows * cols)
    throw Error(ErrorCode::shape_mismatch, "matrix data has " + std::to_string(row_major.size()) +
                                               " values, expected rows x cols = " + std::to_string(rows * cols));
  return [row_major, cols](std::size_t r, std::span<float> out) {
    std::copy_n(row_major.data() + r * cols, cols, out.data());
  };
}
}  // namespace

PackedMatrix::PackedMatrix(std::size_t rows, std::size_t cols, WeightFormat format, std::span<const float> row_major)
    : PackedMatrix(rows, cols, format, rows_of(row_major, rows, cols)) {}

PackedMatrix::~PackedMatrix() = default;
PackedMatrix::PackedMatrix(PackedMatrix&&) noexcept = default;
PackedMatrix& PackedMatrix::operator=(PackedMatrix&&) noexcept = default;

std::size_t PackedMatrix::rows() const noexcept {
  return impl_->rows;
}
std::size_t PackedMatrix::cols() const noexcept {
  return impl_->cols;
}
WeightFormat PackedMatrix::format() const noexcept {
  return impl_->format;
}

std::uint64_t PackedMatrix::bytes() const noexcept {
  const Impl& m = *impl_;
  return std::uint64_t(m.rows_padded) * m.chunks * kChunkBytes +
         (m.format == WeightFormat::q8 ? m.rows_padded * (sizeof(float) + sizeof(std::int32_t)) : 0);
}

void PackedMatrix::dequantize_row(std::size_t row, std::span<float> out) const {
  const Impl& m = *impl_;
  if (row >= m.rows)
    throw Error(ErrorCode::invalid_argument,
                "row=" + std::to_string(row) + " out of range: must be below rows=" + std::to_string(m.rows));
  if (out.size() != m.cols)
    throw Error(ErrorCode::shape_mismatch,
                "row output has " + std::to_string(out.size()) + " values, expected cols=" + std::to_string(m.cols));
  const std::size_t cc = m.chunk_cols();
  for (std::size_t j = 0; j < m.cols; ++j) {
    const std::byte* chunk = m.chunk_at(row, j / cc);
    out[j] = m.format == WeightFormat::q8 ? m.scales[row] * float(reinterpret_cast<const std::int8_t*>(chunk)[j % cc])
                                          : half::bf16_to_f32(reinterpret_cast<const std::uint16_t*>(chunk)[j % cc]);
  }
}

namespace {

// Tiles per task: about 256 KiB of weights, one stream each; a thread takes the next
// task when it finishes one (the other engineers' jobs on this VM slow one core at a
// time, so a static split waits for the slower half).
std::size_t grain_tiles(const PackedView& v) {
  return std::max<std::size_t>(1, (std::size_t{256} << 10) / v.tile_bytes());
}

template <class Body>
void for_tiles(const PackedView& v, tbb::task_arena* arena, const Body& body) {
  const std::size_t tiles = (v.rows + kTileRows - 1) / kTileRows;
  const auto run = [&] {
    tbb::parallel_for(
        tbb::blocked_range<std::size_t>(0, tiles, grain_tiles(v)),
        [&](const tbb::blocked_range<std::size_t>& r) { body(r.begin(), r.end()); }, tbb::simple_partitioner{});
  };
  if (arena)
    arena->execute(run);
  else
    run();
}

}  // namespace

void PackedMatrix::matvec(std::span<const float> x, std::span<float> y, tbb::task_arena* arena, Q8Kernel kernel) const {
  const Impl& m = *impl_;
  if (x.size() != m.cols)
    throw Error(ErrorCode::shape_mismatch,
                "x has " + std::to_string(x.size()) + " values, expected cols=" + std::to_string(m.cols));
  if (y.size() != m.rows)
    throw Error(ErrorCode::shape_mismatch,
                "y has " + std::to_string(y.size()) + " values, expected rows=" + std::to_string(m.rows));
  const Isa isa = active_isa();
  const PackedView v = m.view();
  const std::size_t n = m.cols_padded();
  float* out = y.data();

  if (m.format == WeightFormat::q8 && resolve_q8_kernel(kernel) == Q8Kernel::vnni) {
    float max_abs = 0.0f;
    for (const float xi : x) {
      if (!std::isfinite(xi)) throw Error(ErrorCode::non_finite_input, "x must be finite");
      max_abs = std::max(max_abs, std::fabs(xi));
    }
    const float x_scale = max_abs > 0.0f ? max_abs / 127.0f : 1.0f;
    auto xq = aligned_array<std::uint8_t>(n, 64);
    for (std::size_t j = 0; j < n; ++j)
      xq[j] = std::uint8_t(j < m.cols ? int(std::nearbyint(x[j] / x_scale)) + 128 : 128);
    for_tiles(v, arena, [&](std::size_t t0, std::size_t t1) { q8_vnni_rows(v, xq.get(), x_scale, t0, t1, out); });
    return;
  }

  auto xp = aligned_array<float>(n, 64);
  std::copy(x.begin(), x.end(), xp.get());
  std::fill(xp.get() + m.cols, xp.get() + n, 0.0f);
  if (m.format == WeightFormat::q8) {
    kernels::dispatch_isa(isa, [&](auto arch) {
      for_tiles(v, arena,
                [&](std::size_t t0, std::size_t t1) { Q8WidenRows<decltype(arch)>{}(arch, v, xp.get(), t0, t1, out); });
    });
    return;
  }
  auto pairs = aligned_array<float>(n, 64);
  kernels::dispatch_isa(isa, [&](auto arch) {
    Bf16PairOrder<decltype(arch)>{}(arch, xp.get(), pairs.get(), n);
    for_tiles(v, arena,
              [&](std::size_t t0, std::size_t t1) { Bf16Rows<decltype(arch)>{}(arch, v, pairs.get(), t0, t1, out); });
  });
}

}  // namespace sparq::e2e
