// The benchmarks run every compiled ISA variant this CPU supports (best first), each named
// in the benchmark's name (".../isa:avx2"), so one run compares them side by side.
#pragma once

#include <optional>
#include <vector>

#include "sparq/isa.hpp"

namespace sparq::bench {

[[nodiscard]] inline std::vector<Isa> runnable_isas() {
  std::vector<Isa> out;
  for (Isa isa : compiled_isas())
    if (cpu_supports(isa)) out.push_back(isa);
  return out;
}

// Forces `isa` for the process while alive (decode reads it at each call).
class ScopedIsa {
 public:
  explicit ScopedIsa(Isa isa) { force_isa(isa); }
  ~ScopedIsa() { force_isa(std::nullopt); }
  ScopedIsa(const ScopedIsa&) = delete;
  ScopedIsa& operator=(const ScopedIsa&) = delete;
};

}  // namespace sparq::bench
