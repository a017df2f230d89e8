// Per-node oneTBB arenas for by-head decode: each node's KV heads are decoded by an arena
// whose threads oneTBB (through tbbbind) keeps on that node's cores, so they read the
// node's local memory. Arena creation goes through ArenaFactory so that tests can check
// the constraints asked for without owning a multi-node machine.
#pragma once

#include <oneapi/tbb/task_arena.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "sparq/topology.hpp"

namespace sparq::numa {

// What an arena for one node is asked to be.
struct ArenaSpec {
  std::size_t node = 0;      // index into Topology::nodes
  unsigned os_index = 0;     // the node's OS index
  int numa_id = -1;          // oneTBB numa_id (= hwloc logical index); -1 = unconstrained
  int max_concurrency = -1;  // -1 = oneTBB's default for the constraint (the node's PUs)
};

class ArenaFactory {
 public:
  virtual ~ArenaFactory() = default;
  [[nodiscard]] virtual std::unique_ptr<tbb::task_arena> make(const ArenaSpec& spec) = 0;
};

// tbb::task_arena(constraints{}.set_numa_id(id)) when oneTBB knows the node (tbbbind
// loaded: tbb::info::numa_nodes() lists it); an unconstrained arena otherwise, recorded
// in sparq::placement_status() and warned about once.
[[nodiscard]] std::shared_ptr<ArenaFactory> make_tbb_arena_factory();

class NodeArenas {
 public:
  // One arena per node that has cores (a memory-only node decodes nothing).
  NodeArenas(const Topology& topology, ArenaFactory& factory);

  // The arena of a node, or nullptr when it has none.
  [[nodiscard]] tbb::task_arena* arena(std::size_t node) const noexcept;
  [[nodiscard]] std::size_t size() const noexcept { return arenas_.size(); }

  // Calls f(range) for every non-empty range, each inside its node's arena (on the
  // calling thread's arena when the node has none); the nodes run concurrently. Waits for
  // all of them, then rethrows the first exception, if any.
  void run(std::span<const HeadRange> ranges, const std::function<void(const HeadRange&)>& f) const;

 private:
  std::vector<std::unique_ptr<tbb::task_arena>> arenas_;  // by node index
};

}  // namespace sparq::numa
