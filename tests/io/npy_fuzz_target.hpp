// The .npy reader's fuzz target: any byte string is either parsed into a consistent
// array or refused with sparq::Error(bad_file); nothing else may happen. Shared by the
// gtest driver (npy_fuzz_test.cpp) and the libFuzzer binary (tests/fuzz/npy_fuzzer.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "sparq/error.hpp"
#include "sparq/tools/npy.hpp"

namespace sparq::test {

enum class FuzzOutcome { parsed, refused, wrong };

// parsed: an array whose size matches its shape; refused: sparq::Error(bad_file);
// wrong: anything else (another error code, an inconsistent array). Other exceptions
// propagate, crashes crash: both are failures to the callers.
inline FuzzOutcome npy_fuzz_one(const std::uint8_t* data, std::size_t size) {
  try {
    const NpyArray a = parse_npy(std::as_bytes(std::span(data, size)), "fuzz.npy");
    std::size_t n = 1;
    for (std::size_t d : a.shape) n *= d;
    return n == a.data.size() && a.version >= 1 && a.version <= 3 ? FuzzOutcome::parsed : FuzzOutcome::wrong;
  } catch (const Error& e) {
    return e.code() == ErrorCode::bad_file ? FuzzOutcome::refused : FuzzOutcome::wrong;
  }
}

}  // namespace sparq::test
