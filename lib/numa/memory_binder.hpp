// MemoryBinder: how placement asks the system to put pages on NUMA nodes. The real one
// calls hwloc_set_area_membind on this machine; tests substitute a recording fake, since
// binding means nothing on a topology that is not this system's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace sparq::numa {

enum class BindMode : std::uint8_t {
  // Every page on the given node(s) while they have free memory. Through hwloc's
  // non-strict BIND this is MPOL_PREFERRED_MANY on Linux >= 5.15 (MPOL_BIND before): a
  // full node spills to the others rather than failing allocations or waking the OOM
  // killer, which is what a cache wants; placement is identical while memory lasts.
  bind,
  interleave,  // pages round-robin over the given nodes
  // Back to first touch (MPOL_LOCAL): the next fault of each page lands on the node of the
  // thread that touches it. Needed because freed blocks return to the heap with the
  // policy of their last binding, and the allocator may hand those pages to a local cache.
  first_touch,
};

[[nodiscard]] const char* to_string(BindMode m) noexcept;

class MemoryBinder {
 public:
  virtual ~MemoryBinder() = default;
  // Binds the pages of [addr, addr + bytes) (page-aligned) to `nodes` (OS indices),
  // moving pages already present. Returns 0 on success, else an errno value (EPERM,
  // ENOSYS, EINVAL, ENOMEM ...); never throws. Thread-safe.
  [[nodiscard]] virtual int bind(void* addr, std::size_t bytes, std::span<const unsigned> nodes,
                                 BindMode mode) noexcept = 0;
};

// hwloc_set_area_membind on this system (HWLOC_MEMBIND_BIND / _INTERLEAVE, by nodeset,
// with MIGRATE). Returns ENOSYS from bind() when hwloc cannot load this machine.
[[nodiscard]] std::shared_ptr<MemoryBinder> make_hwloc_binder();

// Process-wide record of what placement did (read by sparq::placement_status()). The
// first bind failure is reported once on stderr; later ones are only counted.
void record_bind(int err, void* addr, std::size_t bytes, std::span<const unsigned> nodes, BindMode mode) noexcept;
// A binding placement chose not to ask for (counted as a failure, warned once).
void record_bind_skipped(const std::string& reason) noexcept;
void record_arena(bool pinned, const std::string& note_if_unpinned) noexcept;
// Tests: forget everything recorded.
void reset_placement_status() noexcept;

}  // namespace sparq::numa
