// Accuracy metrics of one attention output against dense (docs/eval-traces.md,
// "Metrics") and their running means.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace sparq::eval {

// ‖y − ref‖ / ‖ref‖ (0 when both are zero; ‖y‖ when only ref is zero).
[[nodiscard]] double relative_l2(std::span<const double> y, std::span<const double> ref);
// y·ref / (‖y‖‖ref‖) (1 when both are zero, 0 when one is).
[[nodiscard]] double cosine_similarity(std::span<const double> y, std::span<const double> ref);

// rank[j] = place of position j when positions are sorted by descending probability
// (ties: lower position first), so the dense top-k are the positions with rank < k.
[[nodiscard]] std::vector<std::uint32_t> dense_rank(std::span<const double> probs);
// |fetched ∩ top-|fetched| of the dense order| / |fetched| (1 for an empty set).
[[nodiscard]] double recall(std::span<const std::uint32_t> fetched, std::span<const std::uint32_t> rank);
// Σ_{j ∈ fetched} probs[j].
[[nodiscard]] double captured_mass(std::span<const std::uint32_t> fetched, std::span<const double> probs);

struct StepMetrics {
  double rel_l2 = 0, cosine = 0, recall = 0, alpha_true = 0;
  std::optional<double> alpha_est;
  double k = 0;  // positions attended
};

// Means over (decode step, query head) samples plus bytes per step.
struct Summary {
  double rel_l2 = 0, cosine = 0, recall = 0, alpha_true = 0;
  std::optional<double> alpha_est;
  double k = 0;
  double bytes_per_step = 0;  // one layer, all KV heads
  double transfer = 0;        // dense bytes / these bytes
  double median_rel_l2 = 0;   // robust to the few heads whose dense output is near zero
  double max_rel_l2 = 0;
  std::size_t samples = 0;
};

class MetricSums {
 public:
  void add(const StepMetrics& m);
  void add_bytes(double bytes_one_step) { bytes_ += bytes_one_step, ++steps_; }
  void merge(const MetricSums& o);
  // Means; `dense_bytes_per_step` gives `transfer`.
  [[nodiscard]] Summary summary(double dense_bytes_per_step) const;
  [[nodiscard]] double bytes_per_step() const { return steps_ ? bytes_ / double(steps_) : 0.0; }

 private:
  double rel_ = 0, cos_ = 0, recall_ = 0, alpha_true_ = 0, alpha_est_ = 0, k_ = 0, max_rel_ = 0, bytes_ = 0;
  std::vector<double> rels_;  // every sample's rel_l2, for the median
  std::size_t n_ = 0, n_est_ = 0, steps_ = 0;
};

}  // namespace sparq::eval
