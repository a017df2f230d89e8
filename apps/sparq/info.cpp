// `sparq info`: what this build and this machine offer (version, ISA, cores, caches,
// NUMA nodes, the by-head assignment of KV heads and what placement can do here), as
// text or --json. --topology describes another machine (hwloc XML or synthetic string).
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "machine_summary.hpp"
#include "options.hpp"
#include "sparq/isa.hpp"
#include "sparq/topology.hpp"
#include "sparq/version.hpp"

namespace sparq::cli {

namespace {

struct InfoOptions {
  bool json = false;
  std::string topology;  // empty: this machine
  std::size_t kv_heads = 8;
};

// What info shows beyond the machine summary.
struct NumaView {
  const Topology* topology;
  std::size_t kv_heads;
  std::vector<HeadRange> by_head;
  const PlacementProbe* probe;  // this machine only; nullptr for --topology
};

std::string head_list(const HeadRange& r) {
  if (r.size() == 0) return "none";
  return r.size() == 1 ? fmt::format("head {}", r.begin) : fmt::format("heads {}-{}", r.begin, r.end - 1);
}

std::string human_bytes(std::uint64_t b) {
  if (b >= (1ULL << 30)) return fmt::format("{:.1f} GiB", double(b) / double(1ULL << 30));
  if (b >= (1ULL << 20)) return fmt::format("{:.1f} MiB", double(b) / double(1ULL << 20));
  if (b >= (1ULL << 10)) return fmt::format("{} KiB", b >> 10);
  return fmt::format("{} B", b);
}

nlohmann::ordered_json to_json(const MachineSummary& m, const NumaView& v) {
  nlohmann::ordered_json j;
  j["version"] = kVersion;
  j["cpu_model"] = m.cpu_model;
  j["isa"] = std::string(to_string(active_isa()));
  auto isas = nlohmann::ordered_json::array();
  for (Isa isa : compiled_isas())
    isas.push_back({{"name", std::string(to_string(isa))}, {"cpu_supports", cpu_supports(isa)}});
  j["compiled_isas"] = isas;
  j["packages"] = m.packages;
  j["cores"] = m.cores;
  j["pus"] = m.pus;
  auto caches = nlohmann::ordered_json::object();
  for (const auto& c : m.caches) caches[c.level] = {{"size_bytes", c.size_bytes}, {"count", c.count}};
  j["caches"] = caches;
  auto nodes = nlohmann::ordered_json::array();
  for (const auto& n : m.numa_nodes)
    nodes.push_back({{"os_index", n.os_index}, {"memory_bytes", n.memory_bytes}, {"cores", n.cores}, {"pus", n.pus}});
  j["numa_nodes"] = nodes;
  j["topology"] = {{"source", std::string(to_string(v.topology->source))}, {"description", v.topology->description}};
  auto ranges = nlohmann::ordered_json::array();
  for (const HeadRange& r : v.by_head)
    ranges.push_back({{"os_index", v.topology->nodes[r.node].os_index}, {"head_begin", r.begin}, {"head_end", r.end}});
  j["by_head"] = {{"kv_heads", v.kv_heads}, {"nodes", ranges}};
  if (v.probe)
    j["placement"] = {{"binding_works", v.probe->binding_works},
                      {"binding_error", v.probe->binding_error},
                      {"arenas_pinnable", v.probe->arenas_pinnable()},
                      {"tbb_numa_ids", v.probe->tbb_numa_ids}};
  j["warnings"] = m.warnings;
  return j;
}

void print_text(const MachineSummary& m, const NumaView& v) {
  fmt::print("sparq {}\n", kVersion);
  fmt::print("cpu:          {}\n", m.cpu_model.empty() ? "unknown" : m.cpu_model);
  fmt::print("isa:          {} (active)\n", to_string(active_isa()));
  std::string compiled;
  for (Isa isa : compiled_isas())
    compiled += fmt::format("{}{}{}", compiled.empty() ? "" : ", ", to_string(isa),
                            cpu_supports(isa) ? "" : " (not on this CPU)");
  fmt::print("compiled:     {}\n", compiled);
  fmt::print("cores:        {} cores, {} hardware threads, {} package(s)\n", m.cores, m.pus, m.packages);
  for (const auto& c : m.caches) fmt::print("{:<14}{} x {}\n", c.level + ":", c.count, human_bytes(c.size_bytes));
  if (!v.topology->is_this_system())
    fmt::print("topology:     {} '{}' (not this machine: isa and compiled describe this build)\n",
               to_string(v.topology->source), v.topology->description);
  for (const auto& n : m.numa_nodes)
    fmt::print("numa node {}:  {}, {} cores, {} hardware threads\n", n.os_index,
               n.memory_bytes ? human_bytes(n.memory_bytes) : "memory unknown", n.cores, n.pus);
  std::string by_head;
  for (const HeadRange& r : v.by_head)
    by_head +=
        fmt::format("{}node {}: {}", by_head.empty() ? "" : ", ", v.topology->nodes[r.node].os_index, head_list(r));
  fmt::print("by-head:      {} KV heads -> {}\n", v.kv_heads, by_head);
  if (v.probe) {
    fmt::print("placement:    memory binding {}; per-node arenas {}\n",
               v.probe->binding_works ? "works"
                                      : "refused (" + v.probe->binding_error + "): placement falls back to first touch",
               v.probe->arenas_pinnable() ? "pinned through tbbbind" : "not pinnable (libtbbbind not loaded)");
  }
  for (const auto& w : m.warnings) fmt::print("warning:      {}\n", w);
}

Action setup(CLI::App& cmd) {
  auto opts = std::make_shared<InfoOptions>();
  cmd.add_flag("--json", opts->json, "Print a JSON object instead of text");
  cmd.add_option("--topology", opts->topology,
                 "Describe another machine: an hwloc XML file (lstopo --of xml FILE.xml) or a synthetic "
                 "description such as 'node:2 core:4 pu:1'");
  cmd.add_option("--kv-heads", opts->kv_heads, "KV heads to show the by-head assignment for")
      ->transform(integer_in(1, 1 << 20))
      ->capture_default_str();
  return [opts] {
    const bool here = opts->topology.empty();
    const Topology other = here ? Topology{} : Topology::load(opts->topology);  // throws Error on a bad spec
    const Topology& topo = here ? Topology::this_system() : other;
    const MachineSummary m = here ? summarize_machine() : summarize_topology(topo);
    const PlacementProbe probe = here ? probe_placement() : PlacementProbe{};
    NumaView v{&topo, opts->kv_heads, {}, here ? &probe : nullptr};
    for (const HeadRange& r : assign_heads(topo, opts->kv_heads))
      if (topo.nodes[r.node].cores > 0 || r.size() > 0) v.by_head.push_back(r);
    if (opts->json)
      fmt::print("{}\n", to_json(m, v).dump(2));
    else
      print_text(m, v);
    return kExitOk;
  };
}

}  // namespace

Subcommand info_subcommand() {
  return {"info", "Show the version, the SIMD ISA in use, cores, caches and NUMA nodes", &setup};
}

}  // namespace sparq::cli
