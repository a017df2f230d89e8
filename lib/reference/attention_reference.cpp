// Exact softmax attention: step 5 of Algorithm 1 over a chosen set of positions, dense
// decode (all S positions) and dense causal attention of a chunk of new queries.
#include <algorithm>
#include <cassert>
#include <cmath>
#include <numeric>
#include <string>

#include "reference/reference.hpp"
#include "reference/validate.hpp"
#include "sparq/error.hpp"

namespace sparq::reference {

double attend(const LayerView& v, std::size_t head, std::span<const float> q, std::span<const std::uint32_t> positions,
              double scale, std::span<double> out) {
  assert(!positions.empty() && q.size() == v.head_dim && out.size() == v.head_dim);
  const std::size_t d = v.head_dim;
  // Logits scale·q·K[j] over the given positions.
  std::vector<double> logit(positions.size(), 0.0);
  for (std::size_t n = 0; n < positions.size(); ++n) {
    double dot = 0.0;
    for (std::size_t i = 0; i < d; ++i) dot += double(q[i]) * key(v, head, positions[n], i);
    logit[n] = scale * dot;
  }
  // s = softmax(logit), shifted by the maximum; y' = Σ s_j V[j].
  const double m = *std::max_element(logit.begin(), logit.end());
  double sum = 0.0;
  std::vector<double> weight(positions.size());
  for (std::size_t n = 0; n < positions.size(); ++n) sum += (weight[n] = std::exp(logit[n] - m));
  std::fill(out.begin(), out.end(), 0.0);
  for (std::size_t n = 0; n < positions.size(); ++n)
    for (std::size_t i = 0; i < d; ++i) out[i] += weight[n] / sum * value(v, head, positions[n], i);
  return m + std::log(sum);
}

namespace {

std::vector<std::uint32_t> first_positions(std::size_t count) {
  std::vector<std::uint32_t> p(count);
  std::iota(p.begin(), p.end(), std::uint32_t{0});
  return p;
}

}  // namespace

Result dense_decode(const LayerView& v, std::span<const float> q, std::size_t kv_begin, std::size_t kv_end,
                    std::size_t group, double scale) {
  return dense_causal(v, q, 1, kv_begin, kv_end, group, scale);  // one new query attends to [0, S-1]
}

Result dense_causal(const LayerView& v, std::span<const float> q, std::size_t n_new, std::size_t kv_begin,
                    std::size_t kv_end, std::size_t group, double scale) {
  if (n_new == 0 || (v.length > 0 && n_new > v.length))
    throw Error(ErrorCode::invalid_argument,
                "n_new=" + std::to_string(n_new) + " must be in [1, S=" + std::to_string(v.length) + "]");
  const std::size_t n_q = detail::check_call(v, q.size(), n_new, kv_begin, kv_end, group, scale);
  const std::size_t S = v.length, d = v.head_dim;
  Result r;
  r.out.assign(n_new * n_q * d, 0.0);
  r.lse.assign(n_new * n_q, 0.0);
  r.alpha.assign(n_new * n_q, 1.0);
  for (std::size_t t = 0; t < n_new; ++t) {
    // Query t of the chunk sits at position S - n_new + t and sees everything up to it.
    const std::vector<std::uint32_t> visible = first_positions(S - n_new + t + 1);
    for (std::size_t h = 0; h < n_q; ++h) {
      const std::size_t row = t * n_q + h;
      r.lse[row] =
          attend(v, kv_begin + h / group, q.subspan(row * d, d), visible, scale, std::span(r.out).subspan(row * d, d));
    }
  }
  return r;
}

}  // namespace sparq::reference
