// By-head decode over per-node arenas (node_decode.hpp).
#include "api/node_decode.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "numa/context.hpp"

namespace sparq::api {

using numa::current_context;
using numa::NodeArenas;
using numa::NumaContext;

bool splits_by_node(const KVCache& cache, const tbb::task_arena* caller_arena) noexcept {
  return caller_arena == nullptr && cache.config().placement == Placement::by_head;
}

void decode_by_node(const KVCache& cache, std::span<const kernels::Task> tasks, const kernels::Common& common,
                    DecodeKernel kernel) {
  const std::shared_ptr<const NumaContext> ctx = current_context();
  const NodeArenas& arenas = ctx->arenas();
  const std::vector<HeadRange> ranges =
      numa::node_head_ranges(*ctx, cache.config().kv_heads, common.kv_begin, common.kv_end);
  if (ranges.size() <= 1) {  // one node holds the whole range: one ordinary call in its arena
    tbb::task_arena* arena = ranges.empty() ? nullptr : arenas.arena(ranges[0].node);
    if (!arena) return kernel(tasks, common);
    arena->execute([&] {
      if (common.profile) common.profile->threads = std::size_t(tbb::this_task_arena::max_concurrency());
      kernel(tasks, common);
    });
    return;
  }

  // Per node: tasks offset to the node's first query head, own selections and profile.
  using Selection = std::vector<std::vector<std::uint32_t>>;
  struct NodeCall {
    std::vector<kernels::Task> tasks;
    std::vector<Selection> selected;  // per task, when the caller wants selections
    kernels::Common common;
    Profile profile;
    std::size_t threads = 0;
  };
  const std::size_t g = common.group;
  std::vector<NodeCall> calls(ranges.size());
  for (std::size_t n = 0; n < ranges.size(); ++n) {
    NodeCall& call = calls[n];
    const std::size_t row0 = (ranges[n].begin - common.kv_begin) * g;  // first query head of the node
    const std::size_t d = tasks.empty() ? 0 : tasks[0].view.head_dim;
    call.common = common;
    call.common.kv_begin = ranges[n].begin;
    call.common.kv_end = ranges[n].end;
    call.common.profile = common.profile ? &call.profile : nullptr;
    call.selected.resize(tasks.size());
    call.tasks.assign(tasks.begin(), tasks.end());
    for (std::size_t t = 0; t < tasks.size(); ++t) {
      kernels::Task& task = call.tasks[t];
      task.q += row0 * d;
      task.out += row0 * d;
      if (task.lse) task.lse += row0;
      if (task.alpha) task.alpha += row0;
      if (task.selected) task.selected = &call.selected[t];
    }
  }
  arenas.run(ranges, [&](const HeadRange& r) {
    const std::size_t n = std::size_t(&r - ranges.data());
    calls[n].threads = std::size_t(tbb::this_task_arena::max_concurrency());
    kernel(calls[n].tasks, calls[n].common);
  });

  for (std::size_t t = 0; t < tasks.size(); ++t) {
    if (!tasks[t].selected) continue;
    // Kernels that select nothing (dense) leave `selected` alone; so do we.
    const bool any = std::any_of(calls.begin(), calls.end(), [&](const NodeCall& c) { return !c.selected[t].empty(); });
    if (!any) continue;
    Selection& dst = *tasks[t].selected;
    dst.resize((common.kv_end - common.kv_begin) * g);
    for (std::size_t n = 0; n < ranges.size(); ++n) {
      Selection& src = calls[n].selected[t];
      const std::size_t row0 = (ranges[n].begin - common.kv_begin) * g;
      for (std::size_t i = 0; i < src.size() && row0 + i < dst.size(); ++i) dst[row0 + i] = std::move(src[i]);
    }
  }
  if (Profile* p = common.profile) {
    p->threads = 0;
    for (const NodeCall& call : calls) p->threads += call.threads;
    for (std::size_t i = 0; i < kPhaseCount; ++i) {
      PhaseStats merged;
      for (const NodeCall& call : calls) {
        const PhaseStats& s = call.profile.phases[i];
        merged.bytes_read += s.bytes_read;
        merged.flops += s.flops;
        merged.seconds = std::max(merged.seconds, s.seconds);
        merged.calls = std::max(merged.calls, s.calls);
      }
      p->phases[i] += merged;
    }
  }
}

}  // namespace sparq::api
