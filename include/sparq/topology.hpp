// Machine topology for NUMA placement (DESIGN §2 "NUMA"): NUMA nodes with their memory,
// cores and hardware threads, cache sizes, and the by-head assignment of KV heads to
// nodes that the cache and decode follow.
//
// A Topology is a plain value (no hwloc types). It comes from this system, from an hwloc
// XML file, or from an hwloc synthetic description; the last two describe other machines
// and are used to plan and test placement, never to bind memory.
//
// Thread safety: Topology is a value; every function here may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sparq/types.hpp"

namespace sparq {

struct NumaNodeInfo {
  unsigned os_index = 0;           // the OS's node number (numactl, /sys/devices/system/node)
  unsigned logical_index = 0;      // hwloc's logical index; also oneTBB's numa_id
  std::uint64_t memory_bytes = 0;  // local memory; 0 when unknown
  // Cores (and hardware threads) whose nearest memory is this node. A memory-only node
  // (e.g. CXL or HBM next to DRAM of the same cores) has none and gets no KV heads.
  std::size_t cores = 0;
  std::size_t pus = 0;
};

struct CacheLevelInfo {
  std::string name;              // "L1d", "L2", "L3"
  unsigned level = 0;            // 1, 2, 3
  std::uint64_t size_bytes = 0;  // of one instance
  std::size_t count = 0;         // instances in the machine
};

struct Topology {
  enum class Source : std::uint8_t { this_system, xml, synthetic, fallback };

  Source source = Source::fallback;
  std::string description;  // the XML file or synthetic string; "this system" otherwise
  std::string cpu_model;    // hwloc's CPUModel of the first package; empty when unknown
  std::size_t packages = 0;
  std::size_t cores = 0;
  std::size_t pus = 0;
  std::uint64_t memory_bytes = 0;      // sum over nodes
  std::vector<NumaNodeInfo> nodes;     // by logical index; never empty
  std::vector<CacheLevelInfo> caches;  // data/unified caches present, L1d first
  std::vector<std::string> warnings;   // what could not be found out, and why

  // This machine through hwloc. Never throws: when hwloc cannot load the topology the
  // result is one node holding every hardware thread (source = fallback) with a warning.
  // Loaded once per process and cached.
  [[nodiscard]] static const Topology& this_system();
  // An hwloc XML export (lstopo --of xml). Throws Error(bad_file) naming the file.
  [[nodiscard]] static Topology from_xml_file(const std::string& path);
  [[nodiscard]] static Topology from_xml_string(std::string_view xml);
  // An hwloc synthetic description, e.g. "node:2 core:4 pu:1" or
  // "pack:2 node:1 l3:1 core:8 pu:2". Friendly spellings are accepted too: commas or
  // '=' ("nodes=2, cores=4"), plurals, "socket"/"numa" for "pack"/"node"; without a pu
  // level one PU per core is assumed. Throws Error(invalid_argument) with hwloc's reading
  // of the string.
  [[nodiscard]] static Topology from_synthetic(std::string_view description);
  // "" or "this" -> this_system(); an existing file or a name ending in ".xml" -> XML;
  // anything else -> synthetic.
  [[nodiscard]] static Topology load(std::string_view spec);

  [[nodiscard]] bool is_this_system() const noexcept { return source == Source::this_system; }
  // Index into `nodes` of the node with this OS index, or nodes.size() when absent.
  [[nodiscard]] std::size_t node_by_os_index(unsigned os_index) const noexcept;
};

[[nodiscard]] std::string_view to_string(Topology::Source s) noexcept;

// KV heads [begin, end) placed on nodes[node] by the by-head policy.
struct HeadRange {
  std::size_t node = 0;
  std::size_t begin = 0;
  std::size_t end = 0;
  [[nodiscard]] std::size_t size() const noexcept { return end - begin; }
};

// The by-head assignment: one contiguous range per node, in node order, sized in
// proportion to each node's cores (largest remainders, ties to the lower node), so equal
// nodes differ by at most one head and a node without cores gets none. A pure function
// of (node core counts, kv_heads): the same input always gives the same ranges, whatever
// sequences the cache holds. Returns one entry per node (possibly empty ranges).
// Throws Error(invalid_argument) when kv_heads is 0.
[[nodiscard]] std::vector<HeadRange> assign_heads(const Topology& topology, std::size_t kv_heads);

// Model of where a decode's K/V bytes live: the share of the bytes of KV heads
// [kv_begin, kv_end) held by each node (index into topology.nodes), assuming every head
// holds the same bytes (true for one sequence: all heads have the same length).
// local: all on `local_node` (the node of the appending thread); interleave: pages spread
// evenly over all nodes; by_head: by assign_heads(). Multiply by a profile's bytes_read to
// get bytes per node. Shares sum to 1.
[[nodiscard]] std::vector<double> node_byte_shares(const Topology& topology, Placement placement, std::size_t kv_heads,
                                                   std::size_t kv_begin, std::size_t kv_end,
                                                   std::size_t local_node = 0);

// What placement has done in this process so far (for `sparq info` and diagnostics).
struct PlacementStatus {
  std::size_t bind_requests = 0;  // blocks asked to be bound (interleave, by_head)
  std::size_t bind_failures = 0;  // of which the system refused (left to first touch)
  std::string first_failure;      // e.g. "mbind(bind, nodes 1) of 200704 bytes: Operation not permitted"
  // Per-node arenas for by-head decode: whether oneTBB could pin them (tbbbind loaded and
  // the node known to it); empty note when no arena was built yet or all were pinned.
  std::size_t arenas_built = 0;
  std::size_t arenas_unpinned = 0;
  std::string arena_note;
};

[[nodiscard]] PlacementStatus placement_status();

// What NUMA placement can do on this machine, found by trying it (for `sparq info`).
struct PlacementProbe {
  bool binding_works = false;     // bind, interleave and first touch all accepted on one page
  std::string binding_error;      // the first refusal, e.g. "interleave: Operation not permitted"
  std::vector<int> tbb_numa_ids;  // tbb::info::numa_nodes(); {-1} without tbbbind
  [[nodiscard]] bool arenas_pinnable() const noexcept { return !tbb_numa_ids.empty() && tbb_numa_ids.front() >= 0; }
};

// Binds one scratch page each way with the real (hwloc) binder, and asks oneTBB which
// NUMA nodes it knows. Records nothing in placement_status(). Never throws.
[[nodiscard]] PlacementProbe probe_placement() noexcept;

}  // namespace sparq
