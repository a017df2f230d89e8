// What NUMA placement can do on this machine, found by trying it (for `sparq info`).
#pragma once

#include <string>
#include <vector>

namespace sparq::numa {

struct PlacementProbe {
  bool binding_works = false;     // bind, interleave and first touch all accepted on one page
  std::string binding_error;      // the first refusal, e.g. "interleave: Operation not permitted"
  std::vector<int> tbb_numa_ids;  // tbb::info::numa_nodes(); {-1} without tbbbind
  [[nodiscard]] bool arenas_pinnable() const noexcept { return !tbb_numa_ids.empty() && tbb_numa_ids.front() >= 0; }
};

// Binds one scratch page each way with the real (hwloc) binder, and asks oneTBB which
// NUMA nodes it knows. Records nothing in placement_status(). Never throws.
[[nodiscard]] PlacementProbe probe_placement() noexcept;

}  // namespace sparq::numa
