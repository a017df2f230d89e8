// Fuzz target of the .npy reader: tests/io/npy_fuzz_target.hpp's rule (parsed into a
// consistent array, or refused with bad_file) as a check.
#pragma once

#include "fuzz_check.hpp"
#include "npy_fuzz_target.hpp"

namespace sparq::fuzz {

// Returns whether the input was parsed (rather than refused).
inline bool npy_one(const std::uint8_t* data, std::size_t size) {
  const test::FuzzOutcome o = test::npy_fuzz_one(data, size);
  SPARQ_FUZZ_CHECK(o != test::FuzzOutcome::wrong, "npy input of %zu bytes", size);
  return o == test::FuzzOutcome::parsed;
}

}  // namespace sparq::fuzz
