// SparQ decode, the baseline part (built without ISA flags): plans each (sequence, KV
// head) "unit", runs the per-ISA kernels of sparq_stage1/topk/stage2 on fixed chunks in
// parallel with oneTBB, and merges chunk results in chunk order, so outputs are
// bit-identical for any thread count. The ISA is chosen once per call (dispatch_isa);
// the loops below call that ISA's kernels directly.
//
// A unit runs its phases in order (stage 1 -> top-k -> stage 2 -> reallocation), each
// parallel over its chunks, while different units run concurrently. Keeping a unit's
// approximate scores ([g][S] floats, 2 MiB at S = 128k, g = 4) in cache between stage 1
// and the top-k is why the phases are not global barriers over the whole batch. Inner
// loops are isolated (tbb::this_task_arena::isolate) so a thread waiting on its unit's
// chunks never starts another unit: per-thread unit scratch is then never shared.
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "common/parallel.hpp"
#include "kernels/kernel_api.hpp"
#include "kernels/scratch.hpp"
#include "kernels/simd/arch_list.hpp"
#include "kernels/softmax_range.hpp"
#include "kernels/sparq/sparq_select.hpp"
#include "kernels/sparq/sparq_stage1.hpp"
#include "kernels/sparq/sparq_stage2.hpp"
#include "profile/profile_zone.hpp"

namespace sparq::kernels {
namespace {

// Positions per stage-1 / top-k chunk (rounded to whole blocks): 4096 positions × r = 16
// rows of bf16 are 128 KiB of keys, and the chunk's scores ([g][4096] floats) stay in L2.
constexpr std::size_t kChunkTarget = 4096;
// Fetched positions per stage-2 chunk: 512 K and V rows, 256 KiB at d = 128 bf16.
constexpr std::size_t kStage2Chunk = 512;
static_assert(kStage2Chunk <= kMaxChunkPositions, "a chunk's weighted value sum must stay finite");
constexpr float kLog2e = 1.44269504088896340736f;
constexpr double kLn2 = 0.69314718055994530942;

// Bytes of the 64-byte lines covering [a, b) (offsets from a page-aligned base, or
// addresses).
std::uint64_t line_bytes(std::size_t a, std::size_t b) {
  return b > a ? std::uint64_t((b + 63) / 64 - a / 64) * 64 : 0;
}

// Indices of the r largest mag[i] (ties: lower index first), ascending, into `out`.
void top_components(const std::vector<double>& mag, std::size_t r, std::vector<std::uint32_t>& order,
                    std::vector<std::uint32_t>& out) {
  order.resize(mag.size());
  std::iota(order.begin(), order.end(), std::uint32_t{0});
  auto before = [&](std::uint32_t a, std::uint32_t b) { return mag[a] != mag[b] ? mag[a] > mag[b] : a < b; };
  std::nth_element(order.begin(), order.begin() + std::ptrdiff_t(r - 1), order.end(), before);
  out.assign(order.begin(), order.begin() + std::ptrdiff_t(r));
  std::sort(out.begin(), out.end());
}

struct UnitStats {
  Profile phases;  // seconds here are the unit's own wall time per phase
};

struct Unit {
  const Task* task;
  std::size_t kv_local;
};

template <class Arch>
class UnitRunner {
 public:
  UnitRunner(Arch arch, const Task& t, std::size_t kv_local, const Common& c, Profile* prof)
      : arch_(arch), t_(t), v_(t.view), c_(c), prof_(prof), s_(thread_scratch(c.workspace).unit) {
    S_ = v_.length;
    d_ = v_.head_dim;
    g_ = c.group;
    es_ = size_of(v_.dtype);
    kv_ = c.kv_begin + kv_local;
    q0_ = t.q + kv_local * g_ * d_;
    row0_ = kv_local * g_;
    blocks_ = v_.blocks + kv_;  // block b at blocks_[b * kv_heads] (LayerView::block)
    const SparQResolved& p = t.sparq;
    k_eff_ = std::min(p.k, S_);
    window_ = std::min(p.window, k_eff_);
    shared_ = p.gqa == GqaSelection::shared || g_ == 1;
    const std::size_t B = v_.block_tokens;
    chunk_ = std::max<std::size_t>(1, (kChunkTarget + B / 2) / B) * B;
  }

