#include "machine_summary.hpp"

#include <hwloc.h>

#include <fstream>
#include <memory>
#include <thread>

namespace sparq::cli {

namespace {

// "model name : Intel(R) Xeon(R) ..." from /proc/cpuinfo; empty when absent.
std::string cpu_model_from_proc() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("model name")) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto value = line.substr(colon + 1);
    const auto first = value.find_first_not_of(" \t");
    return first == std::string::npos ? std::string() : value.substr(first);
  }
  return {};
}

struct TopologyDeleter {
  void operator()(hwloc_topology* t) const { hwloc_topology_destroy(t); }
};
using Topology = std::unique_ptr<hwloc_topology, TopologyDeleter>;

Topology load_topology() {
  hwloc_topology_t t = nullptr;
  if (hwloc_topology_init(&t) != 0) return nullptr;
  Topology owned(t);
  if (hwloc_topology_load(t) != 0) return nullptr;
  return owned;
}

std::size_t count_of(hwloc_topology_t t, hwloc_obj_type_t type) {
  const int n = hwloc_get_nbobjs_by_type(t, type);
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

}  // namespace

MachineSummary summarize_machine() {
  MachineSummary m;
  m.cpu_model = cpu_model_from_proc();

  const Topology topo = load_topology();
  if (!topo) {
    m.warnings.push_back("hwloc could not load the topology: cores, caches and NUMA nodes are unknown");
    m.pus = std::thread::hardware_concurrency();
    return m;
  }
  hwloc_topology_t t = topo.get();
  m.packages = count_of(t, HWLOC_OBJ_PACKAGE);
  m.cores = count_of(t, HWLOC_OBJ_CORE);
  m.pus = count_of(t, HWLOC_OBJ_PU);
  if (m.cpu_model.empty() && m.packages > 0) {
    hwloc_obj_t pkg = hwloc_get_obj_by_type(t, HWLOC_OBJ_PACKAGE, 0);
    if (const char* model = pkg ? hwloc_obj_get_info_by_name(pkg, "CPUModel") : nullptr) m.cpu_model = model;
  }
  if (m.cpu_model.empty()) m.warnings.push_back("CPU model unknown (neither /proc/cpuinfo nor hwloc name it)");

  const std::pair<hwloc_obj_type_t, const char*> levels[] = {
      {HWLOC_OBJ_L1CACHE, "L1d"}, {HWLOC_OBJ_L2CACHE, "L2"}, {HWLOC_OBJ_L3CACHE, "L3"}};
  for (auto [type, name] : levels) {
    const std::size_t n = count_of(t, type);
    if (n == 0) continue;
    hwloc_obj_t obj = hwloc_get_obj_by_type(t, type, 0);
    if (obj && obj->attr) m.caches.push_back({name, obj->attr->cache.size, n});
  }

  const std::size_t nodes = count_of(t, HWLOC_OBJ_NUMANODE);
  for (std::size_t i = 0; i < nodes; ++i) {
    hwloc_obj_t node = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, static_cast<unsigned>(i));
    if (!node) continue;
    m.numa_nodes.push_back({node->os_index, node->attr ? node->attr->numanode.local_memory : 0});
  }
  return m;
}

}  // namespace sparq::cli
