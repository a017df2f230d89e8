// Dense decode, the baseline part (built without ISA flags): splits every (sequence,
// KV head) into fixed chunks of kChunkPositions positions, runs the per-ISA DenseChunk
// of the call's kernel (dense_loops_for) on them in parallel with oneTBB, and merges the chunks' partial softmax
// results by log-sum-exp in ascending chunk order. Chunk boundaries and merge order depend only on the inputs, never on
// the thread count, so results are bit-identical for any arena.
#include "kernels/dense/dense_decode.hpp"

#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "common/parallel.hpp"
#include "kernels/kernel_api.hpp"
#include "kernels/scratch.hpp"
#include "kernels/simd/arch_list.hpp"
#include "kernels/softmax_range.hpp"
#include "profile/profile_zone.hpp"

namespace sparq::kernels {
namespace {

// Positions per parallel work item. 1024 rows of K and V at d = 128 bf16 are 512 KiB,
// ~13 us at 40 GB/s: far above TBB's per-task cost, small enough that one 16k-token
// sequence of 8 KV heads makes 128 items for load balance.
constexpr std::size_t kChunkPositions = 1024;
static_assert(kChunkPositions <= kMaxChunkPositions, "a chunk's weighted value sum must stay finite");
// Most query heads one chunk serves at once: their f32 accumulators ([heads][d_pad]) stay
// in L1/L2. Only a causal prefix (g * n_new heads) is split by this.
constexpr std::size_t kMaxSegmentHeads = 32;
constexpr double kLn2 = 0.69314718055994530942;
constexpr float kLog2e = 1.44269504088896340736f;

std::size_t pad_dim(std::size_t d) {
  return (d + kMaxLanes - 1) / kMaxLanes * kMaxLanes;
}

// Bytes of the 64-byte lines covering [a, b) (offsets from a page-aligned block base).
std::uint64_t line_bytes(std::size_t a, std::size_t b) {
  return b > a ? std::uint64_t((b + 63) / 64 - a / 64) * 64 : 0;
}

// One attention problem: `heads` query rows against positions [begin, end) of one KV
// head; its chunks are the work items first_item, first_item + 1, ...
struct Segment {
  const LayerView* view;
  std::size_t kv_head;
  std::size_t begin;
  std::size_t end;
  std::size_t heads;
  std::size_t q_offset;    // into Plan::q_
  std::size_t first_item;  // index of its first chunk
  [[nodiscard]] std::size_t chunks() const { return (end - begin + kChunkPositions - 1) / kChunkPositions; }
};

// A query row of a segment, as a merge source.
struct Source {
  std::size_t segment;
  std::size_t row;
};

class Plan {
 public:
  Plan(std::size_t head_dim, const Common& common)
      : d_(head_dim), d_pad_(pad_dim(head_dim)), q_scale_(common.scale * kLog2e), workspace_(common.workspace) {}

  // q_row(h) points to head h's d floats.
  template <class QRow>
  std::size_t add(const LayerView* view, std::size_t kv_head, std::size_t begin, std::size_t end, std::size_t heads,
                  QRow q_row) {
    Segment s{view, kv_head, begin, end, heads, q_.size(), items_.size()};
    q_.resize(q_.size() + heads * d_pad_, 0.0f);
    for (std::size_t h = 0; h < heads; ++h) {
      const float* src = q_row(h);
      float* dst = q_.data() + s.q_offset + h * d_pad_;
      for (std::size_t i = 0; i < d_; ++i) dst[i] = src[i] * q_scale_;
    }
    for (std::size_t c = 0; c < s.chunks(); ++c) {
      items_.push_back({segments_.size(), c, part_floats_});
      part_floats_ += heads * (d_pad_ + 2);
    }
    segments_.push_back(s);
    return segments_.size() - 1;
  }

  // Runs every chunk with the kernel for (isa, loops), chosen once for the call.
  void run(Isa isa, DenseLoops loops) {
    parts_.resize(part_floats_);
    dispatch_isa(isa, [&](auto arch) {
      using Arch = decltype(arch);
      if constexpr (std::is_same_v<Arch, xsimd::avx512bw>) {
        if (loops == DenseLoops::rows16) return run_chunks(DenseChunk<Arch, DenseLoops::rows16>{}, arch);
      }
      run_chunks(DenseChunk<Arch>{}, arch);
    });
  }

