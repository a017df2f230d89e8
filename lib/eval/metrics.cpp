#include "sparq/tools/eval/metrics.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numeric>

namespace sparq::eval {

namespace {
double norm(std::span<const double> x) {
  double s = 0.0;
  for (double v : x) s += v * v;
  return std::sqrt(s);
}
}  // namespace

double relative_l2(std::span<const double> y, std::span<const double> ref) {
  assert(y.size() == ref.size());
  double diff = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i) diff += (y[i] - ref[i]) * (y[i] - ref[i]);
  const double r = norm(ref);
  return r > 0 ? std::sqrt(diff) / r : std::sqrt(diff);
}

double cosine_similarity(std::span<const double> y, std::span<const double> ref) {
  assert(y.size() == ref.size());
  const double a = norm(y), b = norm(ref);
  if (a == 0 || b == 0) return a == b ? 1.0 : 0.0;
  double dot = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i) dot += y[i] * ref[i];
  return std::clamp(dot / (a * b), -1.0, 1.0);
}

std::vector<std::uint32_t> dense_rank(std::span<const double> probs) {
  std::vector<std::uint32_t> order(probs.size());
  std::iota(order.begin(), order.end(), std::uint32_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return probs[a] > probs[b]; });
  std::vector<std::uint32_t> rank(probs.size());
  for (std::size_t i = 0; i < order.size(); ++i) rank[order[i]] = static_cast<std::uint32_t>(i);
  return rank;
}

double recall(std::span<const std::uint32_t> fetched, std::span<const std::uint32_t> rank) {
  if (fetched.empty()) return 1.0;
  std::size_t hits = 0;
  for (std::uint32_t j : fetched) hits += rank[j] < fetched.size();
  return double(hits) / double(fetched.size());
}

double captured_mass(std::span<const std::uint32_t> fetched, std::span<const double> probs) {
  double s = 0.0;
  for (std::uint32_t j : fetched) s += probs[j];
  return s;
}

void MetricSums::add(const StepMetrics& m) {
  rel_ += m.rel_l2;
  cos_ += m.cosine;
  recall_ += m.recall;
  alpha_true_ += m.alpha_true;
  k_ += m.k;
  max_rel_ = std::max(max_rel_, m.rel_l2);
  rels_.push_back(m.rel_l2);
  if (m.alpha_est) alpha_est_ += *m.alpha_est, ++n_est_;
  ++n_;
}

void MetricSums::merge(const MetricSums& o) {
  rel_ += o.rel_, cos_ += o.cos_, recall_ += o.recall_, alpha_true_ += o.alpha_true_, alpha_est_ += o.alpha_est_;
  k_ += o.k_, bytes_ += o.bytes_, max_rel_ = std::max(max_rel_, o.max_rel_);
  n_ += o.n_, n_est_ += o.n_est_, steps_ += o.steps_;
  rels_.insert(rels_.end(), o.rels_.begin(), o.rels_.end());
}

Summary MetricSums::summary(double dense_bytes_per_step) const {
  Summary s;
  s.samples = n_;
  if (n_ == 0) return s;
  const double n = double(n_);
  s.rel_l2 = rel_ / n, s.cosine = cos_ / n, s.recall = recall_ / n, s.alpha_true = alpha_true_ / n, s.k = k_ / n;
  s.max_rel_l2 = max_rel_;
  std::vector<double> sorted = rels_;
  std::sort(sorted.begin(), sorted.end());
  const std::size_t mid = sorted.size() / 2;
  s.median_rel_l2 = sorted.size() % 2 ? sorted[mid] : 0.5 * (sorted[mid - 1] + sorted[mid]);
  if (n_est_) s.alpha_est = alpha_est_ / double(n_est_);
  s.bytes_per_step = bytes_per_step();
  s.transfer = s.bytes_per_step > 0 ? dense_bytes_per_step / s.bytes_per_step : 0.0;
  return s;
}

}  // namespace sparq::eval