  void run() {
    s_.alpha.assign(g_, 1.0);
    const bool all = k_eff_ == S_;
    if (all) {
      // k >= S: every position, α = 1 exactly; no approximate scores needed.
      s_.selected.resize(1);
      s_.selected[0].resize(S_);
      std::iota(s_.selected[0].begin(), s_.selected[0].end(), std::uint32_t{0});
    } else {
      stage1();
      topk();
    }
    stage2(all || shared_);
    if (t_.sparq.reallocation && !all) reallocate();
    write_outputs(all || shared_);
  }

 private:
  // ---- Stage 1 ---------------------------------------------------------------------
  void choose_components() {
    const std::size_t r = t_.sparq.r;
    const std::size_t sel_heads = shared_ ? g_ : 1;
    s_.rows.clear();
    s_.head_uses_row.clear();
    std::vector<std::vector<std::uint32_t>> per(shared_ ? 1 : g_);
    for (std::size_t sidx = 0; sidx < per.size(); ++sidx) {
      s_.magnitude.assign(d_, 0.0);
      for (std::size_t h = sidx * sel_heads; h < (sidx + 1) * sel_heads; ++h)
        for (std::size_t i = 0; i < d_; ++i) s_.magnitude[i] += std::abs(double(q0_[h * d_ + i]));
      top_components(s_.magnitude, r, s_.order, per[sidx]);
    }
    // Union of the heads' rows (per-head) or the shared rows.
    for (const auto& list : per) s_.rows.insert(s_.rows.end(), list.begin(), list.end());
    std::sort(s_.rows.begin(), s_.rows.end());
    s_.rows.erase(std::unique(s_.rows.begin(), s_.rows.end()), s_.rows.end());
    const std::size_t nr = s_.rows.size();
    s_.qsel.assign(g_ * nr, 0.0f);
    for (std::size_t h = 0; h < g_; ++h) {
      const std::vector<std::uint32_t>& i1 = per[shared_ ? 0 : h];
      const float* q = q0_ + h * d_;
      // τ_h = sqrt(d Σ_{i1}|q| / Σ|q|); Σ_{i1}|q| = 0 leaves the coefficients 0, so all
      // z are 0 and ŝ is uniform, as DESIGN §1 step 2 requires.
      double kept = 0.0, total = 0.0;
      for (std::uint32_t i : i1) kept += std::abs(double(q[i]));
      if (kept == 0.0) continue;
      for (std::size_t i = 0; i < d_; ++i) total += std::abs(double(q[i]));
      const double coef = double(kLog2e) / std::sqrt(double(d_) * kept / total);
      std::size_t u = 0;
      for (std::uint32_t i : i1) {
        while (s_.rows[u] != i) ++u;
        s_.qsel[h * nr + u] = float(double(q[i]) * coef);
      }
    }
  }

  void stage1() {
    profile::ProfileZone zone(prof_, Phase::stage1);
    choose_components();
    const std::size_t nr = s_.rows.size();
    n_chunks_ = (S_ + chunk_ - 1) / chunk_;
    z_stride_ = n_chunks_ * chunk_;
    if (s_.z.size() < g_ * z_stride_) s_.z.resize(g_ * z_stride_);
    s_.chunk_max.resize(n_chunks_ * g_);
    s_.chunk_sum.resize(n_chunks_ * g_);
    const bool d_major = has_d_major(v_.layouts);
    store_exp_ = shared_ && g_ > 1;
    parallel_for_chunks(n_chunks_, [&](std::size_t c) {
      SparqStage1Args a;
      a.blocks = d_major ? v_.d_major_blocks + kv_ : blocks_;
      a.block_stride = v_.kv_heads;
      a.block_tokens = v_.block_tokens;
      a.head_dim = d_;
      a.dtype = v_.dtype;
      a.d_major = d_major;
      a.key_offset = d_major ? 0 : v_.k_s_major_offset;
      a.row_stride = v_.d_major_stride;
      a.s_major_stride = v_.row_stride;
      a.scales = d_major && v_.d_major_scales ? v_.d_major_scales + kv_ : nullptr;
      a.j_begin = c * chunk_;
      a.j_end = std::min(S_, (c + 1) * chunk_);
      a.rows = s_.rows.data();
      a.n_rows = nr;
      a.qsel = s_.qsel.data();
      a.heads = g_;
      a.z = s_.z.data() + c * chunk_;
      a.z_stride = z_stride_;
      a.store_exp = store_exp_;
      a.chunk_max = s_.chunk_max.data() + c * g_;
      a.chunk_sum = s_.chunk_sum.data() + c * g_;
      a.tile = aligned_bytes(thread_scratch(c_.workspace).tile, sparq_stage1_tile_bytes(nr, g_));
      SparqStage1<Arch>{}(arch_, a);
    });
    // Softmax normalizers of each head over all S positions, merged in chunk order.
    s_.norm_max.assign(g_, -std::numeric_limits<double>::infinity());
    s_.norm_sum.assign(g_, 0.0);
    for (std::size_t c = 0; c < n_chunks_; ++c)
      for (std::size_t h = 0; h < g_; ++h) s_.norm_max[h] = std::max(s_.norm_max[h], double(s_.chunk_max[c * g_ + h]));
    for (std::size_t c = 0; c < n_chunks_; ++c)
      for (std::size_t h = 0; h < g_; ++h)
        s_.norm_sum[h] +=
            double(s_.chunk_sum[c * g_ + h]) * std::exp2(double(s_.chunk_max[c * g_ + h]) - s_.norm_max[h]);
    if (prof_) zone.add(stage1_bytes(d_major), std::uint64_t(S_) * g_ * (2 * nr + 4));
  }

