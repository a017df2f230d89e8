// SparQ top-k selection (DESIGN §1 steps 3-4) without a full sort: a three-level radix
// select on 32-bit keys (sparq_topk.hpp), baseline code that drives the per-ISA passes.
//
//   1. keys + 12-bit histogram per chunk (parallel), histograms summed (integers, so the
//      sum does not depend on the order);
//   2. the bin holding the count-th largest key; every key above it is selected;
//   3. if only part of that bin is needed: its keys are collected (parallel, in position
//      order) and refined sequentially on bits 19..8 and 7..0 to the exact threshold key
//      U and the position J of the last tie taken (ties: lower position first);
//   4. per chunk (parallel): positions with key > U, or key == U and position <= J, plus
//      the window, compacted in place, and the chunk's Σ ŝ_h over them;
//   5. chunk lists concatenated in order (ascending positions), α_h summed in chunk order.
// Everything is per fixed chunk and merged in chunk order: the result is bit-identical
// for any thread count. Cost is a few streaming passes over N 4-byte keys (L2/L3
// resident), independent of k.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include <oneapi/tbb/parallel_for.h>

#include "kernels/sparq_topk.hpp"

namespace sparq::kernels {

struct SparqSelectProblem {
  std::size_t S = 0;         // positions [0, S)
  std::size_t n_ranked = 0;  // N = S - window: positions [0, N) compete, [N, S) always taken
  std::size_t count = 0;     // how many of the ranked positions to take, count < N
  std::size_t chunk = 0;     // positions per chunk
  const float* scores = nullptr;  // [heads][score_stride] over all S positions
  std::size_t score_stride = 0;
  std::size_t heads = 1;
  // exp mode: scores are e_h = 2^(z_h - chunk max); ŝ_h = w_h^c · e_h with
  // chunk_weights[c * heads + h] = w_h^c. logits mode (heads == 1): scores are z and
  // ŝ = 2^(z - shift) · inv_sum.
  bool exp_mode = false;
  const float* chunk_weights = nullptr;
  float shift = 0.0f;
  float inv_sum = 1.0f;
};

// Buffers reused across calls (grow only).
struct SparqSelectScratch {
  std::vector<std::int32_t> keys;
  std::vector<std::uint32_t> hist;
  std::vector<std::uint32_t> total;
  std::vector<float> tmp;
  std::vector<std::uint32_t> cand_pos;
  std::vector<std::int32_t> cand_key;
  std::vector<std::size_t> counts;
  std::vector<float> alpha_parts;
  std::vector<float> alpha_scale;
};

// Threshold of steps 2-3. ties: keys > U and keys == U at positions <= last_tie are
// selected; otherwise every key >= U is (INT32_MAX: none, no finite score has that key).
struct SparqThreshold {
  std::int32_t key = 0;  // U
  std::uint32_t last_tie = 0;
  bool ties = false;
};

// Step 2 on the merged first-level histogram: the bin of the count-th largest key, and
// how many keys lie in higher bins.
struct SparqBoundary {
  std::uint32_t bin = 0;
  std::size_t above = 0;
};
[[nodiscard]] SparqBoundary sparq_boundary_bin(std::span<const std::uint32_t> total, std::size_t count);

// Step 3: candidates (ascending positions, all in one first-level bin) -> the exact
// threshold for taking `need` of them (1 <= need < size). Reorders nothing, but
// overwrites the candidate arrays.
[[nodiscard]] SparqThreshold sparq_refine(std::span<std::uint32_t> positions, std::span<std::int32_t> keys,
                                          std::size_t need);

// Runs steps 1-5. Writes the k = count + (S - N) selected positions (ascending) to `out`
// and α_h = Σ_{selected} ŝ_h to alpha[0, heads). Parallel over chunks inside the current
// task arena (callers isolate it).
template <class Arch>
void sparq_select(Arch arch, const SparqSelectProblem& p, SparqSelectScratch& s, std::vector<std::uint32_t>& out,
                  double* alpha) {
  const std::size_t C = p.chunk;
  const std::size_t n_chunks = (p.S + C - 1) / C;
  const std::size_t ranked_chunks = (p.n_ranked + C - 1) / C;
  const std::size_t H = p.heads;
  constexpr std::size_t kBins = kSparqTopkBins;
  const std::size_t tmp_stride = C + kMaxLanes + H * kMaxLanes;
  if (s.keys.size() < n_chunks * C) s.keys.resize(n_chunks * C);
  if (s.tmp.size() < n_chunks * tmp_stride) s.tmp.resize(n_chunks * tmp_stride);
  s.counts.assign(n_chunks, 0);
  s.alpha_parts.assign(n_chunks * H, 0.0f);
  s.alpha_scale.assign(n_chunks * H, 0.0f);
  auto ranked_in = [&](std::size_t c) { return std::min(p.n_ranked, (c + 1) * C) - std::min(p.n_ranked, c * C); };

  SparqThreshold thr{std::numeric_limits<std::int32_t>::max(), 0, false};  // select none
  if (p.count > 0) {
    // Step 1.
    if (s.hist.size() < ranked_chunks * kBins) s.hist.resize(ranked_chunks * kBins);
    tbb::parallel_for(std::size_t{0}, ranked_chunks, [&](std::size_t c) {
      SparqTopkKeysArgs a;
      a.scores = p.scores + c * C;
      a.score_stride = p.score_stride;
      a.heads = H;
      a.weights = p.exp_mode ? p.chunk_weights + c * H : nullptr;
      a.n = ranked_in(c);
      a.keys = s.keys.data() + c * C;
      a.hist = s.hist.data() + c * kBins;
      a.tmp = s.tmp.data() + c * tmp_stride;
      SparqTopkKeys<Arch>{}(arch, a);
    });
    s.total.assign(kBins, 0);
    for (std::size_t c = 0; c < ranked_chunks; ++c) {
      const std::uint32_t* h = s.hist.data() + c * kBins;
      for (std::size_t b = 0; b < kBins; ++b) s.total[b] += h[b];
    }
    // Step 2.
    const SparqBoundary bd = sparq_boundary_bin(s.total, p.count);
    const std::size_t need = p.count - bd.above;
    const std::int32_t bin_lo = sparq_key_from_bits(bd.bin << kSparqTopkShift);
    if (need == s.total[bd.bin]) {
      thr = {bin_lo, 0, false};
    } else {
      // Step 3: collect the boundary bin in position order, refine.
      const std::int32_t bin_hi = sparq_key_from_bits((bd.bin << kSparqTopkShift) | ((1u << kSparqTopkShift) - 1));
      std::vector<std::size_t> offset(ranked_chunks + 1, 0);
      for (std::size_t c = 0; c < ranked_chunks; ++c) offset[c + 1] = offset[c] + s.hist[c * kBins + bd.bin];
      const std::size_t n_cand = offset[ranked_chunks];
      if (s.cand_pos.size() < n_cand) s.cand_pos.resize(n_cand), s.cand_key.resize(n_cand);
      tbb::parallel_for(std::size_t{0}, ranked_chunks, [&](std::size_t c) {
        if (offset[c + 1] == offset[c]) return;
        SparqTopkCollectArgs a;
        a.keys = s.keys.data() + c * C;
        a.n = ranked_in(c);
        a.j_begin = std::uint32_t(c * C);
        a.lo = bin_lo;
        a.hi = bin_hi;
        a.positions = s.cand_pos.data() + offset[c];
        a.out_keys = s.cand_key.data() + offset[c];
        SparqTopkCollect<Arch>{}(arch, a);
      });
      thr = sparq_refine({s.cand_pos.data(), n_cand}, {s.cand_key.data(), n_cand}, need);
    }
  }

  // Step 4.
  for (std::size_t c = 0; c < n_chunks; ++c)
    for (std::size_t h = 0; h < H; ++h)
      s.alpha_scale[c * H + h] = p.exp_mode ? p.chunk_weights[c * H + h] : p.inv_sum;
  tbb::parallel_for(std::size_t{0}, n_chunks, [&](std::size_t c) {
    SparqTopkEmitArgs a;
    a.keys = s.keys.data() + c * C;
    a.j_begin = std::uint32_t(c * C);
    a.n = std::min(p.S, (c + 1) * C) - c * C;
    a.n_ranked = ranked_in(c);
    a.thr_lo = thr.key;
    a.thr_hi = thr.key;
    a.split = a.n_ranked;
    if (thr.ties) {
      const std::size_t cut = std::size_t(thr.last_tie) + 1;  // positions < cut take ties
      a.split = cut <= c * C ? 0 : std::min(a.n_ranked, cut - c * C);
      a.thr_hi = thr.key + 1;
    }
    a.scores = p.scores + c * C;
    a.score_stride = p.score_stride;
    a.heads = H;
    a.exp_mode = p.exp_mode;
    a.shift = p.shift;
    a.scale = s.alpha_scale.data() + c * H;
    a.alpha = s.alpha_parts.data() + c * H;
    a.tmp = s.tmp.data() + c * tmp_stride;
    s.counts[c] = SparqTopkEmit<Arch>{}(arch, a);
  });

  // Step 5.
  std::size_t total = 0;
  for (std::size_t c = 0; c < n_chunks; ++c) total += s.counts[c];
  out.resize(total);
  std::size_t at = 0;
  for (std::size_t c = 0; c < n_chunks; ++c) {
    const std::int32_t* src = s.keys.data() + c * C;
    for (std::size_t i = 0; i < s.counts[c]; ++i) out[at + i] = std::uint32_t(src[i]);
    at += s.counts[c];
  }
  for (std::size_t h = 0; h < H; ++h) {
    double a = 0.0;
    for (std::size_t c = 0; c < n_chunks; ++c) a += double(s.alpha_parts[c * H + h]);
    alpha[h] = a;
  }
}

}  // namespace sparq::kernels
