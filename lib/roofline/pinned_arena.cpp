#include "roofline/pinned_arena.hpp"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_scheduler_observer.h>

#include <atomic>
#include <memory>
#include <vector>

#include "common/process_topology.hpp"

namespace sparq::profile {
namespace {

// Binds each thread entering the arena to the core of its slot; restores its previous
// binding when it leaves.
class PinObserver final : public tbb::task_scheduler_observer {
 public:
  PinObserver(tbb::task_arena& arena, hwloc_topology_t topo) : tbb::task_scheduler_observer(arena), topo_(topo) {
    cores_ = topo_ ? hwloc_get_nbobjs_by_type(topo_, HWLOC_OBJ_CORE) : 0;
    if (cores_ <= 0) ok_ = false;
  }

  void on_scheduler_entry(bool) override {
    if (!topo_ || cores_ <= 0) return;
    const int slot = tbb::this_task_arena::current_thread_index();
    if (slot < 0) return;
    // Keep the affinity from before the first entry: a worker can enter again without
    // its exit having been observed (the observer is switched off while it is still in
    // the arena), and must not lose the original (nor leak the copy).
    if (!saved()) {
      Bitmap b(hwloc_bitmap_alloc());
      if (b && hwloc_get_cpubind(topo_, b.get(), HWLOC_CPUBIND_THREAD) == 0) saved() = std::move(b);
    }
    hwloc_obj_t core = hwloc_get_obj_by_type(topo_, HWLOC_OBJ_CORE, unsigned(slot % cores_));
    bool bound = false;
    if (core && core->cpuset) {
      hwloc_bitmap_t set = hwloc_bitmap_dup(core->cpuset);
      hwloc_bitmap_singlify(set);  // one PU of the core: SMT siblings stay free
      bound = hwloc_set_cpubind(topo_, set, HWLOC_CPUBIND_THREAD) == 0;
      hwloc_bitmap_free(set);
    }
    // Two slots on one core (more threads than cores) is not "pinned" either.
    if (!bound || slot >= cores_) ok_.store(false, std::memory_order_relaxed);
  }

  void on_scheduler_exit(bool) override {
    if (saved()) {
      hwloc_set_cpubind(topo_, saved().get(), HWLOC_CPUBIND_THREAD);
      saved().reset();
    }
  }

  [[nodiscard]] bool ok() const noexcept { return ok_.load(std::memory_order_relaxed); }

 private:
  struct FreeBitmap {
    void operator()(hwloc_bitmap_t b) const noexcept { hwloc_bitmap_free(b); }
  };
  using Bitmap = std::unique_ptr<hwloc_bitmap_s, FreeBitmap>;
  // The thread's affinity before it entered; freed at thread exit if never restored.
  static Bitmap& saved() {
    thread_local Bitmap s;
    return s;
  }
  hwloc_topology_t topo_;
  int cores_ = 0;
  std::atomic<bool> ok_{true};
};

}  // namespace

struct PinnedArena::Impl {
  std::size_t threads;
  hwloc_topology_t topo = nullptr;
  tbb::task_arena arena;
  std::unique_ptr<PinObserver> observer;

  Impl(std::size_t n, bool pin) : threads(n), arena(int(n), /*reserved_for_masters=*/1) {
    if (pin) topo = process_topology();
    arena.initialize();
    if (pin) {
      observer = std::make_unique<PinObserver>(arena, topo);
      observer->observe(true);
    }
  }
  ~Impl() {
    if (observer) observer->observe(false);
    arena.terminate();
  }
};

PinnedArena::PinnedArena(std::size_t threads, bool pin) : impl_(std::make_unique<Impl>(threads, pin)) {}
PinnedArena::~PinnedArena() = default;

std::size_t PinnedArena::run(std::size_t parts, const std::function<void(std::size_t)>& body) {
  std::vector<int> who(parts, -1);
  impl_->arena.execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<std::size_t>(0, parts, 1),
        [&](const tbb::blocked_range<std::size_t>& r) {
          for (std::size_t i = r.begin(); i != r.end(); ++i) {
            who[i] = tbb::this_task_arena::current_thread_index();
            body(i);
          }
        },
        tbb::static_partitioner{});
  });
  std::vector<bool> seen(impl_->threads + 1, false);
  std::size_t distinct = 0;
  for (int w : who) {
    const std::size_t slot = w < 0 ? impl_->threads : std::size_t(w);
    if (slot < seen.size() && !seen[slot]) {
      seen[slot] = true;
      ++distinct;
    }
  }
  return distinct;
}

bool PinnedArena::pinned() const noexcept {
  return impl_->observer && impl_->observer->ok();
}
std::size_t PinnedArena::threads() const noexcept {
  return impl_->threads;
}

}  // namespace sparq::profile
