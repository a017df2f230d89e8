#include "numa/node_arenas.hpp"

#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_group.h>

#include <algorithm>
#include <exception>
#include <string>

#include "numa/memory_binder.hpp"

namespace sparq::numa {

namespace {

class TbbArenaFactory final : public ArenaFactory {
 public:
  std::unique_ptr<tbb::task_arena> make(const ArenaSpec& spec) override {
    const std::vector<tbb::numa_node_id> known = tbb::info::numa_nodes();
    const bool pinned = spec.numa_id >= 0 && std::find(known.begin(), known.end(), spec.numa_id) != known.end();
    record_arena(pinned, "oneTBB does not know NUMA node " + std::to_string(spec.os_index) + " (numa_id " +
                             std::to_string(spec.numa_id) +
                             "): is libtbbbind installed? The node's heads run in an unpinned arena");
    tbb::task_arena::constraints c;
    if (pinned) c.set_numa_id(spec.numa_id);
    c.set_max_concurrency(spec.max_concurrency);
    return std::make_unique<tbb::task_arena>(c);
  }
};

}  // namespace

std::shared_ptr<ArenaFactory> make_tbb_arena_factory() {
  return std::make_shared<TbbArenaFactory>();
}

NodeArenas::NodeArenas(const Topology& topology, ArenaFactory& factory) : arenas_(topology.nodes.size()) {
  for (std::size_t i = 0; i < topology.nodes.size(); ++i) {
    const NumaNodeInfo& n = topology.nodes[i];
    if (n.cores == 0) continue;
    arenas_[i] = factory.make({.node = i,
                               .os_index = n.os_index,
                               .numa_id = static_cast<int>(n.logical_index),
                               .max_concurrency = tbb::task_arena::automatic});
  }
}

tbb::task_arena* NodeArenas::arena(std::size_t node) const noexcept {
  return node < arenas_.size() ? arenas_[node].get() : nullptr;
}

void NodeArenas::run(std::span<const HeadRange> ranges, const std::function<void(const HeadRange&)>& f) const {
  std::vector<const HeadRange*> work;
  for (const HeadRange& r : ranges)
    if (r.size() > 0) work.push_back(&r);
  if (work.empty()) return;
  if (work.size() == 1) {  // one node: no need to fan out
    if (tbb::task_arena* a = arena(work[0]->node))
      a->execute([&] { f(*work[0]); });
    else
      f(*work[0]);
    return;
  }
  // oneTBB's pattern for NUMA arenas: submit one task per arena, then join each arena
  // to wait for its group, so the nodes work at the same time.
  std::vector<tbb::task_group> groups(work.size());
  std::exception_ptr error;
  bool unpinned = false;  // ranges of nodes without an arena run on the calling thread
  for (std::size_t i = 0; i < work.size(); ++i) {
    if (tbb::task_arena* a = arena(work[i]->node))
      a->execute([&, i] { groups[i].run([&, i] { f(*work[i]); }); });
    else
      unpinned = true;
  }
  for (std::size_t i = 0; unpinned && i < work.size(); ++i) {
    if (arena(work[i]->node)) continue;
    try {
      f(*work[i]);
    } catch (...) {
      if (!error) error = std::current_exception();
    }
  }
  for (std::size_t i = 0; i < work.size(); ++i) {
    tbb::task_arena* a = arena(work[i]->node);
    if (!a) continue;
    try {
      a->execute([&, i] { groups[i].wait(); });
    } catch (...) {
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace sparq::numa