  // out[0, d) = softmax-weighted V of the query rows in `sources` (one query head whose
  // positions were split over these segments), merged over all their chunks in order.
  void merge(std::span<const Source> sources, float* out, float* lse) const {
    double mx = -std::numeric_limits<double>::infinity();
    for_each_chunk(sources, [&](const float*, float m, float) { mx = std::max(mx, double(m)); });
    double l = 0.0;
    std::vector<double> y(d_, 0.0);
    for_each_chunk(sources, [&](const float* o, float m, float lc) {
      const double w = std::exp2(double(m) - mx);
      l += w * lc;
      for (std::size_t i = 0; i < d_; ++i) y[i] += w * o[i];
    });
    for (std::size_t i = 0; i < d_; ++i) out[i] = float(y[i] / l);
    if (lse) *lse = float((mx + std::log2(l) + kWeightShift) * kLn2);  // weights carry 2^-kWeightShift
  }

  [[nodiscard]] std::uint64_t bytes_read() const {
    std::uint64_t total = 0;
    for (const Segment& s : segments_) {
      const LayerView& v = *s.view;
      const std::size_t e = size_of(v.dtype);
      const std::size_t row = v.head_dim * e;
      const std::size_t bt = v.block_tokens;
      for (std::size_t b = s.begin / bt; b * bt < s.end; ++b) {
        const std::size_t r0 = std::max(s.begin, b * bt) - b * bt;
        const std::size_t r1 = std::min(s.end, (b + 1) * bt) - b * bt;
        if (v.layouts == KeyLayout::fused) {  // keys and values side by side: one run
          total += line_bytes(2 * r0 * row, 2 * r1 * row);
          continue;
        }
        total += line_bytes(r0 * row, r1 * row);  // V
        if (has_s_major(v.layouts)) {
          total += line_bytes(r0 * row, r1 * row);
        } else {
          for (std::size_t i = 0; i < v.head_dim; ++i) total += line_bytes((i * bt + r0) * e, (i * bt + r1) * e);
        }
      }
    }
    return total;
  }
  // Multiply-adds count two: q.K and p*V per head and position.
  [[nodiscard]] std::uint64_t flops() const {
    std::uint64_t total = 0;
    for (const Segment& s : segments_) total += std::uint64_t(s.end - s.begin) * s.heads * 4 * d_;
    return total;
  }

 private:
  struct Item {
    std::size_t segment;
    std::size_t chunk;
    std::size_t part_offset;
  };

  template <class Kernel, class Arch>
  void run_chunks(Kernel kernel, Arch arch) {
    parallel_for_chunks(items_.size(), [&](std::size_t i) {
      const Item& it = items_[i];
      const Segment& s = segments_[it.segment];
      std::vector<float>& work = thread_scratch(workspace_).dense_work;
      const std::size_t need = dense_work_floats(s.heads, d_pad_) + 16;
      if (work.size() < need) work.resize(need);
      float* aligned = work.data() + (16 - (reinterpret_cast<std::uintptr_t>(work.data()) / 4) % 16) % 16;
      float* part = parts_.data() + it.part_offset;
      DenseChunkArgs args;
      args.view = s.view;
      args.kv_head = s.kv_head;
      args.begin = s.begin + it.chunk * kChunkPositions;
      args.end = std::min(s.end, args.begin + kChunkPositions);
      args.heads = s.heads;
      args.d_pad = d_pad_;
      args.q = q_.data() + s.q_offset;
      args.o = part;
      args.m = part + s.heads * d_pad_;
      args.l = args.m + s.heads;
      args.work = aligned;
      kernel(arch, args);
    });
  }

  template <class F>
  void for_each_chunk(std::span<const Source> sources, F&& f) const {
    for (const Source& src : sources) {
      const Segment& s = segments_[src.segment];
      for (std::size_t c = 0; c < s.chunks(); ++c) {
        const float* part = parts_.data() + items_[s.first_item + c].part_offset;
        const float* m = part + s.heads * d_pad_;
        f(part + src.row * d_pad_, m[src.row], m[s.heads + src.row]);
      }
    }
  }

