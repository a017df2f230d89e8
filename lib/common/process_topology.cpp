#include "common/process_topology.hpp"

namespace sparq {
namespace {

struct LoadedTopology {
  hwloc_topology_t topo = nullptr;
  LoadedTopology() noexcept {
    if (hwloc_topology_init(&topo) != 0) {
      topo = nullptr;
      return;
    }
    if (hwloc_topology_load(topo) != 0) {
      hwloc_topology_destroy(topo);
      topo = nullptr;
    }
  }
  ~LoadedTopology() {
    if (topo) hwloc_topology_destroy(topo);
  }
  LoadedTopology(const LoadedTopology&) = delete;
  LoadedTopology& operator=(const LoadedTopology&) = delete;
};

}  // namespace

hwloc_topology_t process_topology() noexcept {
  static const LoadedTopology t;  // thread-safe one-time initialization
  return t.topo;
}

}  // namespace sparq
