// Errors and version of the C API: sparq_last_error, sparq_status_name, sparq_version.
#include "capi/capi_status.hpp"

#include <new>
#include <string>

#include "sparq/version.hpp"

namespace sparq::capi {
namespace {
// One per thread, so concurrent callers each read their own call's message.
thread_local std::string last_error;
}  // namespace

void set_last_error(const char* message) noexcept {
  try {
    last_error.assign(message);
  } catch (...) {
    last_error.clear();  // assign failed for lack of memory: an empty message beats none
  }
}

sparq_status status_of(ErrorCode code) noexcept {
  // ErrorCode's order is part of the C ABI: SPARQ_ERR_* = ErrorCode + 1.
  static_assert(int(ErrorCode::invalid_argument) + 1 == SPARQ_ERR_INVALID_ARGUMENT);
  static_assert(int(ErrorCode::concurrent_use) + 1 == SPARQ_ERR_CONCURRENT_USE);
  const int c = int(code) + 1;
  return c >= SPARQ_ERR_INVALID_ARGUMENT && c <= SPARQ_ERR_CONCURRENT_USE ? sparq_status(c) : SPARQ_ERR_INTERNAL;
}

void require(const void* p, const char* name) {
  if (!p) throw Error(ErrorCode::invalid_argument, std::string(name) + " is NULL: a valid pointer is required");
}

void check_struct_size(std::size_t got, std::size_t first, std::size_t ours, const char* type) {
  if (got < first)
    throw Error(ErrorCode::invalid_argument, std::string(type) + ".struct_size=" + std::to_string(got) +
                                                 " is too small: set it with the _init function or sizeof(" + type +
                                                 ") (" + std::to_string(ours) + ")");
  if (got > ours)
    throw Error(ErrorCode::unsupported, std::string(type) + ".struct_size=" + std::to_string(got) +
                                            " is larger than this libsparq knows (" + std::to_string(ours) +
                                            "): the caller was built against a newer sparq.h");
}

std::size_t checked_product(std::size_t a, std::size_t b, std::size_t c, const char* what) {
  std::size_t ab = 0, abc = 0;
  if (__builtin_mul_overflow(a, b, &ab) || __builtin_mul_overflow(ab, c, &abc))
    throw Error(ErrorCode::invalid_argument, std::string(what) + " = " + std::to_string(a) + "*" + std::to_string(b) +
                                                 "*" + std::to_string(c) + " overflows size_t");
  return abc;
}

}  // namespace sparq::capi

using namespace sparq;

extern "C" {

const char* sparq_last_error(void) {
  return capi::last_error.c_str();
}

const char* sparq_status_name(int status) {
  switch (status) {
    case SPARQ_OK:
      return "ok";
    case SPARQ_ERR_OUT_OF_MEMORY:
      return "out_of_memory";
    case SPARQ_ERR_INTERNAL:
      return "internal";
    default:
      break;
  }
  if (status >= SPARQ_ERR_INVALID_ARGUMENT && status <= SPARQ_ERR_CONCURRENT_USE)
    return to_string(ErrorCode(int(status) - 1)).data();  // to_string returns literals
  return "unknown";
}

const char* sparq_version(void) {
  return SPARQ_VERSION_STRING;
}

}  // extern "C"
