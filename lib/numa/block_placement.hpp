// Hook through which the block pool asks the NUMA layer to place a new block's pages
// (lib/numa implements it; see DESIGN §2 NUMA). Called once per block allocation,
// before the block is first written, so first-touch and explicit binding both work.
#pragma once

#include <cstddef>
#include <memory>

#include "sparq/types.hpp"

namespace sparq {

class BlockPlacement {
 public:
  virtual ~BlockPlacement() = default;
  // Places [block, block + bytes) (page-aligned) for the given KV head. Never throws:
  // a binding that the system refuses degrades to first touch (and is reported).
  virtual void place(void* block, std::size_t bytes, std::size_t kv_head) noexcept = 0;
};

// The placement for a cache's policy on this machine.
[[nodiscard]] std::unique_ptr<BlockPlacement> make_block_placement(Placement policy, std::size_t kv_heads);

}  // namespace sparq
