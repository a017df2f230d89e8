// A short description of the machine for `sparq info`: CPU model, cores, caches, NUMA
// nodes. Built from sparq::Topology (lib/numa, hwloc), so `sparq info --topology` can
// describe another machine (an XML export or a synthetic description) the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sparq/topology.hpp"

namespace sparq::cli {

struct CacheSummary {
  std::string level;         // "L1d", "L2", "L3"
  std::uint64_t size_bytes;  // of one instance
  std::size_t count;         // instances in the machine
};

struct NumaNodeSummary {
  unsigned os_index;
  std::uint64_t memory_bytes;  // local memory of the node
  std::size_t cores = 0;       // cores whose nearest memory is this node
  std::size_t pus = 0;
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

// This machine (/proc/cpuinfo for the model, hwloc for the rest). Never throws for
// environment problems: what cannot be read is left empty and explained in `warnings`.
[[nodiscard]] MachineSummary summarize_machine();
// Any topology (this system's, an XML export, a synthetic description).
[[nodiscard]] MachineSummary summarize_topology(const Topology& topology);

}  // namespace sparq::cli