  std::size_t d_;
  std::size_t d_pad_;
  float q_scale_;
  Workspace::Impl* workspace_;
  std::vector<float> q_;
  std::vector<Segment> segments_;
  std::vector<Item> items_;
  std::size_t part_floats_ = 0;
  std::vector<float> parts_;
};

DenseLoops loops_for(const LayerView& v, const Common& common) {
  return dense_loops_for(common.isa, v.dtype, v.layouts);
}

}  // namespace

void dense_decode(std::span<const Task> tasks, const Common& common) {
  if (tasks.empty()) return;
  profile::ProfileZone zone(common.profile, Phase::dense);
  const std::size_t d = tasks[0].view.head_dim;
  const std::size_t g = common.group;
  const std::size_t n_kv = common.kv_end - common.kv_begin;
  Plan plan(d, common);
  // Segment of (task t, KV head kv_begin + k) is t * n_kv + k.
  for (const Task& t : tasks)
    for (std::size_t k = 0; k < n_kv; ++k)
      plan.add(&t.view, common.kv_begin + k, 0, t.view.length, g, [&](std::size_t h) { return t.q + (k * g + h) * d; });
  plan.run(common.isa, loops_for(tasks[0].view, common));
  parallel_for_chunks(tasks.size() * n_kv, [&](std::size_t seg) {
    const Task& t = tasks[seg / n_kv];
    const std::size_t k = seg % n_kv;
    for (std::size_t h = 0; h < g; ++h) {
      const std::size_t row = k * g + h;
      const Source src{seg, h};
      plan.merge({&src, 1}, t.out + row * d, t.lse ? t.lse + row : nullptr);
      if (t.alpha) t.alpha[row] = 1.0f;
    }
  });
  if (common.profile) zone.add(plan.bytes_read(), plan.flops());
}

void dense_decode_causal(const CausalTask& task, const Common& common) {
  profile::ProfileZone zone(common.profile, Phase::dense);
  const LayerView& v = task.view;
  const std::size_t d = v.head_dim;
  const std::size_t g = common.group;
  const std::size_t n_kv = common.kv_end - common.kv_begin;
  const std::size_t n_q = n_kv * g;
  const std::size_t n_new = task.n_new;
  const std::size_t prefix = v.length - n_new + 1;  // positions every query of the chunk sees
  auto q_row = [&](std::size_t i, std::size_t k, std::size_t h) { return task.q + (i * n_q + k * g + h) * d; };
  Plan plan(d, common);
  // The prefix is read once for groups of queries (all g heads of up to
  // kMaxSegmentHeads / g queries); query i then also attends to the i positions after it.
  const std::size_t queries_per_segment = std::max<std::size_t>(1, kMaxSegmentHeads / g);
  const std::size_t groups = (n_new + queries_per_segment - 1) / queries_per_segment;
  std::vector<std::size_t> prefix_seg(groups * n_kv);
  for (std::size_t gi = 0; gi < groups; ++gi) {
    const std::size_t i0 = gi * queries_per_segment;
    const std::size_t nq = std::min(queries_per_segment, n_new - i0);
    for (std::size_t k = 0; k < n_kv; ++k)
      prefix_seg[gi * n_kv + k] = plan.add(&v, common.kv_begin + k, 0, prefix, nq * g,
                                           [&](std::size_t r) { return q_row(i0 + r / g, k, r % g); });
  }
  std::vector<std::size_t> tail_seg(n_new * n_kv);
  for (std::size_t i = 1; i < n_new; ++i)
    for (std::size_t k = 0; k < n_kv; ++k)
      tail_seg[i * n_kv + k] =
          plan.add(&v, common.kv_begin + k, prefix, prefix + i, g, [&](std::size_t h) { return q_row(i, k, h); });
  plan.run(common.isa, loops_for(v, common));
  parallel_for_chunks(n_new * n_kv, [&](std::size_t ik) {
    const std::size_t i = ik / n_kv, k = ik % n_kv;
    for (std::size_t h = 0; h < g; ++h) {
      const Source src[2] = {{prefix_seg[(i / queries_per_segment) * n_kv + k], (i % queries_per_segment) * g + h},
                             {tail_seg[i * n_kv + k], h}};
      plan.merge({src, i > 0 ? 2u : 1u}, task.out + (i * n_q + k * g + h) * d, nullptr);
    }
  });
  if (common.profile) zone.add(plan.bytes_read(), plan.flops());
}

}  // namespace sparq::kernels
