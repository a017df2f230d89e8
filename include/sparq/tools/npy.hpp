// .npy files: reading float arrays (activations, cached K/V dumped from a model) and
// writing float32 results.
//
// Reading accepts what numpy writes for plain float arrays: format versions 1.0, 2.0
// and 3.0 (header length u16 for 1.0, u32 for 2.0 and 3.0; 3.0's header is UTF-8),
// C order (`'fortran_order': False`), little-endian `<f4` (float32) or `<f8` (float64,
// converted to float32 with round-to-nearest; magnitudes beyond float's range become
// ±inf). Everything else is refused with sparq::Error(ErrorCode::bad_file) whose message
// names the file and the problem: bad magic, unknown version, malformed header dict,
// big-endian or non-float dtypes, structured or object arrays, Fortran order, shapes
// whose size overflows, data shorter or longer than the shape implies. No input makes
// the reader crash or allocate more than the file's size (plus a bounded header).
// A file that cannot be opened or read throws ErrorCode::io_error.
//
// Writing produces a version 1.0 file (2.0 only if the header would not fit) whose
// header is padded so the data starts at a multiple of 64 bytes, as numpy does, and
// replaces the destination atomically: the bytes go to a temporary file in the same
// directory, which is fsynced and renamed over the destination, so a reader sees the
// old file or the complete new one, and a failed write leaves no partial file behind.
//
// Thread safety: the functions share no state; concurrent calls are fine (two writes
// to the same path race only in which one ends up there).
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sparq {

// An n-dimensional float32 array in C (row-major) order.
struct NpyArray {
  std::vector<std::size_t> shape;   // empty for a 0-d (scalar) array
  std::vector<float> data;          // product(shape) elements
  int version = 1;                  // format major version of the file it came from
  bool converted_from_f64 = false;  // the file held `<f8` values

  [[nodiscard]] std::size_t ndim() const noexcept { return shape.size(); }
  [[nodiscard]] std::size_t size() const noexcept { return data.size(); }
};

// Reads a .npy file. Throws sparq::Error (bad_file, io_error) naming `path`.
[[nodiscard]] NpyArray read_npy(const std::filesystem::path& path);

// Parses the bytes of a .npy file held in memory; `name` is used in error messages.
[[nodiscard]] NpyArray parse_npy(std::span<const std::byte> bytes, std::string_view name = "<memory>");

// The bytes of a .npy file (v1.0, `<f4`, C order) holding `data` with `shape`.
// Throws ErrorCode::shape_mismatch when data.size() != product(shape).
[[nodiscard]] std::vector<std::byte> encode_npy(std::span<const float> data, std::span<const std::size_t> shape);

// Writes `data` with `shape` to `path` atomically (see above). Throws sparq::Error:
// shape_mismatch as encode_npy, io_error naming the path when the OS refuses.
void write_npy(const std::filesystem::path& path, std::span<const float> data, std::span<const std::size_t> shape);

// "[2, 3, 4]": a shape as error messages and tools print it.
[[nodiscard]] std::string shape_to_string(std::span<const std::size_t> shape);

}  // namespace sparq
