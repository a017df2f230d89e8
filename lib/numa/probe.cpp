// Placement probe (sparq::probe_placement, topology.hpp).
#include <oneapi/tbb/info.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "numa/memory_binder.hpp"
#include "sparq/topology.hpp"

namespace sparq {

using numa::BindMode;
using numa::make_hwloc_binder;

PlacementProbe probe_placement() noexcept {
  PlacementProbe p;
  try {
    for (tbb::numa_node_id id : tbb::info::numa_nodes()) p.tbb_numa_ids.push_back(int(id));
    const Topology& topo = Topology::this_system();
    if (topo.source != Topology::Source::this_system) {
      p.binding_error = "hwloc cannot read this machine";
      return p;
    }
    std::vector<unsigned> nodes;
    for (const NumaNodeInfo& n : topo.nodes) nodes.push_back(n.os_index);
    constexpr std::size_t kPage = 4096;
    std::unique_ptr<void, decltype(&std::free)> page(std::aligned_alloc(kPage, kPage), &std::free);
    if (!page) {
      p.binding_error = "no memory for a scratch page";
      return p;
    }
    const auto binder = make_hwloc_binder();
    const std::pair<BindMode, std::span<const unsigned>> tries[] = {
        {BindMode::bind, std::span(nodes).first(1)},
        {BindMode::interleave, std::span(nodes)},
        {BindMode::first_touch, std::span(nodes)},
    };
    for (const auto& [mode, set] : tries) {
      if (const int err = binder->bind(page.get(), kPage, set, mode)) {
        p.binding_error = std::string(to_string(mode)) + ": " + std::strerror(err);
        return p;
      }
    }
    std::memset(page.get(), 0, kPage);
    p.binding_works = true;
  } catch (...) {
    if (p.binding_error.empty()) p.binding_error = "probe failed";
  }
  return p;
}

}  // namespace sparq
