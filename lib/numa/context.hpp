// NumaContext: the topology placement plans with, the binder that places pages and the
// factory that builds per-node arenas. One process-wide context (this system, hwloc
// binding, oneTBB arenas) unless a test installs another with ScopedContext.
//
// A KVCache captures the current context when it is constructed (its blocks are bound
// through it for its lifetime); decode uses the context current at the call. Install a
// test context before creating the caches it should govern.
#pragma once

#include <functional>
#include <memory>
#include <mutex>

#include "numa/memory_binder.hpp"
#include "numa/node_arenas.hpp"
#include "sparq/kv_cache.hpp"
#include "sparq/topology.hpp"

namespace sparq::numa {

class NumaContext {
 public:
  NumaContext(Topology topology, std::shared_ptr<MemoryBinder> binder, std::shared_ptr<ArenaFactory> arenas);

  [[nodiscard]] const Topology& topology() const noexcept { return topology_; }
  [[nodiscard]] MemoryBinder& binder() const noexcept { return *binder_; }
  // Built through the factory on first use (thread-safe).
  [[nodiscard]] const NodeArenas& arenas() const;

 private:
  Topology topology_;
  std::shared_ptr<MemoryBinder> binder_;
  std::shared_ptr<ArenaFactory> factory_;
  mutable std::once_flag arenas_once_;
  mutable std::unique_ptr<NodeArenas> arenas_;
};

// The context in force (this system's unless a ScopedContext is alive). Thread-safe.
[[nodiscard]] std::shared_ptr<const NumaContext> current_context();

// Installs `context` for its lifetime, then restores the previous one. For tests: not
// meant to be switched while caches are being created or decodes run on other threads.
class ScopedContext {
 public:
  explicit ScopedContext(std::shared_ptr<const NumaContext> context);
  ~ScopedContext();
  ScopedContext(const ScopedContext&) = delete;
  ScopedContext& operator=(const ScopedContext&) = delete;

 private:
  std::shared_ptr<const NumaContext> previous_;
};

// The by-head ranges of a cache with `kv_heads` heads under the current context,
// restricted to [kv_begin, kv_end); empty ranges dropped.
[[nodiscard]] std::vector<HeadRange> node_head_ranges(const NumaContext& context, std::size_t kv_heads,
                                                      std::size_t kv_begin, std::size_t kv_end);

// Runs f over the KV heads [kv_begin, kv_end) of `cache` split by node: with by-head
// placement, once per node holding some of them, inside that node's arena, nodes
// concurrently; with other placements, once over the whole range on the calling thread
// (range.node = kNoNode). Rethrows the first exception after all calls finished.
inline constexpr std::size_t kNoNode = ~std::size_t{0};
void for_each_node_heads(const KVCache& cache, std::size_t kv_begin, std::size_t kv_end,
                         const std::function<void(const HeadRange&)>& f);

}  // namespace sparq::numa
