// Workspace: the decode kernels' scratch memory, owned by the caller and passed in
// DecodeOptions::workspace (optional).
//
// Without a workspace, every thread that runs part of a decode keeps its scratch in
// thread_local buffers: they grow to the largest call that thread has served and live as
// long as the thread (for TBB's workers, as long as the process). With a workspace, the
// same scratch lives in it instead: one slot per thread that ran part of a call using it,
// each grown to the largest call it served, all freed by release() or the destructor.
// Outputs are bit-identical with and without one.
//
// Bound. A slot holds the scratch of the largest call it served: dense decode's tile
// buffers (about 2 KiB per component of d), and for SparQ, per (sequence, KV head) unit,
// the approximate scores and top-k keys (about (g + 3) * S floats), the fetched positions
// (about (g + 1) * k words) and stage tiles of a few KiB; g = q_heads / kv_heads. So
//     bytes() <= slots() * (16 * (g + 3) * S + 8 * (g + 1) * k + 4096 * (d + 32))
// for the largest S and k of the calls served, however many calls (workspace_test.cpp
// checks it); slots() is at most the number of threads of the arenas that ran them.
//
// Thread safety. One decode at a time per workspace: a decode that finds it in use by
// another fails with ErrorCode::concurrent_use before doing anything. Give each serving
// thread its own. bytes(), slots() and release() must not overlap a decode using it.
#pragma once

#include <cstddef>
#include <memory>

namespace sparq {

class Workspace {
 public:
  Workspace();
  ~Workspace();
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  // Bytes of scratch held now (capacity of every buffer of every slot).
  [[nodiscard]] std::size_t bytes() const;
  // Threads that have a slot.
  [[nodiscard]] std::size_t slots() const;
  // Frees all scratch; the workspace stays usable (later calls grow it again).
  void release();

  struct Impl;  // internal (lib/kernels/scratch.hpp)
  [[nodiscard]] Impl& impl() noexcept { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparq
