#include "sparq/error.hpp"

namespace sparq {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::invalid_argument:
      return "invalid_argument";
    case ErrorCode::shape_mismatch:
      return "shape_mismatch";
    case ErrorCode::unknown_sequence:
      return "unknown_sequence";
    case ErrorCode::capacity_exhausted:
      return "capacity_exhausted";
    case ErrorCode::non_finite_input:
      return "non_finite_input";
    case ErrorCode::empty_sequence:
      return "empty_sequence";
    case ErrorCode::bad_file:
      return "bad_file";
    case ErrorCode::io_error:
      return "io_error";
    case ErrorCode::unsupported:
      return "unsupported";
    case ErrorCode::concurrent_use:
      return "concurrent_use";
  }
  return "unknown";
}

}  // namespace sparq
