// `sparq info`: what this build and this machine offer (version, ISA, cores, caches,
// NUMA nodes), as text or --json.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "machine_summary.hpp"
#include "sparq/isa.hpp"
#include "sparq/version.hpp"

namespace sparq::cli {

namespace {

struct InfoOptions {
  bool json = false;
};

std::string human_bytes(std::uint64_t b) {
  if (b >= (1ULL << 30)) return fmt::format("{:.1f} GiB", double(b) / double(1ULL << 30));
  if (b >= (1ULL << 20)) return fmt::format("{:.1f} MiB", double(b) / double(1ULL << 20));
  if (b >= (1ULL << 10)) return fmt::format("{} KiB", b >> 10);
  return fmt::format("{} B", b);
}

nlohmann::ordered_json to_json(const MachineSummary& m) {
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
  for (const auto& n : m.numa_nodes) nodes.push_back({{"os_index", n.os_index}, {"memory_bytes", n.memory_bytes}});
  j["numa_nodes"] = nodes;
  j["warnings"] = m.warnings;
  return j;
}

void print_text(const MachineSummary& m) {
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
  for (const auto& n : m.numa_nodes)
    fmt::print("numa node {}:  {}\n", n.os_index, n.memory_bytes ? human_bytes(n.memory_bytes) : "memory unknown");
  for (const auto& w : m.warnings) fmt::print("warning:      {}\n", w);
}

Action setup(CLI::App& cmd) {
  auto opts = std::make_shared<InfoOptions>();
  cmd.add_flag("--json", opts->json, "Print a JSON object instead of text");
  return [opts] {
    const MachineSummary m = summarize_machine();
    if (opts->json)
      fmt::print("{}\n", to_json(m).dump(2));
    else
      print_text(m);
    return kExitOk;
  };
}

}  // namespace

Subcommand info_subcommand() {
  return {"info", "Show the version, the SIMD ISA in use, cores, caches and NUMA nodes", &setup};
}

}  // namespace sparq::cli