  std::uint64_t stage1_bytes(bool d_major) const {
    std::uint64_t total = 0;
    const std::size_t B = v_.block_tokens;
    if (d_major) {
      for (std::size_t b = 0; b * B < S_; ++b) {
        const std::size_t n = std::min(B, S_ - b * B);
        const auto copy = reinterpret_cast<std::uintptr_t>(v_.key_block_d_major(kv_, b));
        const std::size_t e = v_.d_major_bytes();  // 1 for an int8 copy
        for (std::uint32_t row : s_.rows) {
          const std::size_t base = copy + std::size_t(row) * v_.d_major_stride * e;
          total += line_bytes(base, base + n * e);
        }
        if (v_.d_major_scales) total += 64 * ((s_.rows.size() * 4 + 63) / 64);  // the rows' scales, about
      }
    } else {
      for (std::size_t j = 0; j < S_; ++j) {
        const std::size_t base = v_.k_s_major_offset + (j % B) * v_.row_stride * es_;
        std::size_t prev = ~std::size_t{0};
        for (std::uint32_t row : s_.rows) {
          const std::size_t line = (base + row * es_) / 64;
          if (line != prev) total += 64, prev = line;
        }
      }
    }
    return total;
  }

  // ---- Top-k -----------------------------------------------------------------------
  void topk() {
    profile::ProfileZone zone(prof_, Phase::topk);
    SparqSelectProblem p;
    p.S = S_;
    p.n_ranked = S_ - window_;
    p.count = k_eff_ - window_;
    p.chunk = chunk_;
    p.score_stride = z_stride_;
    std::uint64_t flops = 0;
    if (store_exp_) {
      // Shared selection of a GQA group: rank by Σ_h ŝ_h = Σ_h w_h^c e_h.
      s_.weights.resize(n_chunks_ * g_);
      for (std::size_t c = 0; c < n_chunks_; ++c)
        for (std::size_t h = 0; h < g_; ++h)
          s_.weights[c * g_ + h] = float(std::exp2(double(s_.chunk_max[c * g_ + h]) - s_.norm_max[h]) / s_.norm_sum[h]);
      p.scores = s_.z.data();
      p.heads = g_;
      p.exp_mode = true;
      p.top = float(g_);  // Σ_h ŝ_h <= g
      p.chunk_weights = s_.weights.data();
      s_.selected.resize(1);
      sparq_select(arch_, p, s_.select, s_.selected[0], s_.alpha.data());
      flops = std::uint64_t(p.n_ranked) * g_ * 2 + std::uint64_t(k_eff_) * g_;
    } else {
      // One head ranks alone (MHA, or per-head selection): rank by its logits.
      s_.selected.resize(g_);
      for (std::size_t h = 0; h < g_; ++h) {
        p.scores = s_.z.data() + h * z_stride_;
        p.heads = 1;
        p.shift = float(s_.norm_max[h]);
        p.top = p.shift;  // the max of the head's z (exactly: a max of the stored floats)
        p.inv_sum = float(1.0 / s_.norm_sum[h]);
        sparq_select(arch_, p, s_.select, s_.selected[h], &s_.alpha[h]);
      }
      flops = std::uint64_t(k_eff_) * g_ * 2;
    }
    zone.add(0, flops);  // reads only scores in cache, no KV-cache bytes
  }

