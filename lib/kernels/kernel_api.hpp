// Internal interface between the public decode() (lib/api/decode.cpp, which
// validates and dispatches) and the kernel families. Everything here is already
// validated: sizes match, S >= 1, parameters resolved, q finite.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "sparq/isa.hpp"
#include "sparq/kv_cache.hpp"
#include "sparq/method.hpp"
#include "sparq/profile.hpp"
#include "sparq/workspace.hpp"

namespace sparq::kernels {

// One sequence of a batch, restricted to the call's KV-head range.
struct Task {
  LayerView view;                                     // the whole layer; kernels touch heads [kv_begin, kv_end) only
  const float* q;                                     // [n_q][d], n_q = (kv_end - kv_begin) * group
  float* out;                                         // [n_q][d]
  float* lse;                                         // [n_q] or nullptr
  float* alpha;                                       // [n_q] or nullptr
  std::vector<std::vector<std::uint32_t>>* selected;  // [n_q] lists or nullptr (SparQ only)
  SparQResolved sparq;                                // SparQ only: resolved for this sequence's S
};

struct Common {
  std::size_t kv_begin = 0;
  std::size_t kv_end = 0;
  std::size_t group = 1;  // g = q_heads / kv_heads
  float scale = 0.0f;     // softmax scale, already resolved (never 0)
  Isa isa = Isa::generic;
  Profile* profile = nullptr;            // accumulate per-phase stats when not null
  Workspace::Impl* workspace = nullptr;  // scratch slots; null: thread_local scratch
};

// Dense causal attention of a prefill chunk (decode_causal): the n_new queries are the
// last n_new positions of view; query i attends to positions [0, S - n_new + i].
struct CausalTask {
  LayerView view;
  const float* q;  // [n_new][n_q][d], n_q = (kv_end - kv_begin) * group
  float* out;      // [n_new][n_q][d]
  std::size_t n_new;
};

// All run on the calling thread's current TBB arena (decode() enters the caller's).
// dense_decode writes alpha = 1 when asked and leaves `selected` alone.
void dense_decode(std::span<const Task> tasks, const Common& common);
void dense_decode_causal(const CausalTask& task, const Common& common);
void sparq_decode(std::span<const Task> tasks, const Common& common);

}  // namespace sparq::kernels
