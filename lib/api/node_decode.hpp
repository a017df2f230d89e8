// By-head decode: with Placement::by_head, decode() runs the kernel once per NUMA node
// over the KV heads placed on that node, inside the node's arena, so every core reads
// its own node's memory (DESIGN §2 NUMA). The kernels are unchanged: each node's call is
// an ordinary call on a sub-range of KV heads.
#pragma once

#include <oneapi/tbb/task_arena.h>

#include <span>

#include "kernels/kernel_api.hpp"
#include "sparq/kv_cache.hpp"

namespace sparq::api {

using DecodeKernel = void (*)(std::span<const kernels::Task>, const kernels::Common&);

// True when decode() should split by node: the cache is placed by head and the caller
// did not hand over an arena of its own (a caller's arena is always respected).
[[nodiscard]] bool splits_by_node(const KVCache& cache, const tbb::task_arena* caller_arena) noexcept;

// Runs `kernel` once per node over that node's share of [common.kv_begin, common.kv_end),
// inside the node's arena, nodes concurrently. Each node's tasks point at its first
// query head; selections are collected per node and moved into each task's `selected`;
// per-node profiles are merged into common.profile (bytes and FLOPs summed; time and
// call counts of the slowest node, since nodes run at once; threads summed over the
// nodes' arenas). Results are bit-identical to one call over the whole range: kernels
// compute each (sequence, KV head) independently with fixed chunking.
void decode_by_node(const KVCache& cache, std::span<const kernels::Task> tasks, const kernels::Common& common,
                    DecodeKernel kernel);

}  // namespace sparq::api
