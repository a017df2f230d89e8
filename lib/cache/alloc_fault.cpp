#include "cache/alloc_fault.hpp"

namespace sparq::alloc_fault {

namespace {
struct State {
  bool armed = false;
  std::size_t left = 0;  // requests still granted before they start failing
  std::size_t failed = 0;
};
thread_local State state;
}  // namespace

void fail_block_allocations(std::size_t after) noexcept {
  state = {true, after, 0};
}

void disarm() noexcept {
  state.armed = false;
}

std::size_t failures() noexcept {
  return state.failed;
}

bool block_allocation_fails() noexcept {
  if (!state.armed) return false;
  if (state.left > 0) {
    --state.left;
    return false;
  }
  ++state.failed;
  return true;
}

}  // namespace sparq::alloc_fault
