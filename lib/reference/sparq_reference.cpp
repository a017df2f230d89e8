// SparQ decode (DESIGN §1, the paper's Algorithm 1), per-head and GQA-shared selection.
//
// Both selection modes are one loop: query heads are taken in "selection groups" that
// share i1 and i2. With shared selection a selection group is the g query heads of one
// KV head; with per-head selection it is a single query head, and the sums over the
// group below reduce to that head's own |q| and ŝ, i.e. the paper's algorithm exactly.
#include <cmath>
#include <string>

#include "reference/reference.hpp"
#include "reference/validate.hpp"
#include "sparq/error.hpp"

namespace sparq::reference {

namespace {

void check_params(const SparQResolved& p, std::size_t d) {
  if (p.r < 1 || p.r > d)
    throw Error(ErrorCode::invalid_argument,
                "r=" + std::to_string(p.r) + " with head_dim=" + std::to_string(d) + ": r must be in [1, head_dim]");
  if (p.k < 1) throw Error(ErrorCode::invalid_argument, "k=0: the number of fetched positions must be at least 1");
}

}  // namespace

Result sparq_decode(const LayerView& v, std::span<const float> q, std::size_t kv_begin, std::size_t kv_end,
                    std::size_t group, double scale, const SparQResolved& p) {
  const std::size_t n_q = detail::check_call(v, q.size(), 1, kv_begin, kv_end, group, scale);
  const std::size_t S = v.length, d = v.head_dim;
  check_params(p, d);
  if (p.reallocation && v.value_mean == nullptr)
    throw Error(ErrorCode::invalid_argument, "reallocation needs the view's value_mean, which is null");

  Result r;
  r.out.assign(n_q * d, 0.0);
  r.lse.assign(n_q, 0.0);
  r.alpha.assign(n_q, 1.0);
  r.components.resize(n_q);
  r.selected.resize(n_q);
  r.approx_scores.resize(n_q);

  const std::size_t sel = p.gqa == GqaSelection::shared ? group : 1;  // heads sharing i1 and i2
  for (std::size_t first = 0; first < n_q; first += sel) {
    const std::size_t kv = kv_begin + first / group;  // all heads of a selection group share it
    auto q_of = [&](std::size_t h) { return q.subspan(h * d, d); };

    // Step 1: i1 = the r largest |q_i| (shared: of Σ_h |q_h,i|), ties to the lower index.
    std::vector<double> magnitude(d, 0.0);
    for (std::size_t h = first; h < first + sel; ++h)
      for (std::size_t i = 0; i < d; ++i) magnitude[i] += std::abs(double(q_of(h)[i]));
    const std::vector<std::uint32_t> i1 = top_n(magnitude, p.r);

    // Step 2: ŝ_h per head, with the common i1 and the head's own temperature τ_h.
    std::vector<double> score_sum(S, 0.0);
    for (std::size_t h = first; h < first + sel; ++h) {
      r.approx_scores[h] = approx_scores(v, kv, q_of(h), i1);
      for (std::size_t j = 0; j < S; ++j) score_sum[j] += r.approx_scores[h][j];
    }

    // Step 3: i2 = the last min(l, k_eff) positions, then the largest Σ_h ŝ_h among the
    // rest (ties: lower position first), k_eff = min(k, S) positions in all.
    const std::vector<std::uint32_t> i2 = select_positions(score_sum, p.k, p.window);

    for (std::size_t h = first; h < first + sel; ++h) {
      r.components[h] = i1;
      r.selected[h] = i2;

      // Step 4: α_h = Σ_{j∈i2} ŝ_h[j], exactly 1 when every position is fetched.
      double alpha = 1.0;
      if (i2.size() < S) {
        alpha = 0.0;
        for (std::uint32_t j : i2) alpha += r.approx_scores[h][j];
      }
      r.alpha[h] = alpha;

      // Step 5: y' = exact softmax(scale·q·K[j]) attention over j ∈ i2 only.
      const std::span<double> y = std::span(r.out).subspan(h * d, d);
      r.lse[h] = attend(v, kv, q_of(h), i2, scale, y);

      // Step 6: reallocation, y = α·y' + (1 − α)·v̄, v̄ the cache's mean of all S values.
      if (p.reallocation) {
        const float* mean = v.value_mean + kv * d;
        for (std::size_t i = 0; i < d; ++i) y[i] = alpha * y[i] + (1.0 - alpha) * double(mean[i]);
      }
    }
  }
  return r;
}

}  // namespace sparq::reference
