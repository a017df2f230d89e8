// The serving soak on a short run: every kind of operation happens, refusals happen
// (the pool is small), checks and replays run, and no invariant is violated. Under
// ThreadSanitizer (docs/reliability.md) this is the widest concurrency test of the cache
// and decode.
#include "sparq/tools/soak.hpp"

#include <gtest/gtest.h>

#include "sparq/error.hpp"

namespace sparq {
namespace {

SoakConfig short_soak() {
  SoakConfig c;
  c.duration_s = 3.0;
  c.threads = 3;
  c.layers = 3;
  c.q_heads = 4;
  c.kv_heads = 2;
  c.head_dim = 32;
  c.block_tokens = 8;
  c.capacity_tokens = 256;
  c.max_prefill_tokens = 48;
  c.shared_prompt_tokens = 20;
  c.replay_fraction = 0.2;
  c.check_every_s = 0.25;
  c.drain_every_s = 1.0;
  return c;
}

TEST(SoakTest, ShortSoakKeepsEveryInvariant) {
  const SoakReport r = run_soak(short_soak());
  for (const std::string& m : r.violation_messages) ADD_FAILURE() << m;
  EXPECT_TRUE(r.ok());
  EXPECT_GT(r.operations, 100u);
  std::uint64_t refused = 0;
  for (const SoakOpStats& op : r.ops) {
    EXPECT_GT(op.count, 0u) << op.name;
    EXPECT_LE(op.p50_us, op.p99_us) << op.name;
    refused += op.refused;
  }
  EXPECT_GT(refused, 0u) << "the pool should be too small for the workload";
  EXPECT_GT(r.pauses, 0u);
  EXPECT_GE(r.drains, 2u);  // at least one periodic drain and the final one
  EXPECT_GT(r.replays, 0u);
  EXPECT_LE(r.peak_blocks_in_use, r.pool_blocks);
  EXPECT_EQ(r.blocks_allocated, r.pool_blocks);  // the pressure used every block
}

TEST(SoakTest, RefusesBadConfigurations) {
  auto expect_invalid = [](SoakConfig c, const char* fragment) {
    try {
      (void)run_soak(c);
      ADD_FAILURE() << "accepted: " << fragment;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument) << e.what();
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  SoakConfig c = short_soak();
  c.threads = 0;
  expect_invalid(c, "threads=0");
  c = short_soak();
  c.q_heads = 3;
  expect_invalid(c, "multiple of kv_heads");
  c = short_soak();
  c.replay_fraction = 2.0;
  expect_invalid(c, "replay_fraction");
  c = short_soak();
  c.block_tokens = 0;
  expect_invalid(c, "block_tokens=0");
  c = short_soak();
  c.duration_s = -1.0;
  expect_invalid(c, "duration_s");
}

}  // namespace
}  // namespace sparq
