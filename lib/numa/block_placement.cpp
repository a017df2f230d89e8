// Placement of cache blocks. This first version leaves every policy to first touch;
// the NUMA module (hwloc binding per policy) replaces it.
#include "cache/block_placement.hpp"

namespace sparq {

namespace {
class FirstTouch final : public BlockPlacement {
 public:
  void place(void*, std::size_t, std::size_t) noexcept override {}
};
}  // namespace

std::unique_ptr<BlockPlacement> make_block_placement(Placement, std::size_t) { return std::make_unique<FirstTouch>(); }

}  // namespace sparq
