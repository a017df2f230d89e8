#include "machine_summary.hpp"

#include <fstream>

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

}  // namespace

MachineSummary summarize_topology(const Topology& t) {
  MachineSummary m;
  m.cpu_model = t.cpu_model;
  m.packages = t.packages;
  m.cores = t.cores;
  m.pus = t.pus;
  for (const CacheLevelInfo& c : t.caches) m.caches.push_back({c.name, c.size_bytes, c.count});
  for (const NumaNodeInfo& n : t.nodes) m.numa_nodes.push_back({n.os_index, n.memory_bytes, n.cores, n.pus});
  m.warnings = t.warnings;
  return m;
}

MachineSummary summarize_machine() {
  MachineSummary m = summarize_topology(Topology::this_system());
  if (std::string model = cpu_model_from_proc(); !model.empty()) m.cpu_model = std::move(model);
  if (m.cpu_model.empty()) m.warnings.push_back("CPU model unknown (neither /proc/cpuinfo nor hwloc name it)");
  return m;
}

}  // namespace sparq::cli
