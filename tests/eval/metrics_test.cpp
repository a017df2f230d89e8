// Metrics on hand-checked vectors.
#include "sparq/tools/eval/metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace sparq::eval {
namespace {

using V = std::vector<double>;
using Positions = std::vector<std::uint32_t>;

TEST(Metrics, RelativeL2AndCosine) {
  EXPECT_DOUBLE_EQ(relative_l2(V{1, 2}, V{1, 2}), 0.0);
  EXPECT_DOUBLE_EQ(relative_l2(V{0, 1}, V{1, 0}), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(relative_l2(V{3, 4}, V{0, 0}), 5.0);
  EXPECT_DOUBLE_EQ(cosine_similarity(V{2, 0}, V{5, 0}), 1.0);
  EXPECT_DOUBLE_EQ(cosine_similarity(V{0, 1}, V{1, 0}), 0.0);
  EXPECT_DOUBLE_EQ(cosine_similarity(V{-1, 0}, V{1, 0}), -1.0);
  EXPECT_DOUBLE_EQ(cosine_similarity(V{0, 0}, V{0, 0}), 1.0);
  EXPECT_DOUBLE_EQ(cosine_similarity(V{0, 0}, V{1, 0}), 0.0);
}

TEST(Metrics, RankRecallAndMass) {
  const V p = {0.1, 0.4, 0.3, 0.2};
  EXPECT_EQ(dense_rank(p), (Positions{3, 0, 1, 2}));
  EXPECT_DOUBLE_EQ(recall(Positions{1, 2}, dense_rank(p)), 1.0);
  EXPECT_DOUBLE_EQ(recall(Positions{0, 1}, dense_rank(p)), 0.5);
  EXPECT_DOUBLE_EQ(recall(Positions{0, 1, 2, 3}, dense_rank(p)), 1.0);
  EXPECT_DOUBLE_EQ(captured_mass(Positions{0, 2}, p), 0.4);
  // Ties rank the lower position first.
  EXPECT_EQ(dense_rank(V{0.25, 0.25, 0.5}), (Positions{1, 2, 0}));
}

TEST(Metrics, SumsAverageAndTransfer) {
  MetricSums s;
  s.add({.rel_l2 = 0.2, .cosine = 0.9, .recall = 1, .alpha_true = 0.8, .alpha_est = 0.7, .k = 4});
  s.add({.rel_l2 = 0.4, .cosine = 0.7, .recall = 0.5, .alpha_true = 0.6, .alpha_est = std::nullopt, .k = 2});
  s.add_bytes(100);
  s.add_bytes(300);
  const Summary m = s.summary(800);
  EXPECT_DOUBLE_EQ(m.rel_l2, 0.3);
  EXPECT_DOUBLE_EQ(m.max_rel_l2, 0.4);
  EXPECT_DOUBLE_EQ(m.median_rel_l2, 0.3);
  EXPECT_DOUBLE_EQ(m.cosine, 0.8);
  EXPECT_DOUBLE_EQ(m.recall, 0.75);
  EXPECT_DOUBLE_EQ(m.k, 3);
  ASSERT_TRUE(m.alpha_est);
  EXPECT_DOUBLE_EQ(*m.alpha_est, 0.7);
  EXPECT_DOUBLE_EQ(m.bytes_per_step, 200);
  EXPECT_DOUBLE_EQ(m.transfer, 4);
  EXPECT_EQ(m.samples, 2u);
}

}  // namespace
}  // namespace sparq::eval
