// H2O, the Heavy-Hitter Oracle (Zhang et al., NeurIPS 2023), as a KV-cache eviction
// policy for one KV head, from the paper's description:
//  - every cached position carries an accumulated attention score: the sum of the
//    attention probabilities it received from every query so far (queries attend only
//    to what is still cached; a GQA group's heads all add to their KV head's score);
//  - the cache holds at most a budget of k' positions: the k' - floor(k'/2) most recent
//    positions of the sequence (the "recent" half) plus the heavy hitters;
//  - when the cache exceeds the budget, the position outside the recent window with the
//    smallest accumulated score is evicted (ties: the lower position), repeatedly;
//  - an evicted position is gone for good: it never returns.
// The driver (the evaluator) calls, for every position p in order: add(p),
// evict_to(k'(p+1)), attention of q_p over kept(), accumulate(its probabilities).
// Evicting before attending (the paper attends over k + 1 rows, then evicts) keeps every
// step at exactly k' rows, the equal-bytes budget; an eviction then uses the scores of
// the queries before the current one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace sparq::eval {

class H2OCache {
 public:
  // Appends the next position (0, 1, 2, ...) with score `initial_score` (0 for a new
  // token; a model runtime that prefilled densely passes the attention each prompt
  // position received from the prompt's queries).
  void add(double initial_score = 0.0);
  // Evicts until at most `budget` positions remain (budget >= 1; throws otherwise), in
  // O(n log n) for any number of evictions.
  void evict_to(std::size_t budget);
  // Adds probs[i] to the score of kept()[i]; probs.size() must equal kept().size().
  void accumulate(std::span<const double> probs);

  [[nodiscard]] const std::vector<std::uint32_t>& kept() const noexcept { return kept_; }  // ascending
  [[nodiscard]] const std::vector<double>& scores() const noexcept { return score_; }      // aligned with kept()
  [[nodiscard]] std::size_t length() const noexcept { return length_; }                    // positions added so far
  [[nodiscard]] const std::vector<std::uint32_t>& evicted() const noexcept { return evicted_; }  // in order

 private:
  std::vector<std::uint32_t> kept_;
  std::vector<double> score_;
  std::vector<std::uint32_t> evicted_;
  std::size_t length_ = 0;
};

}  // namespace sparq::eval
