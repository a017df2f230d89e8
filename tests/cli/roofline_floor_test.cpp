// `sparq roofline`'s check that the memory floor's ceilings come from one bandwidth mode:
// the streaming figures right before and right after the scattered patterns must agree
// within 10% of the larger (apps/sparq/roofline_run.hpp).
#include <gtest/gtest.h>

#include "roofline_run.hpp"

namespace sparq::cli::roofline {
namespace {

TEST(RooflineFloor, SteadyMeansWithinTenPercentOfTheLarger) {
  EXPECT_TRUE(steady(50.0, 50.0));
  EXPECT_TRUE(steady(50.0, 45.5));
  EXPECT_TRUE(steady(45.5, 50.0));
  EXPECT_FALSE(steady(50.0, 44.9));
  EXPECT_FALSE(steady(28.1, 55.3));  // a VM switching modes between the two (seen here)
  EXPECT_FALSE(steady(55.3, 28.1));
}

TEST(RooflineFloor, FloorIsSteadyOnlyWhenBothFiguresWereMeasured) {
  roofline::Run run;
  EXPECT_FALSE(run.floor_steady());  // interrupted: nothing measured
  run.floor_ceilings = {.streaming_before_gb_per_s = 40.0, .attempts = 1};
  EXPECT_FALSE(run.floor_steady());  // no figure after the patterns
  run.bw_after = BandwidthSample{.threads = 1, .gb_per_s = 38.0};
  EXPECT_TRUE(run.floor_steady());
  run.bw_after->gb_per_s = 20.0;
  EXPECT_FALSE(run.floor_steady());
  run.floor_ceilings.attempts = 0;
  run.bw_after->gb_per_s = 40.0;
  EXPECT_FALSE(run.floor_steady());
}

}  // namespace
}  // namespace sparq::cli::roofline
