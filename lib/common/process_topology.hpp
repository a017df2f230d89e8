// The hwloc topology of this process's machine, shared by everything that queries or
// binds through hwloc (thread pinning, memory binding, page locations), loaded once (loading costs 100+ ms on
// some virtual machines) and kept for the life of the process. Read-only queries on it
// are thread-safe. nullptr when hwloc cannot load it: callers fall back.
#pragma once

#include <hwloc.h>

namespace sparq {

[[nodiscard]] hwloc_topology_t process_topology() noexcept;

}  // namespace sparq
