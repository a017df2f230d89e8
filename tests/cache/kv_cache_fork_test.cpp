// Fork (copy-on-write prefix sharing) and truncate (rollback) keep every sequence's
// contents and value mean exactly what a fresh cache with the same tokens would hold.
#include <gtest/gtest.h>

#include "cache_test_util.hpp"
#include "sparq/error.hpp"

namespace sparq {
namespace {

using test::random_floats;

constexpr std::size_t H = 2, d = 8, B = 4;

CacheConfig config(KeyLayout layouts = KeyLayout::both) {
  return {.layers = 2,
          .kv_heads = H,
          .head_dim = d,
          .dtype = DType::bf16,
          .block_tokens = B,
          .capacity_tokens = 256,
          .layouts = layouts};
}

// A fresh cache holding exactly rows [0, n) of k/v in layer 0.
test::LayerDump fresh_dump(const std::vector<float>& k, const std::vector<float>& v, std::size_t n,
                           std::vector<float>* mean) {
  KVCache c(config());
  const SeqId s = c.add_sequence();
  c.append(s, 0, std::span(k).first(n * H * d), std::span(v).first(n * H * d), n);
  const LayerView view = c.view(s, 0);
  mean->assign(view.value_mean, view.value_mean + H * d);
  return test::dump_layer(c, s, 0);
}

void expect_same_as_fresh(const KVCache& c, SeqId s, const std::vector<float>& k, const std::vector<float>& v,
                          std::size_t n, const char* what) {
  std::vector<float> mean;
  const auto expect = fresh_dump(k, v, n, &mean);
  const auto got = test::dump_layer(c, s, 0);
  ASSERT_EQ(c.length(s, 0), n) << what;
  EXPECT_EQ(got.keys, expect.keys) << what;
  EXPECT_EQ(got.values, expect.values) << what;
  const LayerView view = c.view(s, 0);
  for (std::size_t i = 0; i < H * d; ++i) {
    // The sums are formed in a different order after truncation, so allow double
    // rounding of the sum (far below f32 resolution in practice: usually equal).
    EXPECT_NEAR(view.value_mean[i], mean[i], 1e-6f * (1.0f + std::abs(mean[i]))) << what << " i=" << i;
  }
}

TEST(CacheForkTest, ForkSharesBlocksUntilWritten) {
  KVCache c(config());
  const auto k = random_floats(64 * H * d, 1), v = random_floats(64 * H * d, 2);
  const auto k2 = random_floats(64 * H * d, 3), v2 = random_floats(64 * H * d, 4);
  const SeqId a = c.add_sequence();
  c.append(a, 0, std::span(k).first(6 * H * d), std::span(v).first(6 * H * d), 6);  // 1.5 blocks
  const std::size_t used = c.memory_usage().blocks_in_use;
  const SeqId b = c.fork(a);
  EXPECT_EQ(c.memory_usage().blocks_in_use, used) << "a fork must not copy blocks";
  EXPECT_EQ(c.length(b, 0), 6u);

  // b writes into the shared partial block: it gets its own copy, a is unchanged.
  std::vector<float> kb(k.begin(), k.begin() + 6 * H * d), vb(v.begin(), v.begin() + 6 * H * d);
  kb.insert(kb.end(), k2.begin(), k2.begin() + 3 * H * d);
  vb.insert(vb.end(), v2.begin(), v2.begin() + 3 * H * d);
  c.append(b, 0, std::span(k2).first(3 * H * d), std::span(v2).first(3 * H * d), 3);
  expect_same_as_fresh(c, a, k, v, 6, "source after fork write");
  expect_same_as_fresh(c, b, kb, vb, 9, "fork after its own write");
  // The copied partial block and one new block per head.
  EXPECT_EQ(c.memory_usage().blocks_in_use, used + 2 * H);

  // Removing the source keeps the fork's shared blocks alive.
  c.remove_sequence(a);
  expect_same_as_fresh(c, b, kb, vb, 9, "fork after source removed");
}

TEST(CacheForkTest, TruncateThenAppendEqualsFreshCache) {
  KVCache c(config());
  const auto k = random_floats(64 * H * d, 5), v = random_floats(64 * H * d, 6);
  const auto kx = random_floats(64 * H * d, 7), vx = random_floats(64 * H * d, 8);
  const SeqId s = c.add_sequence();
  c.append(s, 0, std::span(k).first(11 * H * d), std::span(v).first(11 * H * d), 11);
  c.append(s, 1, std::span(k).first(11 * H * d), std::span(v).first(11 * H * d), 11);
  c.truncate(s, 4);  // 7 left: back into the middle of the second block
  expect_same_as_fresh(c, s, k, v, 7, "after truncate");
  EXPECT_EQ(c.memory_usage().blocks_in_use, 2 * 2 * H);
  // Append different tokens after the rollback (speculative decoding rejected a draft).
  c.append(s, 0, std::span(kx).first(2 * H * d), std::span(vx).first(2 * H * d), 2);
  std::vector<float> ke(k.begin(), k.begin() + 7 * H * d), ve(v.begin(), v.begin() + 7 * H * d);
  ke.insert(ke.end(), kx.begin(), kx.begin() + 2 * H * d);
  ve.insert(ve.end(), vx.begin(), vx.begin() + 2 * H * d);
  expect_same_as_fresh(c, s, ke, ve, 9, "after truncate and append");
  c.truncate(s, 7);
  EXPECT_EQ(c.length(s, 0), 2u);
  EXPECT_EQ(c.length(s, 1), 0u);
  expect_same_as_fresh(c, s, ke, ve, 2, "after truncating layer 1 to zero");
}

TEST(CacheForkTest, TruncateIntoSharedBlockKeepsBothSequencesExact) {
  for (KeyLayout layouts : {KeyLayout::both, KeyLayout::s_major, KeyLayout::d_major}) {
    KVCache c(config(layouts));
    const auto k = random_floats(64 * H * d, 9), v = random_floats(64 * H * d, 10);
    const auto kx = random_floats(64 * H * d, 11), vx = random_floats(64 * H * d, 12);
    const SeqId a = c.add_sequence();
    for (std::size_t layer : {0, 1})
      c.append(a, layer, std::span(k).first(7 * H * d), std::span(v).first(7 * H * d), 7);
    const SeqId b = c.fork(a);
    c.truncate(a, 2);  // a ends mid-block in a block still shared with b
    c.append(a, 0, std::span(kx).first(3 * H * d), std::span(vx).first(3 * H * d), 3);
    std::vector<float> ke(k.begin(), k.begin() + 5 * H * d), ve(v.begin(), v.begin() + 5 * H * d);
    ke.insert(ke.end(), kx.begin(), kx.begin() + 3 * H * d);
    ve.insert(ve.end(), vx.begin(), vx.begin() + 3 * H * d);
    // The fresh reference cache uses the default layouts; contents must agree anyway.
    expect_same_as_fresh(c, a, ke, ve, 8, "truncated and rewritten source");
    expect_same_as_fresh(c, b, k, v, 7, "untouched fork");
  }
}

}  // namespace
}  // namespace sparq
