// The pieces of the _sparq extension module (python/sparq/ is its Python package).
#pragma once

#include <pybind11/pybind11.h>

#include <string>

#include "sparq/types.hpp"

namespace sparq::py_bind {

namespace py = pybind11;

void bind_errors(py::module_& m);
void bind_cache(py::module_& m);
void bind_methods(py::module_& m);
void bind_decode(py::module_& m);

// "f32" | "f16" | "bf16", also "float32", "bfloat16", numpy and torch dtypes.
DType parse_dtype_arg(py::handle obj);

}  // namespace sparq::py_bind
