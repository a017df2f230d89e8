// Test-only fault injection for the block pool: makes the pool's requests for new
// block memory fail as if the system refused them (aligned_alloc / mmap returning
// null), so tests can check that an append, all-layer append or copy-on-write that runs
// out of memory half-way leaves the cache unchanged. Armed per thread (the pool takes
// new blocks on the thread that calls the cache), so concurrent tests do not interfere;
// costs one thread-local load per new block when disarmed.
#pragma once

#include <cstddef>

namespace sparq::alloc_fault {

// From the calling thread's (after + 1)-th next request for a new block on, every
// request fails until disarm(): after = 0 fails the next one.
void fail_block_allocations(std::size_t after) noexcept;
void disarm() noexcept;
// Requests that failed on this thread since it was last armed.
[[nodiscard]] std::size_t failures() noexcept;

// The pool's side: whether this request for a new block must fail (counts it).
[[nodiscard]] bool block_allocation_fails() noexcept;

// Arms for a scope: fail_block_allocations(after) now, disarm() at its end.
class Scope {
 public:
  explicit Scope(std::size_t after) noexcept { fail_block_allocations(after); }
  ~Scope() { disarm(); }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
};

}  // namespace sparq::alloc_fault
