// Per-thread scratch of the decode kernels, kept either thread_local (the default) or in
// a caller's Workspace (sparq/workspace.hpp): kernels ask thread_scratch() for theirs.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kernels/sparq/sparq_select.hpp"
#include "sparq/workspace.hpp"

namespace sparq::kernels {

// Everything a SparQ unit (one sequence and KV head) needs between its phases.
struct UnitScratch {
  std::vector<double> magnitude;
  std::vector<std::uint32_t> order;
  std::vector<std::uint32_t> rows;          // stage-1 rows (union over heads), ascending
  std::vector<std::uint8_t> head_uses_row;  // [g][rows]
  std::vector<float> qsel;                  // [g][rows]
  std::vector<float> z;                     // [g][z_stride]
  std::vector<float> chunk_max, chunk_sum;  // [chunks][g]
  std::vector<float> weights;               // [chunks][g]
  std::vector<double> norm_max, norm_sum;   // [g]
  SparqSelectScratch select;
  std::vector<std::vector<std::uint32_t>> selected;  // [selections]
  std::vector<std::uint32_t> positions;              // stage-2 positions (union)
  std::vector<std::uint8_t> member;                  // [positions][g] (per-head only)
  std::vector<std::size_t> cursor;
  std::vector<double> alpha;  // [g]
  std::vector<float> q2;      // [g][dp]
  std::vector<float> parts;   // [chunks][g][dp + 2]
  std::vector<double> y;
};

struct ThreadScratch {
  std::vector<float> dense_work;  // a dense chunk's work area
  std::vector<std::byte> tile;    // a SparQ stage-1 or stage-2 chunk's tile
  UnitScratch unit;               // the SparQ unit this thread runs
  [[nodiscard]] std::size_t bytes() const noexcept;
};

// The calling thread's scratch: its slot in `ws`, or its thread_local one when ws is null.
// Kernels never nest, so a thread uses one chunk's or unit's buffers at a time.
[[nodiscard]] ThreadScratch& thread_scratch(Workspace::Impl* ws);

// `bytes` of 64-byte aligned scratch from buf, grown when too small.
[[nodiscard]] std::byte* aligned_bytes(std::vector<std::byte>& buf, std::size_t bytes);

}  // namespace sparq::kernels

struct sparq::Workspace::Impl {
  mutable std::mutex mutex;  // guards `slots` (threads of one call look theirs up at once)
  std::unordered_map<std::thread::id, std::unique_ptr<kernels::ThreadScratch>> slots;
  // Unique over the process and renewed by release(), so a thread's cached slot pointer
  // (scratch.cpp) is never taken for a slot of a released or destroyed workspace.
  std::uint64_t generation = 0;
  std::atomic<bool> in_use{false};  // one decode at a time
};
