// describe_machine(): the topology facts the roofline report needs, from hwloc.
#include "sparq/machine.hpp"

#include <hwloc.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <thread>

#include "profile/topology.hpp"

namespace sparq {
namespace {

std::string cpu_model_from_proc() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        auto start = line.find_first_not_of(" \t", colon + 1);
        if (start != std::string::npos) return line.substr(start);
      }
    }
  }
  return "unknown";
}

}  // namespace

MachineInfo describe_machine() {
  MachineInfo m;
  m.isa = active_isa();
  m.cpu_model = cpu_model_from_proc();
  const unsigned hc = std::thread::hardware_concurrency();
  m.hardware_threads = hc ? hc : 1;
  m.cores = m.hardware_threads;

  hwloc_topology_t topo = profile::process_topology();
  if (!topo) return m;
  const int pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
  const int cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
  const int nodes = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
  if (pus > 0) m.hardware_threads = std::size_t(pus);
  if (cores > 0) m.cores = std::size_t(cores);
  if (nodes > 0) m.numa_nodes = std::size_t(nodes);
  if (m.cpu_model == "unknown") {
    if (hwloc_obj_t pkg = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PACKAGE, 0)) {
      if (const char* model = hwloc_obj_get_info_by_name(pkg, "CPUModel")) m.cpu_model = model;
    }
  }
  // The last level: the highest data/unified cache level present.
  const hwloc_obj_type_t levels[] = {HWLOC_OBJ_L5CACHE, HWLOC_OBJ_L4CACHE, HWLOC_OBJ_L3CACHE, HWLOC_OBJ_L2CACHE,
                                     HWLOC_OBJ_L1CACHE};
  const int level_numbers[] = {5, 4, 3, 2, 1};
  for (std::size_t i = 0; i < std::size(levels); ++i) {
    const int n = hwloc_get_nbobjs_by_type(topo, levels[i]);
    if (n <= 0) continue;
    hwloc_obj_t c = hwloc_get_obj_by_type(topo, levels[i], 0);
    if (c && c->attr) {
      m.llc_bytes = std::size_t(c->attr->cache.size);
      m.llc_instances = std::size_t(n);
      m.llc_level = level_numbers[i];
    }
    break;
  }
  return m;
}

std::size_t default_read_buffer_bytes(const MachineInfo& machine) {
  constexpr std::size_t MiB = std::size_t{1} << 20;
  const std::size_t llc_total = machine.llc_bytes * std::max<std::size_t>(machine.llc_instances, 1);
  std::size_t bytes = std::max<std::size_t>(256 * MiB, 8 * llc_total);
  bytes = std::min<std::size_t>(bytes, 1024 * MiB);
  const long pages = sysconf(_SC_AVPHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) {
    const std::size_t quarter = std::size_t(pages) * std::size_t(page) / 4;
    bytes = std::min(bytes, std::max<std::size_t>(quarter, 64 * MiB));
  }
  return bytes / (2 * MiB) * (2 * MiB);
}

}  // namespace sparq
