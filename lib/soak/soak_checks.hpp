// Checks of the soak's invariants that look at more than one operation
// (include/sparq/tools/soak.hpp lists them). Each records violations in `shared`.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "soak/soak_shared.hpp"
#include "sparq/method.hpp"

namespace sparq::soak {

// Decodes `q` over `record`'s layer in a private cache with the shared cache's
// configuration, serially (a one-thread arena), and returns whether the output equals
// `out` bit for bit; on a difference, records a violation naming `what`.
bool replay_matches(Shared& shared, const SeqRecord& record, std::size_t layer, const Method& method,
                    std::span<const float> q, std::span<const float> out, const std::string& what);

// With the workers parked: the cache holds exactly the `sequences_owned` sequences, each
// with one length over its layers, and the distinct blocks they reference are the
// blocks in use. Returns how many blocks they reference.
std::size_t check_blocks(Shared& shared, std::size_t sequences_owned);

// Memory once every sequence is removed, against the first drain's.
struct DrainBaseline {
  std::size_t blocks = 0;  // allocated at the first drain that had any
  std::size_t bytes = 0;   // memory_usage().total() then
};
// With every sequence removed: no block in use and memory at the baseline.
void check_drained(Shared& shared, DrainBaseline& baseline);

}  // namespace sparq::soak
