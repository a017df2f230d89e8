// describe_machine(): the topology facts the roofline report needs (hwloc, through
// Topology::this_system()) plus the CPU model and active ISA.
#include "sparq/tools/machine.hpp"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <thread>

#include "sparq/topology.hpp"

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
  // The same hwloc facts `sparq info` shows (one loader for the whole library).
  const Topology& t = Topology::this_system();
  const unsigned hc = std::thread::hardware_concurrency();
  m.hardware_threads = t.pus ? t.pus : (hc ? hc : 1);
  m.cores = t.cores ? t.cores : m.hardware_threads;
  m.numa_nodes = std::max<std::size_t>(t.nodes.size(), 1);
  if (m.cpu_model == "unknown" && !t.cpu_model.empty()) m.cpu_model = t.cpu_model;
  if (!t.caches.empty()) {  // L1d first: the last entry is the last level
    const CacheLevelInfo& llc = t.caches.back();
    m.llc_bytes = std::size_t(llc.size_bytes);
    m.llc_instances = llc.count;
    m.llc_level = int(llc.level);
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
