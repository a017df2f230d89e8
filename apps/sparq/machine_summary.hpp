// A short description of the machine for `sparq info`: CPU model, cores, caches, NUMA
// nodes, read from hwloc. Deliberately small and self-contained so that the full
// topology module (lib/numa) can replace it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sparq::cli {

struct CacheSummary {
  std::string level;         // "L1d", "L2", "L3"
  std::uint64_t size_bytes;  // of one instance
  std::size_t count;         // instances in the machine
};

struct NumaNodeSummary {
  unsigned os_index;
  std::uint64_t memory_bytes;  // local memory of the node
};

struct MachineSummary {
  std::string cpu_model;  // empty when unknown
  std::size_t packages = 0;
  std::size_t cores = 0;
  std::size_t pus = 0;  // hardware threads
  std::vector<CacheSummary> caches;
  std::vector<NumaNodeSummary> numa_nodes;
  std::vector<std::string> warnings;  // what could not be found out, and why
};

// Never throws for environment problems: what cannot be read is left empty and
// explained in `warnings`.
[[nodiscard]] MachineSummary summarize_machine();

}  // namespace sparq::cli
