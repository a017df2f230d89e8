#include "eval/h2o.hpp"

#include <string>

#include "sparq/error.hpp"

namespace sparq::eval {

void H2OCache::add() {
  kept_.push_back(static_cast<std::uint32_t>(length_++));
  score_.push_back(0.0);
}

void H2OCache::evict_to(std::size_t budget) {
  if (budget == 0) throw Error(ErrorCode::invalid_argument, "H2O: budget k'=0 must be at least 1");
  const std::size_t recent = budget - budget / 2;  // heavy hitters get floor(k'/2)
  const std::size_t recent_begin = length_ > recent ? length_ - recent : 0;
  while (kept_.size() > budget) {
    // The smallest score among positions before the recent window (ties: lower position,
    // i.e. the first one found). One exists: the recent window holds at most `recent`
    // <= budget < kept_.size() positions.
    std::size_t victim = kept_.size();
    for (std::size_t i = 0; i < kept_.size() && kept_[i] < recent_begin; ++i)
      if (victim == kept_.size() || score_[i] < score_[victim]) victim = i;
    evicted_.push_back(kept_[victim]);
    kept_.erase(kept_.begin() + std::ptrdiff_t(victim));
    score_.erase(score_.begin() + std::ptrdiff_t(victim));
  }
}

void H2OCache::accumulate(std::span<const double> probs) {
  if (probs.size() != kept_.size())
    throw Error(ErrorCode::shape_mismatch, "H2O: " + std::to_string(probs.size()) + " probabilities for " +
                                               std::to_string(kept_.size()) + " kept positions");
  for (std::size_t i = 0; i < probs.size(); ++i) score_[i] += probs[i];
}

}  // namespace sparq::eval