  // ---- Stage 2 ---------------------------------------------------------------------
  void build_union() {
    // Per-head selection: the union of the heads' lists, each row read once, with the
    // heads that attend to it.
    s_.positions.clear();
    s_.member.clear();
    s_.cursor.assign(g_, 0);
    for (;;) {
      std::uint32_t next = std::numeric_limits<std::uint32_t>::max();
      for (std::size_t h = 0; h < g_; ++h)
        if (s_.cursor[h] < s_.selected[h].size()) next = std::min(next, s_.selected[h][s_.cursor[h]]);
      if (next == std::numeric_limits<std::uint32_t>::max()) break;
      s_.positions.push_back(next);
      for (std::size_t h = 0; h < g_; ++h) {
        const bool m = s_.cursor[h] < s_.selected[h].size() && s_.selected[h][s_.cursor[h]] == next;
        s_.member.push_back(m);
        s_.cursor[h] += m;
      }
    }
  }

  void stage2(bool one_list) {
    profile::ProfileZone zone(prof_, Phase::stage2);
    const std::uint32_t* pos;
    std::size_t n;
    if (one_list) {
      pos = s_.selected[0].data();
      n = s_.selected[0].size();
    } else {
      build_union();
      pos = s_.positions.data();
      n = s_.positions.size();
    }
    const std::size_t dp = sparq_padded_dim(d_);
    s_.q2.assign(g_ * dp, 0.0f);
    const float qs = c_.scale * kLog2e;
    for (std::size_t h = 0; h < g_; ++h)
      for (std::size_t i = 0; i < d_; ++i) s_.q2[h * dp + i] = q0_[h * d_ + i] * qs;
    const std::size_t n2 = (n + kStage2Chunk - 1) / kStage2Chunk;
    const std::size_t part = g_ * (dp + 2);
    if (s_.parts.size() < n2 * part) s_.parts.resize(n2 * part);
    const bool key_d_major = !has_s_major(v_.layouts);
    parallel_for_chunks(n2, [&](std::size_t c) {
      SparqStage2Args a;
      a.blocks = blocks_;
      a.key_blocks = key_d_major ? v_.d_major_blocks + kv_ : blocks_;
      a.block_stride = v_.kv_heads;
      a.block_tokens = v_.block_tokens;
      a.head_dim = d_;
      a.dtype = v_.dtype;
      a.key_d_major = key_d_major;
      a.key_offset = key_d_major ? 0 : v_.k_s_major_offset;
      a.key_row_stride = v_.d_major_stride;
      a.value_offset = v_.v_offset;
      a.row_stride = v_.row_stride;
      a.positions = pos + c * kStage2Chunk;
      a.n = std::min(kStage2Chunk, n - c * kStage2Chunk);
      a.member = one_list ? nullptr : s_.member.data() + c * kStage2Chunk * g_;
      a.q = s_.q2.data();
      a.heads = g_;
      float* pt = s_.parts.data() + c * part;
      a.acc = pt;
      a.m = pt + g_ * dp;
      a.l = a.m + g_;
      a.tile = aligned_bytes(thread_scratch(c_.workspace).tile, sparq_stage2_tile_bytes(d_, g_));
      SparqStage2<Arch>{}(arch_, a);
    });
    // Merge the chunks' partial softmax states in chunk order (double).
    s_.y.assign(g_ * d_, 0.0);
    lse_.assign(g_, 0.0);
    for (std::size_t h = 0; h < g_; ++h) {
      double mx = -std::numeric_limits<double>::infinity();
      for (std::size_t c = 0; c < n2; ++c) mx = std::max(mx, double(s_.parts[c * part + g_ * dp + h]));
      double l = 0.0;
      double* y = s_.y.data() + h * d_;
      for (std::size_t c = 0; c < n2; ++c) {
        const float* pt = s_.parts.data() + c * part;
        const float m = pt[g_ * dp + h];
        if (m == -std::numeric_limits<float>::infinity()) continue;  // head has no position here
        const double w = std::exp2(double(m) - mx);
        l += w * double(pt[g_ * dp + g_ + h]);
        const float* acc = pt + h * dp;
        for (std::size_t i = 0; i < d_; ++i) y[i] += w * double(acc[i]);
      }
      for (std::size_t i = 0; i < d_; ++i) y[i] /= l;
      lse_[h] = (mx + std::log2(l) + kWeightShift) * kLn2;  // weights carry 2^-kWeightShift
    }
    if (prof_) zone.add(stage2_bytes(pos, n, key_d_major), std::uint64_t(n) * g_ * (4 * d_ + 4));
  }

