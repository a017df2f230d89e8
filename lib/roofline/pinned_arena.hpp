// PinnedArena: a oneTBB task_arena of exactly n slots whose threads are bound to
// distinct cores (hwloc) while they work in it, for the ceiling measurements. The
// previous affinity of each thread is restored when it leaves the arena, so TBB's
// shared workers are not left pinned for the kernels' arenas.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

namespace sparq::profile {

class PinnedArena {
 public:
  // threads >= 1. pin = false gives a plain arena (the OS places the threads).
  PinnedArena(std::size_t threads, bool pin);
  ~PinnedArena();
  PinnedArena(const PinnedArena&) = delete;
  PinnedArena& operator=(const PinnedArena&) = delete;

  // Runs body(part) for every part in [0, parts) with a static partition over the
  // arena's threads and returns how many distinct arena threads took part.
  std::size_t run(std::size_t parts, const std::function<void(std::size_t)>& body);

  // Every thread that entered the arena so far could be bound to its own core.
  [[nodiscard]] bool pinned() const noexcept;
  [[nodiscard]] std::size_t threads() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparq::profile
