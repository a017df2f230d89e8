// Placement of cache blocks per policy (DESIGN §2 NUMA); the block pool calls place()
// once per new (or re-assigned) block, before its first write.
//   local      first touch: the appending thread's node gets the pages. A block whose
//              pages carry a binding (the heap hands back memory freed by a by-head or
//              interleaved cache with its policy attached) is reset to first touch.
//   interleave pages of each block round-robin over every node
//   by_head    each block bound to the node its KV head is assigned to (assign_heads)
// On a one-node topology interleave and by_head are local: everything is on that node
// anyway, and binding would only cost kernel mappings (below).
// A binding the system refuses leaves the block to first touch; it is counted in
// sparq::placement_status() and warned about once.
#include <atomic>
#include <cerrno>
#include <fstream>
#include <string>
#include <vector>

#include "numa/block_placement.hpp"
#include "numa/context.hpp"

namespace sparq {

namespace {

// A bound block (and a bound d-major copy) has a memory policy unlike the pages around
// it, so the kernel keeps it as its own mapping unless its neighbours carry the same
// policy (one head's blocks in a slab usually do, and merge).
// Past vm.max_map_count mappings (65530 by default) every mmap in the process fails, far
// from here. So binding stops, degrading to first touch, while the process uses more
// than 3/4 of the limit; checked every 256 bindings (reading /proc/self/maps costs about
// a millisecond per 60 000 mappings).
class MappingBudget {
 public:
  bool allow() noexcept {
    if (calls_.fetch_add(1, std::memory_order_relaxed) % 256 == 0) ok_.store(check(), std::memory_order_relaxed);
    return ok_.load(std::memory_order_relaxed);
  }
  static std::size_t limit() noexcept {
    std::size_t max = 65530;
    std::ifstream("/proc/sys/vm/max_map_count") >> max;
    return max;
  }

 private:
  static bool check() noexcept {
    try {
      static const std::size_t max = limit();
      std::ifstream maps("/proc/self/maps");
      std::size_t n = 0;
      for (std::string line; std::getline(maps, line);) ++n;
      return n < max / 4 * 3;
    } catch (...) {
      return true;
    }
  }
  std::atomic<std::size_t> calls_{0};
  std::atomic<bool> ok_{true};
};

MappingBudget& budget() {
  static MappingBudget b;
  return b;
}

// Binds through the context's binder unless the mapping budget is spent.
void bind_block(const numa::NumaContext& ctx, void* block, std::size_t bytes, std::span<const unsigned> nodes,
                numa::BindMode mode) noexcept {
  if (mode != numa::BindMode::first_touch && !budget().allow()) {
    numa::record_bind_skipped("binding stopped: the process uses more than 3/4 of vm.max_map_count=" +
                              std::to_string(MappingBudget::limit()) +
                              " memory mappings (each bound block is one); raise it with sysctl vm.max_map_count");
    return;
  }
  const int err = ctx.binder().bind(block, bytes, nodes, mode);
  numa::record_bind(err, block, bytes, nodes, mode);
}

class FirstTouch final : public BlockPlacement {
 public:
  void place(void*, std::size_t, std::size_t) noexcept override {}
};

// local (first_touch) and interleave: one policy over every node for every block.
class AllNodes final : public BlockPlacement {
 public:
  AllNodes(std::shared_ptr<const numa::NumaContext> ctx, numa::BindMode mode) : ctx_(std::move(ctx)), mode_(mode) {
    for (const NumaNodeInfo& n : ctx_->topology().nodes) nodes_.push_back(n.os_index);
  }
  void place(void* block, std::size_t bytes, std::size_t) noexcept override {
    bind_block(*ctx_, block, bytes, nodes_, mode_);
  }

 private:
  std::shared_ptr<const numa::NumaContext> ctx_;
  numa::BindMode mode_;
  std::vector<unsigned> nodes_;
};

class ByHead final : public BlockPlacement {
 public:
  ByHead(std::shared_ptr<const numa::NumaContext> ctx, std::size_t kv_heads)
      : ctx_(std::move(ctx)), node_of_head_(kv_heads) {
    for (const HeadRange& r : assign_heads(ctx_->topology(), kv_heads))
      for (std::size_t h = r.begin; h < r.end; ++h) node_of_head_[h] = ctx_->topology().nodes[r.node].os_index;
  }
  void place(void* block, std::size_t bytes, std::size_t kv_head) noexcept override {
    if (kv_head >= node_of_head_.size()) return;  // the pool only passes valid heads
    const unsigned node[1] = {node_of_head_[kv_head]};
    bind_block(*ctx_, block, bytes, node, numa::BindMode::bind);
  }

 private:
  std::shared_ptr<const numa::NumaContext> ctx_;
  std::vector<unsigned> node_of_head_;  // OS index per KV head
};

}  // namespace

std::unique_ptr<BlockPlacement> make_block_placement(Placement policy, std::size_t kv_heads) {
  std::shared_ptr<const numa::NumaContext> ctx = numa::current_context();
  if (ctx->topology().source == Topology::Source::fallback) {
    if (policy == Placement::local) return std::make_unique<FirstTouch>();
    // hwloc could not read this machine: nothing to bind with. Recorded once.
    numa::record_bind(ENOSYS, nullptr, 0, {},
                      policy == Placement::by_head ? numa::BindMode::bind : numa::BindMode::interleave);
    return std::make_unique<FirstTouch>();
  }
  if (policy == Placement::local || ctx->topology().nodes.size() == 1)
    return std::make_unique<AllNodes>(std::move(ctx), numa::BindMode::first_touch);
  if (policy == Placement::interleave) return std::make_unique<AllNodes>(std::move(ctx), numa::BindMode::interleave);
  return std::make_unique<ByHead>(std::move(ctx), kv_heads);
}

}  // namespace sparq
