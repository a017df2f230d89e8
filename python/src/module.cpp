// The _sparq extension module: sparq::Error as the Python exception sparq.Error, and the
// instruction-set controls. The cache, methods and decode are bound in their own files.
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "bindings.hpp"
#include "sparq/error.hpp"
#include "sparq/isa.hpp"
#include "sparq/version.hpp"

namespace sparq::py_bind {
namespace {

Isa parse_isa_arg(const std::string& name) {
  const auto isa = parse_isa(name);
  if (!isa) throw Error(ErrorCode::invalid_argument, "isa='" + name + "' is unknown: must be avx512, avx2 or generic");
  return *isa;
}

}  // namespace

void bind_errors(py::module_& m) {
  // A RuntimeError (as sparq::Error is a std::runtime_error) and a ValueError (most codes
  // are bad arguments), so callers can catch it either way or as sparq.Error.
  const py::tuple bases = py::make_tuple(py::handle(PyExc_RuntimeError), py::handle(PyExc_ValueError));
  static py::handle error_type(PyErr_NewExceptionWithDoc(
      "sparq.Error",
      "An error reported by the sparq library. `code` names the kind (invalid_argument, shape_mismatch, "
      "unknown_sequence, capacity_exhausted, non_finite_input, empty_sequence, bad_file, io_error, unsupported, "
      "concurrent_use); the message names the argument and the rule it broke. Nothing was changed.",
      bases.ptr(), nullptr));
  if (!error_type) throw py::error_already_set();
  m.attr("Error") = error_type;
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      py::object exc = py::reinterpret_borrow<py::object>(error_type)(e.what());
      exc.attr("code") = std::string(to_string(e.code()));
      PyErr_SetObject(error_type.ptr(), exc.ptr());
    }
  });
}

}  // namespace sparq::py_bind

PYBIND11_MODULE(_sparq, m) {
  namespace sb = sparq::py_bind;
  namespace py = pybind11;
  m.doc() = "sparq: bandwidth-efficient decode attention (SparQ) on CPUs. Use the `sparq` package, not this module.";
  m.attr("__version__") = SPARQ_VERSION_STRING;
  sb::bind_errors(m);
  sb::bind_cache(m);
  sb::bind_methods(m);
  sb::bind_decode(m);

  m.def(
      "active_isa", [] { return std::string(sparq::to_string(sparq::active_isa())); },
      "The instruction set the kernels use now: 'avx512', 'avx2' or 'generic'.");
  m.def(
      "compiled_isas",
      [] {
        py::list out;
        for (const sparq::Isa i : sparq::compiled_isas()) out.append(std::string(sparq::to_string(i)));
        return out;
      },
      "Instruction sets compiled into this build, best first.");
  m.def(
      "cpu_supports", [](const std::string& isa) { return sparq::cpu_supports(sb::parse_isa_arg(isa)); },
      py::arg("isa"), "Whether this CPU can run the variant.");
  m.def(
      "force_isa",
      [](std::optional<std::string> isa) {
        sparq::force_isa(isa ? std::optional(sb::parse_isa_arg(*isa)) : std::nullopt);
      },
      py::arg("isa"),
      "Forces a variant for the whole process (tests, comparisons); None returns to the automatic choice. "
      "Raises sparq.Error(code='unsupported') when the CPU cannot run it.");
}
