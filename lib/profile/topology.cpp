#include "profile/topology.hpp"

namespace sparq::profile {
namespace {

struct Topology {
  hwloc_topology_t topo = nullptr;
  Topology() noexcept {
    if (hwloc_topology_init(&topo) != 0) {
      topo = nullptr;
      return;
    }
    if (hwloc_topology_load(topo) != 0) {
      hwloc_topology_destroy(topo);
      topo = nullptr;
    }
  }
  ~Topology() {
    if (topo) hwloc_topology_destroy(topo);
  }
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;
};

}  // namespace

hwloc_topology_t process_topology() noexcept {
  static const Topology t;  // thread-safe one-time initialization
  return t.topo;
}

}  // namespace sparq::profile
