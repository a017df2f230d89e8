#include "eval/h2o.hpp"

#include <algorithm>
#include <numeric>
#include <string>

#include "sparq/error.hpp"

namespace sparq::eval {

void H2OCache::add(double initial_score) {
  kept_.push_back(static_cast<std::uint32_t>(length_++));
  score_.push_back(initial_score);
}

void H2OCache::evict_to(std::size_t budget) {
  if (budget == 0) throw Error(ErrorCode::invalid_argument, "H2O: budget k'=0 must be at least 1");
  const std::size_t recent = budget - budget / 2;  // heavy hitters get floor(k'/2)
  const std::size_t recent_begin = length_ > recent ? length_ - recent : 0;
  if (kept_.size() <= budget) return;
  // Candidates: the kept positions before the recent window, a prefix of kept_. There are
  // at least `need` of them: the window holds at most `recent` <= budget positions.
  const std::size_t candidates =
      std::size_t(std::lower_bound(kept_.begin(), kept_.end(), std::uint32_t(recent_begin)) - kept_.begin());
  const std::size_t need = kept_.size() - budget;
  // Evicting the smallest score one at a time (ties: the lower position) removes the
  // `need` smallest by (score, position), in that order: select them at once.
  std::vector<std::size_t> order(candidates);
  std::iota(order.begin(), order.end(), std::size_t{0});
  auto before = [&](std::size_t a, std::size_t b) {
    return score_[a] < score_[b] || (score_[a] == score_[b] && a < b);
  };
  if (need < candidates) std::nth_element(order.begin(), order.begin() + std::ptrdiff_t(need), order.end(), before);
  order.resize(need);
  std::sort(order.begin(), order.end(), before);
  std::vector<bool> gone(kept_.size(), false);
  for (std::size_t i : order) {
    evicted_.push_back(kept_[i]);
    gone[i] = true;
  }
  std::size_t w = 0;
  for (std::size_t i = 0; i < kept_.size(); ++i)
    if (!gone[i]) kept_[w] = kept_[i], score_[w] = score_[i], ++w;
  kept_.resize(w);
  score_.resize(w);
}

void H2OCache::accumulate(std::span<const double> probs) {
  if (probs.size() != kept_.size())
    throw Error(ErrorCode::shape_mismatch, "H2O: " + std::to_string(probs.size()) + " probabilities for " +
                                               std::to_string(kept_.size()) + " kept positions");
  for (std::size_t i = 0; i < probs.size(); ++i) score_[i] += probs[i];
}

}  // namespace sparq::eval
