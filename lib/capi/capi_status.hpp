// Shared by the C API's translation units: the per-thread last-error message, the
// exception barrier every entry point runs in, and argument checks.
#pragma once

#include <cstddef>
#include <string>

#include "sparq/error.hpp"
#include "sparq/sparq.h"

namespace sparq::capi {

// Records the message of a failed call (or clears it) for sparq_last_error().
void set_last_error(const char* message) noexcept;
sparq_status status_of(ErrorCode code) noexcept;

// Runs f, mapping every exception to a status and a message; nothing escapes into C.
template <class F>
sparq_status guarded(F&& f) noexcept {
  try {
    f();
    set_last_error("");
    return SPARQ_OK;
  } catch (const Error& e) {
    set_last_error(e.what());
    return status_of(e.code());
  } catch (const std::bad_alloc&) {
    set_last_error("out of memory");
    return SPARQ_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_last_error(e.what());
    return SPARQ_ERR_INTERNAL;
  } catch (...) {
    set_last_error("unknown exception");
    return SPARQ_ERR_INTERNAL;
  }
}

// Throws Error(invalid_argument) "<name> is NULL" when p is null.
void require(const void* p, const char* name);
// Checks a struct's struct_size against the sizes this library knows ([first, ours]).
void check_struct_size(std::size_t got, std::size_t first, std::size_t ours, const char* type);
// a * b * c, or Error(invalid_argument) naming `what` when it overflows size_t.
std::size_t checked_product(std::size_t a, std::size_t b, std::size_t c, const char* what);

}  // namespace sparq::capi
