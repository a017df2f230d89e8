// numpy through the buffer protocol, torch (and anything else) through DLPack.
#include "arrays.hpp"

#include <pybind11/numpy.h>

#include <cstring>

#include "capi/half_input.hpp"
#include "sparq/error.hpp"

namespace sparq::py_bind {
namespace {

// DLPack 0.x ABI (dlpack.h, stable since 0.2; torch 1.13 exports it as "dltensor").
struct DLDevice {
  std::int32_t device_type;
  std::int32_t device_id;
};
struct DLDataType {
  std::uint8_t code;
  std::uint8_t bits;
  std::uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  std::int32_t ndim;
  DLDataType dtype;
  std::int64_t* shape;
  std::int64_t* strides;
  std::uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};
constexpr std::int32_t kDLCPU = 1;
constexpr std::uint8_t kDLFloat = 2, kDLBfloat = 4;

[[noreturn]] void fail(ErrorCode code, const std::string& message) {
  throw Error(code, message);
}

std::string shape_string(const std::vector<std::size_t>& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

struct DLPackHolder {
  DLManagedTensor* managed = nullptr;
  ~DLPackHolder() {
    if (managed && managed->deleter) managed->deleter(managed);
  }
};

const char* to_string(Elem e) noexcept {
  switch (e) {
    case Elem::f32:
      return "float32";
    case Elem::f16:
      return "float16";
    case Elem::bf16:
      return "bfloat16";
    case Elem::f64:
      return "float64";
  }
  return "?";
}

std::size_t Array::size() const noexcept {
  std::size_t n = 1;
  for (const std::size_t s : shape) n *= s;
  return n;
}

std::string Array::shape_string() const {
  return py_bind::shape_string(shape);
}

namespace {

// numpy: dtype float32/float16/float64 (numpy has no bfloat16).
Array from_numpy(const py::array& a, const std::string& name, bool output) {
  const py::dtype dt = a.dtype();
  Array out;
  if (dt.kind() == 'f' && dt.itemsize() == 4)
    out.elem = Elem::f32;
  else if (dt.kind() == 'f' && dt.itemsize() == 2)
    out.elem = Elem::f16;
  else if (dt.kind() == 'f' && dt.itemsize() == 8 && !output)
    out.elem = Elem::f64;
  else
    fail(ErrorCode::invalid_argument, name + " has numpy dtype " + std::string(py::str(py::handle(dt))) +
                                          ": must be float32" + (output ? " or float16" : ", float16 or float64"));
  if (output) {
    if (!(a.flags() & py::array::c_style))
      fail(ErrorCode::invalid_argument, name + " is not C-contiguous: outputs are written in place");
    if (!a.writeable()) fail(ErrorCode::invalid_argument, name + " is read-only: outputs are written in place");
  }
  out.data = const_cast<void*>(a.data());
  for (py::ssize_t i = 0; i < a.ndim(); ++i) out.shape.push_back(std::size_t(a.shape(i)));
  out.owner = a;
  return out;
}

bool compact(const DLTensor& t) {
  if (!t.strides) return true;
  std::int64_t expect = 1;
  for (std::int32_t i = t.ndim - 1; i >= 0; --i) {
    if (t.shape[i] != 1 && t.strides[i] != expect) return false;
    expect *= t.shape[i];
  }
  return true;
}

// Consumes a "dltensor" capsule (renamed "used_dltensor", as the protocol asks).
Array from_capsule(const py::capsule& cap, const std::string& name, bool output, py::handle exporter) {
  if (std::strcmp(cap.name(), "dltensor") != 0)
    fail(ErrorCode::invalid_argument, name + ": the DLPack capsule was already consumed");
  auto holder = std::make_shared<DLPackHolder>();
  holder->managed = static_cast<DLManagedTensor*>(cap.get_pointer());
  PyCapsule_SetName(cap.ptr(), "used_dltensor");
  const DLTensor& t = holder->managed->dl_tensor;
  if (t.device.device_type != kDLCPU)
    fail(ErrorCode::invalid_argument, name + " is not on the CPU (DLPack device type " +
                                          std::to_string(t.device.device_type) + "): sparq decodes on the CPU");
  Array out;
  const DLDataType d = t.dtype;
  if (d.lanes == 1 && d.code == kDLFloat && d.bits == 32)
    out.elem = Elem::f32;
  else if (d.lanes == 1 && d.code == kDLFloat && d.bits == 16)
    out.elem = Elem::f16;
  else if (d.lanes == 1 && d.code == kDLBfloat && d.bits == 16)
    out.elem = Elem::bf16;
  else if (d.lanes == 1 && d.code == kDLFloat && d.bits == 64 && !output)
    out.elem = Elem::f64;
  else
    fail(ErrorCode::invalid_argument, name + " has DLPack dtype code " + std::to_string(d.code) + " bits " +
                                          std::to_string(d.bits) + ": must be float32, float16 or bfloat16");
  for (std::int32_t i = 0; i < t.ndim; ++i) out.shape.push_back(std::size_t(t.shape[i]));
  if (!compact(t)) {
    if (output) fail(ErrorCode::invalid_argument, name + " is not contiguous: outputs are written in place");
    if (!exporter || !py::hasattr(exporter, "contiguous"))
      fail(ErrorCode::invalid_argument, name + " is not contiguous");
    return input_array(exporter.attr("contiguous")(), name);  // one copy, then viewed in place
  }
  out.data = static_cast<std::byte*>(t.data) + t.byte_offset;
  out.dlpack = std::move(holder);
  out.owner = py::reinterpret_borrow<py::object>(exporter ? exporter : py::handle(cap));
  return out;
}

Array from_object(py::handle obj, const std::string& name, bool output) {
  if (obj.is_none()) fail(ErrorCode::invalid_argument, name + " is None: an array is required");
  if (py::isinstance<py::array>(obj)) {
    py::array a = py::reinterpret_borrow<py::array>(obj);
    if (!output && !(a.flags() & py::array::c_style))
      a = py::array::ensure(a, py::array::c_style);  // one copy of a strided input
    return from_numpy(a, name, output);
  }
  if (py::isinstance<py::capsule>(obj))
    return from_capsule(py::reinterpret_borrow<py::capsule>(obj), name, output, py::handle());
  if (py::hasattr(obj, "__dlpack__")) {
    py::object src = py::reinterpret_borrow<py::object>(obj);
    // torch refuses to export tensors that require grad; an input is only read.
    if (!output && py::hasattr(src, "requires_grad") && src.attr("requires_grad").cast<bool>())
      src = src.attr("detach")();
    return from_capsule(src.attr("__dlpack__")().cast<py::capsule>(), name, output, src);
  }
  if (output)
    fail(ErrorCode::invalid_argument, name + " (a " + std::string(py::str(obj.get_type().attr("__name__"))) +
                                          ") is not an array: pass a numpy array or a torch tensor to write into");
  // Lists, memoryviews, ...: whatever numpy makes of them.
  py::array a = py::array::ensure(obj, py::array::c_style);
  if (!a) {
    PyErr_Clear();
    fail(ErrorCode::invalid_argument, name + " (a " + std::string(py::str(obj.get_type().attr("__name__"))) +
                                          ") is not an array: pass a numpy array or a torch tensor");
  }
  return from_numpy(a, name, false);
}

}  // namespace

Array input_array(py::handle obj, const std::string& name) {
  return from_object(obj, name, false);
}
Array output_array(py::handle obj, const std::string& name) {
  return from_object(obj, name, true);
}

std::span<const float> as_f32(const Array& a, std::vector<float>& scratch) {
  const std::size_t n = a.size();
  switch (a.elem) {
    case Elem::f32:
      return {static_cast<const float*>(a.data), n};
    case Elem::f64: {
      scratch.resize(n);
      const auto* d = static_cast<const double*>(a.data);
      for (std::size_t i = 0; i < n; ++i) scratch[i] = float(d[i]);
      return scratch;
    }
    case Elem::f16:
    case Elem::bf16:
      scratch.resize(n);
      capi::widen(a.elem == Elem::f16 ? capi::Half::f16 : capi::Half::bf16, static_cast<const std::uint16_t*>(a.data),
                  scratch.data(), n);
      return scratch;
  }
  return {};
}

F32Out::F32Out(const Array& a) : array_(a) {
  if (a.elem == Elem::f32) {
    span_ = {static_cast<float*>(a.data), a.size()};
  } else {
    scratch_.resize(a.size());
    span_ = scratch_;
  }
}

void F32Out::finish() noexcept {
  if (array_.elem == Elem::f16 || array_.elem == Elem::bf16)
    capi::narrow(array_.elem == Elem::f16 ? capi::Half::f16 : capi::Half::bf16, scratch_.data(),
                 static_cast<std::uint16_t*>(array_.data), scratch_.size());
}

}  // namespace sparq::py_bind
