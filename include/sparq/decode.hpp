// decode: one attention step for a batch of sequences, reading the KV cache.
//
// For each item, q holds the new queries [q_heads][d] (f32) and out receives the
// attention outputs [q_heads][d]. Query head h reads KV head h / g with g = q_heads /
// kv_heads. A call may cover a range of KV heads [kv_head_begin, kv_head_end) (one
// tensor-parallel rank's share): q and out then hold only that range's query heads,
// (kv_head_end - kv_head_begin) * g of them.
//
// Results are deterministic: bit-identical for the same inputs and ISA whatever the
// thread count (fixed chunking, fixed merge order, ties broken by position), and with or
// without a Workspace.
//
// Memory. A call allocates what it needs for its own batch (per-chunk partial results)
// and frees it before returning. The kernels' per-thread scratch is the exception: it is
// reused across calls, in thread_local buffers by default (each TBB worker keeps the
// scratch of the largest call it served until the thread exits), or in a caller-owned
// sparq::Workspace passed as DecodeOptions::workspace (bounded by the largest call it
// served, freed by Workspace::release() or its destructor: sparq/workspace.hpp).
#pragma once

#include <oneapi/tbb/task_arena.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "sparq/kv_cache.hpp"
#include "sparq/method.hpp"
#include "sparq/profile.hpp"
#include "sparq/workspace.hpp"

namespace sparq {

struct DecodeItem {
  SeqId seq = 0;
  std::span<const float> q;  // [q_heads][d]
  std::span<float> out;      // [q_heads][d]
  // Optional per-query-head outputs (empty span / nullptr = not wanted):
  std::span<float> lse = {};    // [q_heads] log-sum-exp of the scaled scores that were attended
  std::span<float> alpha = {};  // [q_heads] SparQ: estimated score mass fetched (1 for dense)
  // SparQ: positions fetched for each query head, ascending ([q_heads] lists).
  std::vector<std::vector<std::uint32_t>>* selected = nullptr;
};

struct DecodeOptions {
  float scale = 0.0f;  // softmax scale; 0 means 1/sqrt(d)
  std::size_t kv_head_begin = 0;
  std::size_t kv_head_end = ~std::size_t{0};  // ~0: all heads; otherwise at most kv_heads
  Profile* profile = nullptr;                 // accumulated into when given
  tbb::task_arena* arena = nullptr;           // run inside the caller's arena when given
  // Scratch memory (sparq/workspace.hpp). Null: each thread that runs kernels keeps its
  // own thread_local scratch, grown to the largest call it served and kept for the
  // thread's life. Given: the scratch lives in the workspace, bounded as its header says
  // and freed with it; outputs are bit-identical either way.
  Workspace* workspace = nullptr;
};

// Validates everything (unknown sequence, sizes, non-finite q, S = 0, method
// parameters) before any output is written. Throws sparq::Error.
// Every finite input gives a finite output: a logit beyond f32's range counts as
// ±FLT_MAX (the position then takes all the weight, or none), and weighted value sums
// are kept scaled so they cannot overflow. Should the arithmetic still overflow (keys or
// values within a few ulps of ±3.4e38), the call throws Error(non_finite_input) after
// the kernels ran; `out` is then unspecified and the cache unchanged.
void decode(const KVCache& cache, std::size_t layer, const Method& method, std::span<const DecodeItem> batch,
            const DecodeOptions& options = {});

// Dense causal attention of a chunk of n_new queries that are the last n_new positions
// of the sequence (already appended): query i attends to positions [0, S - n_new + i].
// q and out are [n_new][q_heads][d].
void decode_causal(const KVCache& cache, std::size_t layer, SeqId seq, std::span<const float> q, std::span<float> out,
                   std::size_t n_new, const DecodeOptions& options = {});

}  // namespace sparq
