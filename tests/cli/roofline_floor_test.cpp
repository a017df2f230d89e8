// `sparq roofline`'s memory floor (apps/sparq/roofline_run.hpp): the scattered patterns
// its probes read for each layout and d-major type, and the check that its ceilings come
// from one bandwidth mode (the streaming figures right before and right after the
// scattered patterns must agree within 10% of the larger).
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

// S = 1024 in 256-token blocks, 2 KV heads, d = 128, bf16: 8 blocks, each 1 MiB apart.
FloorGeometry small(KeyLayout layouts, std::size_t d_major_elem) {
  return {.seq_len = 1024,
          .head_dim = 128,
          .kv_heads = 2,
          .batch = 1,
          .block_tokens = 256,
          .elem = 2,
          .d_major_elem = d_major_elem,
          .layouts = layouts,
          .d_major_run_bytes = 4 * 256 * d_major_elem,  // a head's 4 blocks side by side
          .block_stride = 1 << 20};
}

TEST(RooflineFloor, Stage2ReadsTwoRowsPerPositionOrOneFusedRun) {
  // k = 64 positions per head: 2 heads x 64 x (K + V rows of 256 bytes) = 65536 bytes.
  const double bytes = 2.0 * 64 * 2 * 256;
  const auto both = floor_pattern(Phase::stage2, small(KeyLayout::both, 2), bytes);
  ASSERT_TRUE(both);
  EXPECT_EQ(both->run_bytes, 256u);              // one key or value row
  EXPECT_EQ(both->runs_per_group, 32u);          // 65536 / 8 blocks / 256
  EXPECT_EQ(both->group_bytes, 2u * 256 * 256);  // the block's K and V regions
  EXPECT_EQ(both->group_stride_bytes, 1u << 20);
  const auto fused = floor_pattern(Phase::stage2, small(KeyLayout::fused, 2), bytes);
  ASSERT_TRUE(fused);
  EXPECT_EQ(fused->run_bytes, 512u);              // key | value: one run per position
  EXPECT_EQ(fused->runs_per_group, 16u);          // 65536 / 8 blocks / 512
  EXPECT_EQ(fused->group_bytes, 2u * 256 * 256);  // [B][key | value], the same region
  EXPECT_EQ(fused->runs_per_group * fused->run_bytes, both->runs_per_group * both->run_bytes);
  // Every row of every block: a streaming read, no scattered ceiling.
  EXPECT_FALSE(floor_pattern(Phase::stage2, small(KeyLayout::fused, 2), 2.0 * 1024 * 512));
  EXPECT_FALSE(floor_pattern(Phase::stage2, small(KeyLayout::fused, 2), 0.0));
}

TEST(RooflineFloor, Stage1RunsShrinkWithTheInt8Copy) {
  // r = 16 rows of each head's d-major copy: bf16 runs of 4 x 256 x 2 = 2048 bytes.
  const auto same = floor_pattern(Phase::stage1, small(KeyLayout::both, 2), 2.0 * 16 * 2048);
  ASSERT_TRUE(same);
  EXPECT_EQ(same->run_bytes, 2048u);
  EXPECT_EQ(same->runs_per_group, 16u);  // one group (stretch) per head
  EXPECT_EQ(same->group_bytes, 128u * 2048);
  EXPECT_EQ(same->group_stride_bytes, 128u * 2048);
  // int8: runs of 1024 bytes; the profile's bytes include the scales (2 heads x 4 blocks x
  // one line of 16 floats), which round away: 16 runs per group still.
  const auto int8 = floor_pattern(Phase::stage1, small(KeyLayout::fused, 1), 2.0 * 16 * 1024 + 2 * 4 * 64);
  ASSERT_TRUE(int8);
  EXPECT_EQ(int8->run_bytes, 1024u);
  EXPECT_EQ(int8->runs_per_group, 16u);
  EXPECT_EQ(int8->group_bytes, 128u * 1024);
  // Without a measured run length, one block's row: 256 int8 = 256 bytes.
  FloorGeometry g = small(KeyLayout::both, 1);
  g.d_major_run_bytes = 0;
  EXPECT_EQ(floor_pattern(Phase::stage1, g, 1000.0)->run_bytes, 256u);
  // Phases other than the two stages stream.
  EXPECT_FALSE(floor_pattern(Phase::topk, small(KeyLayout::both, 2), 1000.0));
}

// Both tools' default rotation: 4x the last-level cache (all instances), never below
// 256 MiB, capped at 512 MiB (VMs that report the host's L3).
TEST(DefaultWorkingSet, IsFourLlcsWithin256And512MiB) {
  MachineInfo m;
  m.llc_bytes = 32ull << 20;
  m.llc_instances = 1;
  EXPECT_EQ(perf::default_working_set(m), 256ull << 20);  // 128 MiB -> the floor
  m.llc_bytes = 100ull << 20;
  EXPECT_EQ(perf::default_working_set(m), 400ull << 20);
  m.llc_instances = 2;
  EXPECT_EQ(perf::default_working_set(m), 512ull << 20);  // 800 MiB -> the cap
  m.llc_bytes = 0;
  m.llc_instances = 0;  // unknown cache: the floor
  EXPECT_EQ(perf::default_working_set(m), 256ull << 20);
}

}  // namespace
}  // namespace sparq::cli::roofline
