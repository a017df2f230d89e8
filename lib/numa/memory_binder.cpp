#include "numa/memory_binder.hpp"

#include <hwloc.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "common/process_topology.hpp"
#include "sparq/topology.hpp"

namespace sparq::numa {

namespace {

class HwlocBinder final : public MemoryBinder {
 public:
  // The process's shared topology: binding only reads it, which hwloc allows from any
  // thread.
  HwlocBinder() : topology_(process_topology()) {}

  int bind(void* addr, std::size_t bytes, std::span<const unsigned> nodes, BindMode mode) noexcept override {
    if (!topology_) return ENOSYS;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (!set) return ENOMEM;
    if (mode == BindMode::first_touch) {
      // Only reset what needs it: setting a policy on part of the heap splits the kernel's
      // mapping there (two mappings per block, and vm.max_map_count is 65530), while
      // reading it splits nothing. hwloc reports MPOL_DEFAULT and MPOL_LOCAL as FIRSTTOUCH.
      hwloc_membind_policy_t current{};
      if (hwloc_get_area_membind(topology_, addr, bytes, set, &current, HWLOC_MEMBIND_BYNODESET) == 0 &&
          current == HWLOC_MEMBIND_FIRSTTOUCH) {
        hwloc_bitmap_free(set);
        return 0;
      }
      // Any node may be the toucher's: the whole machine, whatever `nodes` says.
      hwloc_bitmap_copy(set, hwloc_topology_get_complete_nodeset(topology_));
    } else {
      for (unsigned n : nodes) hwloc_bitmap_set(set, n);
    }
    const hwloc_membind_policy_t policy = mode == BindMode::bind         ? HWLOC_MEMBIND_BIND
                                          : mode == BindMode::interleave ? HWLOC_MEMBIND_INTERLEAVE
                                                                         : HWLOC_MEMBIND_FIRSTTOUCH;
    // MIGRATE: a block reused for another head (or recycled heap pages) may already have
    // pages; binding alone would only steer future faults. STRICT is left out on purpose
    // (see BindMode::bind): hwloc then uses MPOL_PREFERRED_MANY rather than MPOL_BIND, so
    // a full node spills instead of failing, and a page that cannot move is no error.
    errno = 0;
    // First touch has no target node to migrate to: only the policy is reset.
    const int flags = HWLOC_MEMBIND_BYNODESET | (mode == BindMode::first_touch ? 0 : HWLOC_MEMBIND_MIGRATE);
    const int rc = hwloc_set_area_membind(topology_, addr, bytes, set, policy, flags);
    const int err = rc == 0 ? 0 : (errno ? errno : EINVAL);
    hwloc_bitmap_free(set);
    return err;
  }

 private:
  const hwloc_topology_t topology_;
};

struct StatusStore {
  std::mutex mutex;
  PlacementStatus status;
  bool warned_bind = false;
  bool warned_arena = false;
};

StatusStore& store() {
  static StatusStore s;
  return s;
}

std::string describe_nodes(std::span<const unsigned> nodes) {
  std::string s;
  for (unsigned n : nodes) s += (s.empty() ? "" : ",") + std::to_string(n);
  return s;
}

std::string hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}

}  // namespace

const char* to_string(BindMode m) noexcept {
  switch (m) {
    case BindMode::bind:
      return "bind";
    case BindMode::interleave:
      return "interleave";
    case BindMode::first_touch:
      return "first-touch";
  }
  return "?";
}

std::shared_ptr<MemoryBinder> make_hwloc_binder() {
  return std::make_shared<HwlocBinder>();
}

void record_bind(int err, void* addr, std::size_t bytes, std::span<const unsigned> nodes, BindMode mode) noexcept {
  try {
    StatusStore& s = store();
    std::lock_guard lock(s.mutex);
    ++s.status.bind_requests;
    if (err == 0) return;
    ++s.status.bind_failures;
    if (!s.status.first_failure.empty()) return;
    s.status.first_failure = std::string("mbind(") + to_string(mode) + ", nodes " + describe_nodes(nodes) + ") of " +
                             std::to_string(bytes) + " bytes at " + hex(addr) + ": " + std::strerror(err);
    if (!s.warned_bind) {
      s.warned_bind = true;
      std::fprintf(stderr, "sparq: warning: NUMA placement degraded to first touch: %s\n",
                   s.status.first_failure.c_str());
    }
  } catch (...) {
    // Recording is best effort (std::string may throw bad_alloc); placement must not throw.
  }
}

void record_bind_skipped(const std::string& reason) noexcept {
  try {
    StatusStore& s = store();
    std::lock_guard lock(s.mutex);
    ++s.status.bind_requests;
    ++s.status.bind_failures;
    if (s.status.first_failure.empty()) s.status.first_failure = reason;
    if (!s.warned_bind) {
      s.warned_bind = true;
      std::fprintf(stderr, "sparq: warning: NUMA placement degraded to first touch: %s\n", reason.c_str());
    }
  } catch (...) {
  }
}

void record_arena(bool pinned, const std::string& note_if_unpinned) noexcept {
  try {
    StatusStore& s = store();
    std::lock_guard lock(s.mutex);
    ++s.status.arenas_built;
    if (pinned) return;
    ++s.status.arenas_unpinned;
    if (s.status.arena_note.empty()) s.status.arena_note = note_if_unpinned;
    if (!s.warned_arena) {
      s.warned_arena = true;
      std::fprintf(stderr, "sparq: warning: by-head decode arena not pinned to its node: %s\n",
                   note_if_unpinned.c_str());
    }
  } catch (...) {
  }
}

void reset_placement_status() noexcept {
  StatusStore& s = store();
  std::lock_guard lock(s.mutex);
  s.status = PlacementStatus{};
  s.warned_bind = s.warned_arena = false;
}

}  // namespace sparq::numa

namespace sparq {

PlacementStatus placement_status() {
  numa::StatusStore& s = numa::store();
  std::lock_guard lock(s.mutex);
  return s.status;
}

}  // namespace sparq
