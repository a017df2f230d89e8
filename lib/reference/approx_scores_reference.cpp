// Step 2 of Algorithm 1: approximate attention scores from r of the d query components.
//   ŝ = softmax( q[i1]·K[j][i1] / τ ),  τ = sqrt( d · Σ_{i∈i1}|q_i| / Σ_i|q_i| ).
// τ is the paper's temperature and does not depend on the softmax scale of step 5.
#include <algorithm>
#include <cmath>

#include "reference/reference.hpp"

namespace sparq::reference {

double temperature(std::span<const float> q, std::span<const std::uint32_t> i1) {
  double kept = 0.0;  // Σ_{i∈i1} |q_i|
  for (std::uint32_t i : i1) kept += std::abs(double(q[i]));
  if (kept == 0.0) return 0.0;  // also covers q = 0
  double total = 0.0;           // Σ_i |q_i|  (>= kept > 0)
  for (float x : q) total += std::abs(double(x));
  return std::sqrt(double(q.size()) * kept / total);
}

std::vector<double> approx_scores(const LayerView& v, std::size_t head, std::span<const float> q,
                                  std::span<const std::uint32_t> i1) {
  const std::size_t S = v.length;
  const double tau = temperature(q, i1);
  // Σ|q[i1]| = 0: every approximate logit is 0, so ŝ is uniform (DESIGN §1, step 2).
  if (tau == 0.0) return std::vector<double>(S, 1.0 / double(S));

  // Approximate logits, reading only components i1 of each key (the d-major rows; an int8
  // copy's values times their block's scales).
  std::vector<double> logit(S, 0.0);
  for (std::size_t j = 0; j < S; ++j) {
    double dot = 0.0;
    for (std::uint32_t i : i1) dot += double(q[i]) * approx_key(v, head, j, i);
    logit[j] = dot / tau;
  }
  // Softmax, shifted by the maximum so that exp never overflows.
  const double m = *std::max_element(logit.begin(), logit.end());
  double sum = 0.0;
  for (double& x : logit) sum += (x = std::exp(x - m));
  for (double& x : logit) x /= sum;
  return logit;
}

}  // namespace sparq::reference