  std::uint64_t stage2_bytes(const std::uint32_t* pos, std::size_t n, bool key_d_major) const {
    std::uint64_t total = 0;
    const std::size_t B = v_.block_tokens, row = d_ * es_, stride = v_.row_stride * es_;
    const bool fused = v_.layouts == KeyLayout::fused;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t r = pos[i] % B;
      if (fused) {  // key and value: one run
        total += line_bytes(r * stride, r * stride + 2 * row);
        continue;
      }
      total += line_bytes(v_.v_offset + r * stride, v_.v_offset + r * stride + row);
      if (!key_d_major) {
        total += line_bytes(v_.k_s_major_offset + r * stride, v_.k_s_major_offset + r * stride + row);
      } else {
        const auto copy = reinterpret_cast<std::uintptr_t>(v_.key_block_d_major(kv_, pos[i] / B));
        std::size_t prev = ~std::size_t{0};
        for (std::size_t c = 0; c < d_; ++c) {
          const std::size_t line = (copy + (c * v_.d_major_stride + r) * es_) / 64;
          if (line != prev) total += 64, prev = line;
        }
      }
    }
    return total;
  }

  // ---- Reallocation and outputs -----------------------------------------------------
  void reallocate() {
    profile::ProfileZone zone(prof_, Phase::reallocation);
    const float* vbar = v_.value_mean + kv_ * d_;
    for (std::size_t h = 0; h < g_; ++h) {
      const double a = s_.alpha[h];
      double* y = s_.y.data() + h * d_;
      for (std::size_t i = 0; i < d_; ++i) y[i] = a * y[i] + (1.0 - a) * double(vbar[i]);
    }
    zone.add(4 * d_, std::uint64_t(3) * d_ * g_);
  }

  void write_outputs(bool one_list) {
    for (std::size_t h = 0; h < g_; ++h) {
      const std::size_t row = row0_ + h;
      float* out = t_.out + row * d_;
      for (std::size_t i = 0; i < d_; ++i) out[i] = float(s_.y[h * d_ + i]);
      if (t_.lse) t_.lse[row] = float(lse_[h]);
      if (t_.alpha) t_.alpha[row] = float(s_.alpha[h]);
      if (t_.selected) (*t_.selected)[row] = s_.selected[one_list ? 0 : h];
    }
  }

  Arch arch_;
  const Task& t_;
  const LayerView& v_;
  const Common& c_;
  Profile* prof_;
  UnitScratch& s_;
  std::size_t S_ = 0, d_ = 0, g_ = 0, es_ = 0, kv_ = 0, row0_ = 0;
  const float* q0_ = nullptr;
  const std::byte* const* blocks_ = nullptr;
  std::size_t k_eff_ = 0, window_ = 0, chunk_ = 0, n_chunks_ = 0, z_stride_ = 0;
  bool shared_ = true, store_exp_ = false;
  std::vector<double> lse_;
};

}  // namespace

void sparq_decode(std::span<const Task> tasks, const Common& common) {
  if (tasks.empty()) return;
  const auto start = std::chrono::steady_clock::now();
  const std::size_t n_kv = common.kv_end - common.kv_begin;
  const std::size_t n_q = n_kv * common.group;
  for (const Task& t : tasks)
    if (t.selected && t.selected->size() != n_q) t.selected->resize(n_q);
  const std::size_t n_units = tasks.size() * n_kv;
  std::vector<Profile> unit_profiles(common.profile ? n_units : 0);
  dispatch_isa(common.isa, [&](auto arch) {
    parallel_for_chunks(n_units, [&](std::size_t u) {
      run_isolated([&] {
        Profile* prof = common.profile ? &unit_profiles[u] : nullptr;
        UnitRunner<decltype(arch)>(arch, tasks[u / n_kv], u % n_kv, common, prof).run();
      });
    });
  });
  if (!common.profile) return;
  // Units run concurrently, so their phase times add up to more than the call took:
  // each phase gets the call's wall time in proportion to its share of the units' time.
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Profile sum;
  for (const Profile& p : unit_profiles)
    for (std::size_t i = 0; i < kPhaseCount; ++i) sum.phases[i] += p.phases[i];
  double unit_seconds = 0.0;
  for (const PhaseStats& ph : sum.phases) unit_seconds += ph.seconds;
  const double factor = unit_seconds > 0.0 ? wall / unit_seconds : 0.0;
  for (std::size_t i = 0; i < kPhaseCount; ++i) {
    PhaseStats& dst = common.profile->phases[i];
    const PhaseStats& src = sum.phases[i];
    if (src.calls == 0) continue;
    dst.bytes_read += src.bytes_read;
    dst.flops += src.flops;
    dst.seconds += src.seconds * factor;
    dst.calls += 1;
  }
}

}  // namespace sparq::kernels
