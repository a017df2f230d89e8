// Arrays handed to the binding: numpy arrays (buffer protocol) and anything that exports
// DLPack (torch tensors), viewed in place when they are C-contiguous on the CPU.
//
// Inputs (q, keys, values) may be f32, f16, bf16 or f64; a non-contiguous input is made
// contiguous (one copy) and f64 is narrowed to f32 (one copy). Outputs (out, lse, alpha)
// are written in place and must be contiguous and writable: f32, or f16/bf16 for `out`
// (computed in f32 and rounded once at the end). Errors are sparq::Error naming the
// argument, so they reach Python as sparq.Error with the same message style as the library.
#pragma once

#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace sparq::py_bind {

namespace py = pybind11;

enum class Elem : std::uint8_t { f32, f16, bf16, f64 };
const char* to_string(Elem e) noexcept;

struct DLPackHolder;  // a consumed DLPack capsule; its deleter runs when the Array dies

// A view of an array's elements. Destroy it with the GIL held (it may release Python
// objects); the view itself may be used without the GIL.
struct Array {
  void* data = nullptr;
  Elem elem = Elem::f32;
  std::vector<std::size_t> shape;
  py::object owner;                      // the exporter, or the contiguous copy made for an input
  std::shared_ptr<DLPackHolder> dlpack;  // when viewed through DLPack

  [[nodiscard]] std::size_t size() const noexcept;
  [[nodiscard]] std::size_t ndim() const noexcept { return shape.size(); }
  [[nodiscard]] std::string shape_string() const;
};

// `name` is used in error messages ("q", "keys", ...).
Array input_array(py::handle obj, const std::string& name);
Array output_array(py::handle obj, const std::string& name);
// True for None.
inline bool is_none(py::handle obj) {
  return obj.is_none();
}

// An input as f32: the array itself when it is f32, else widened into `scratch`.
std::span<const float> as_f32(const Array& a, std::vector<float>& scratch);

// An output computed in f32: the array itself when it is f32, else a scratch buffer that
// finish() rounds into the array.
class F32Out {
 public:
  explicit F32Out(const Array& a);
  [[nodiscard]] std::span<float> span() noexcept { return span_; }
  void finish() noexcept;

 private:
  const Array& array_;
  std::vector<float> scratch_;
  std::span<float> span_;
};

}  // namespace sparq::py_bind
