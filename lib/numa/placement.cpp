// Placement of cache blocks per policy (DESIGN §2 NUMA); the block pool calls place()
// once per new (or re-assigned) block, before its first write.
//   local      first touch: the appending thread's node gets the pages. The block's
//              policy is reset (MPOL_LOCAL) because the heap may hand back pages freed by
//              a by-head or interleaved cache with their binding still attached.
//   interleave pages of each block round-robin over every node
//   by_head    each block bound to the node its KV head is assigned to (assign_heads)
// A binding the system refuses leaves the block to first touch; it is counted in
// sparq::placement_status() and warned about once.
#include <cerrno>
#include <vector>

#include "cache/block_placement.hpp"
#include "numa/context.hpp"

namespace sparq {

namespace {

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
    const int err = ctx_->binder().bind(block, bytes, nodes_, mode_);
    numa::record_bind(err, block, bytes, nodes_, mode_);
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
    const int err = ctx_->binder().bind(block, bytes, node, numa::BindMode::bind);
    numa::record_bind(err, block, bytes, node, numa::BindMode::bind);
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
  if (policy == Placement::local) return std::make_unique<AllNodes>(std::move(ctx), numa::BindMode::first_touch);
  if (policy == Placement::interleave) return std::make_unique<AllNodes>(std::move(ctx), numa::BindMode::interleave);
  return std::make_unique<ByHead>(std::move(ctx), kv_heads);
}

}  // namespace sparq
