// The baselines on hand-checked cases: H2O's eviction order, sink-window's selection,
// the oracle's top-k', and the equal-bytes budget.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "eval/equal_bytes.hpp"
#include "eval/h2o.hpp"
#include "eval/oracle.hpp"
#include "eval/sink_window.hpp"
#include "sparq/error.hpp"

namespace sparq::eval {
namespace {

using Positions = std::vector<std::uint32_t>;

// Budget 2 = 1 heavy hitter + 1 recent, then 3 = 1 heavy + 2 recent. Scores by hand:
//   p0: kept {0}        probs {1.0}       -> s0 = 1.0
//   p1: kept {0,1}      probs {0.3, 0.7}  -> s0 = 1.3, s1 = 0.7
//   p2: {0,1,2} > 2: recent {2}; evict argmin(s0=1.3, s1=0.7) = 1 -> {0,2}; probs {0.9, 0.1}
//   p3: {0,2,3} > 2: recent {3}; evict argmin(s0=2.2, s2=0.1) = 2 -> {0,3}; probs {0.2, 0.8}
//   p4 (budget 3): {0,3,4} fits
//   p5 (budget 3): {0,3,4,5} > 3: recent {4,5}; evict argmin(s0=2.4, s3=0.8) = 3 -> {0,4,5}
TEST(H2O, EvictionOrderOnATinySequence) {
  H2OCache c;
  c.add();
  c.evict_to(2);
  c.accumulate(std::vector<double>{1.0});
  c.add();
  c.evict_to(2);
  EXPECT_EQ(c.kept(), (Positions{0, 1}));
  c.accumulate(std::vector<double>{0.3, 0.7});
  c.add();
  c.evict_to(2);
  EXPECT_EQ(c.kept(), (Positions{0, 2}));
  c.accumulate(std::vector<double>{0.9, 0.1});
  EXPECT_DOUBLE_EQ(c.scores()[0], 2.2);
  c.add();
  c.evict_to(2);
  EXPECT_EQ(c.kept(), (Positions{0, 3}));
  c.accumulate(std::vector<double>{0.2, 0.8});
  c.add();
  c.evict_to(3);
  EXPECT_EQ(c.kept(), (Positions{0, 3, 4}));
  c.accumulate(std::vector<double>{0.5, 0.25, 0.25});
  c.add();
  c.evict_to(3);
  EXPECT_EQ(c.kept(), (Positions{0, 4, 5}));
  EXPECT_EQ(c.evicted(), (Positions{1, 2, 3}));
  EXPECT_EQ(c.length(), 6u);
}

TEST(H2O, TiesEvictTheLowerPositionAndRecentTokensAreProtected) {
  H2OCache c;
  for (int i = 0; i < 3; ++i) c.add();
  c.accumulate(std::vector<double>{0.5, 0.5, 0.0});  // position 2 has the lowest score but is recent
  c.evict_to(2);
  EXPECT_EQ(c.kept(), (Positions{1, 2}));
  EXPECT_EQ(c.evicted(), (Positions{0}));
}

TEST(H2O, EvictedPositionsNeverReturn) {
  H2OCache c;
  for (std::uint32_t p = 0; p < 50; ++p) {
    c.add();
    c.evict_to(4 + p / 10);  // the budget grows, as k'(S) does
    std::vector<double> probs(c.kept().size());
    for (std::size_t i = 0; i < probs.size(); ++i) probs[i] = (c.kept()[i] % 7 == 0) ? 1.0 : 0.01;
    c.accumulate(probs);
    for (std::uint32_t e : c.evicted())
      EXPECT_FALSE(std::binary_search(c.kept().begin(), c.kept().end(), e)) << "p=" << p << " e=" << e;
    EXPECT_LE(c.kept().size(), 4 + p / 10);
    EXPECT_EQ(c.kept().back(), p) << "the current token is always kept";
  }
  // Heavy hitters (multiples of 7) survive among the old positions.
  for (std::uint32_t k : c.kept())
    if (k < 40) {
      EXPECT_EQ(k % 7, 0u) << k;
    }
}

TEST(H2O, Errors) {
  H2OCache c;
  c.add();
  EXPECT_THROW(c.evict_to(0), Error);
  EXPECT_THROW(c.accumulate(std::vector<double>{0.5, 0.5}), Error);
}

TEST(SinkWindow, Selection) {
  EXPECT_EQ(sink_window_positions(10, 6), (Positions{0, 1, 2, 3, 8, 9}));
  EXPECT_EQ(sink_window_positions(10, 3), (Positions{0, 1, 9}));  // sinks = min(4, k'-1)
  EXPECT_EQ(sink_window_positions(10, 1), (Positions{9}));        // the current token
  EXPECT_EQ(sink_window_positions(10, 5, 0), (Positions{5, 6, 7, 8, 9}));
  EXPECT_EQ(sink_window_positions(4, 10), (Positions{0, 1, 2, 3}));
  EXPECT_EQ(sink_window_positions(5, 5), (Positions{0, 1, 2, 3, 4}));
  EXPECT_THROW((void)sink_window_positions(0, 3), Error);
  EXPECT_THROW((void)sink_window_positions(5, 0), Error);
}

TEST(Oracle, TopKByTrueMassWithTiesToTheLowerPosition) {
  const std::vector<double> mass = {0.1, 0.5, 0.2, 0.2};
  EXPECT_EQ(oracle_positions(mass, 2), (Positions{1, 2}));
  EXPECT_EQ(oracle_positions(mass, 1), (Positions{1}));
  EXPECT_EQ(oracle_positions(mass, 4), (Positions{0, 1, 2, 3}));
  EXPECT_EQ(oracle_positions(mass, 99), (Positions{0, 1, 2, 3}));  // k' >= S: everything
  EXPECT_THROW((void)oracle_positions(mass, 0), Error);
  EXPECT_THROW((void)oracle_positions({}, 1), Error);
}

TEST(EqualBytes, BudgetMatchesSparqBytes) {
  // d=64, S=1000, c=8: r = 8, k = round(62.5) = 63; k' = floor((8000 + 2*63*64) / 128) = 125.
  EXPECT_EQ(equal_bytes_budget(64, 1000, 8), 125u);
  EXPECT_EQ(sparq_model_bytes(64, 1000, 8, 2, false), 1000u * 8 * 2 + 2 * 63 * 64 * 2);
  EXPECT_LE(rows_model_bytes(64, 125, 2), sparq_model_bytes(64, 1000, 8, 2, false));
  EXPECT_GT(rows_model_bytes(64, 126, 2), sparq_model_bytes(64, 1000, 8, 2, false));
  // c = 1: r = d, so the budget covers the whole cache.
  EXPECT_EQ(equal_bytes_budget(64, 1000, 1), 1000u);
  // Roughly S/c for every c, and never more than S.
  for (double c : {2.0, 4.0, 16.0}) EXPECT_NEAR(double(equal_bytes_budget(128, 4096, c)), 4096 / c, 2.0) << c;
  EXPECT_EQ(equal_bytes_budget(64, 1, 16), 1u);
  EXPECT_THROW((void)equal_bytes_budget(64, 10, 0.5), Error);
}

}  // namespace
}  // namespace sparq::eval
