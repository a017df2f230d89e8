// SparQ top-k selection (DESIGN §1 steps 3-4) without a full sort: a threshold select on
// 32-bit keys (sparq_topk.hpp), baseline code that drives the per-ISA passes.
//
//   1. keys and 1/8-octave bins below a known upper bound of the score, per chunk
//      (parallel), with a histogram of a fixed 1-in-4 sample of the bins;
//   2. from the sample, a bracket [lo, hi] of bins that should hold the count-th
//      largest key (a margin of 4 standard deviations of the sampling error);
//   3. one exact pass per chunk (parallel, vector compares): how many keys lie in better
//      bins, and the positions and keys in the bracket, in position order. If the
//      bracket missed, it is widened to the end that missed and the pass repeated (at
//      most twice), so the result never depends on the sample. The bracket's keys are
//      refined sequentially, 8 key bits at a time, to the exact threshold key U and the
//      position J of the last tie taken (ties: lower position first);
//   4. per chunk (parallel): positions with key > U, or key == U and position <= J, plus
//      the window, compacted in place, and the chunk's Σ ŝ_h over them;
//   5. chunk lists concatenated in order (ascending positions), α_h summed in chunk order.
// Everything is per fixed chunk and merged in chunk order: the result is bit-identical
// for any thread count. Cost is a few streaming passes over N 4-byte keys (L2/L3
// resident), independent of k; the sequential part only sees the boundary bin.
#pragma once

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "common/parallel.hpp"
#include "kernels/sparq/sparq_topk.hpp"

namespace sparq::kernels {

struct SparqSelectProblem {
  std::size_t S = 0;              // positions [0, S)
  std::size_t n_ranked = 0;       // N = S - window: positions [0, N) compete, [N, S) always taken
  std::size_t count = 0;          // how many of the ranked positions to take, count < N
  std::size_t chunk = 0;          // positions per chunk
  const float* scores = nullptr;  // [heads][score_stride] over all S positions
  std::size_t score_stride = 0;
  std::size_t heads = 1;
  // exp mode: scores are e_h = 2^(z_h - chunk max); ŝ_h = w_h^c · e_h with
  // chunk_weights[c * heads + h] = w_h^c. logits mode (heads == 1): scores are z and
  // ŝ = 2^(z - shift) · inv_sum.
  bool exp_mode = false;
  float top = 0.0f;  // upper bound of the ranking score: g (exp mode) or max z (logits)
  const float* chunk_weights = nullptr;
  float shift = 0.0f;
  float inv_sum = 1.0f;
};

// Buffers reused across calls (grow only).
struct SparqSelectScratch {
  std::vector<std::int32_t> keys;
  std::vector<std::uint8_t> bins;
  std::vector<std::uint32_t> hist;
  std::vector<std::uint32_t> total;
  std::vector<float> tmp;
  std::vector<std::uint32_t> cand_pos;
  std::vector<std::int32_t> cand_key;
  std::vector<std::size_t> counts;
  std::vector<std::size_t> cand_counts;
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

// The bin holding the count-th largest key and how many keys lie in better bins, for a
// histogram whose best bin is the last (descending = false: the first).
struct SparqBoundary {
  std::uint32_t bin = 0;
  std::size_t above = 0;
};
[[nodiscard]] SparqBoundary sparq_boundary_bin(std::span<const std::uint32_t> hist, std::size_t count, bool best_last);

// Step 3: candidates (ascending positions, all in one first-level bin) -> the exact
// threshold for taking `need` of them (1 <= need <= size). Overwrites the arrays.
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
    if (s.bins.size() < n_chunks * C) s.bins.resize(n_chunks * C);
    parallel_for_chunks(ranked_chunks, [&](std::size_t c) {
      SparqTopkKeysArgs a;
      a.scores = p.scores + c * C;
      a.score_stride = p.score_stride;
      a.heads = H;
      a.weights = p.exp_mode ? p.chunk_weights + c * H : nullptr;
      a.n = ranked_in(c);
      a.top = p.top;
      a.keys = s.keys.data() + c * C;
      a.bins = s.bins.data() + c * C;
      a.hist = s.hist.data() + c * kBins;
      a.tmp = s.tmp.data() + c * tmp_stride;
      SparqTopkKeys<Arch>{}(arch, a);
    });
    s.total.assign(kBins, 0);
    std::size_t sampled = 0;
    for (std::size_t c = 0; c < ranked_chunks; ++c) {
      const std::uint32_t* h = s.hist.data() + c * kBins;
      for (std::size_t b = 0; b < kBins; ++b) s.total[b] += h[b];
    }
    for (std::uint32_t x : s.total) sampled += x;
    // Step 2: the bracket, from the sample's cumulative counts.
    const double rank = double(p.count) * double(sampled) / double(p.n_ranked);
    const double margin = 4.0 * std::sqrt(rank + 1.0) + 4.0;
    std::size_t lo = 0, hi = kBins - 1, cum = 0;
    bool lo_set = rank - margin <= 0.0;
    for (std::size_t b = 0; b < kBins; ++b) {
      cum += s.total[b];
      if (!lo_set && double(cum) >= rank - margin) lo = b, lo_set = true;
      if (double(cum) >= rank + margin) {
        hi = b;
        break;
      }
    }
    // Step 3.
    if (s.cand_pos.size() < n_chunks * C) s.cand_pos.resize(n_chunks * C), s.cand_key.resize(n_chunks * C);
    s.cand_counts.assign(ranked_chunks, 0);
    std::vector<std::size_t> above_in(ranked_chunks, 0);
    std::size_t above = 0, n_cand = 0;
    for (int attempt = 0;; ++attempt) {
      parallel_for_chunks(ranked_chunks, [&](std::size_t c) {
        SparqTopkCollectArgs a;
        a.keys = s.keys.data() + c * C;
        a.bins = s.bins.data() + c * C;
        a.n = ranked_in(c);
        a.j_begin = std::uint32_t(c * C);
        a.lo = std::uint8_t(lo);
        a.hi = std::uint8_t(hi);
        a.above = &above_in[c];
        a.positions = s.cand_pos.data() + c * C;
        a.out_keys = s.cand_key.data() + c * C;
        s.cand_counts[c] = SparqTopkCollect<Arch>{}(arch, a);
      });
      above = n_cand = 0;
      for (std::size_t c = 0; c < ranked_chunks; ++c) above += above_in[c], n_cand += s.cand_counts[c];
      if (p.count <= above) {
        lo = 0;  // the boundary is in a better bin than the bracket
      } else if (p.count > above + n_cand) {
        hi = kBins - 1;  // in a worse one
      } else {
        break;
      }
      assert(attempt < 2);
    }
    // Concatenate the chunks' candidates in order (ascending positions).
    std::size_t at = 0;
    for (std::size_t c = 0; c < ranked_chunks; ++c) {
      std::copy_n(s.cand_pos.data() + c * C, s.cand_counts[c], s.cand_pos.data() + at);
      std::copy_n(s.cand_key.data() + c * C, s.cand_counts[c], s.cand_key.data() + at);
      at += s.cand_counts[c];
    }
    thr = sparq_refine({s.cand_pos.data(), n_cand}, {s.cand_key.data(), n_cand}, p.count - above);
  }

  // Step 4.
  for (std::size_t c = 0; c < n_chunks; ++c)
    for (std::size_t h = 0; h < H; ++h) s.alpha_scale[c * H + h] = p.exp_mode ? p.chunk_weights[c * H + h] : p.inv_sum;
  parallel_for_chunks(n_chunks, [&](std::size_t c) {
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
