#include "eval/attention.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numeric>

namespace sparq::eval {

std::vector<double> attention_probs(const TraceLayer& t, std::size_t pos, std::size_t head,
                                    std::span<const std::uint32_t> positions, double scale) {
  assert(!positions.empty());
  const std::size_t kv = head / (t.q_heads / t.kv_heads);
  const std::span<const float> q = t.query(pos, head);
  std::vector<double> p(positions.size());
  for (std::size_t n = 0; n < positions.size(); ++n) {
    const std::span<const float> k = t.key(positions[n], kv);
    double dot = 0.0;
    for (std::size_t i = 0; i < q.size(); ++i) dot += double(q[i]) * double(k[i]);
    p[n] = scale * dot;
  }
  const double m = *std::max_element(p.begin(), p.end());
  double sum = 0.0;
  for (double& x : p) sum += (x = std::exp(x - m));
  for (double& x : p) x /= sum;
  return p;
}

std::vector<double> dense_probs(const TraceLayer& t, std::size_t pos, std::size_t head, double scale) {
  std::vector<std::uint32_t> all(pos + 1);
  std::iota(all.begin(), all.end(), std::uint32_t{0});
  return attention_probs(t, pos, head, all, scale);
}

void weighted_values(const TraceLayer& t, std::size_t kv_head, std::span<const std::uint32_t> positions,
                     std::span<const double> probs, std::span<double> out) {
  assert(positions.size() == probs.size() && out.size() == t.head_dim);
  std::fill(out.begin(), out.end(), 0.0);
  for (std::size_t n = 0; n < positions.size(); ++n) {
    const std::span<const float> v = t.value(positions[n], kv_head);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] += probs[n] * double(v[i]);
  }
}

}  // namespace sparq::eval
