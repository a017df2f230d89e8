// Every public cache method rejects bad input with a named sparq::Error and leaves the
// cache exactly as it was.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "cache_test_util.hpp"
#include "sparq/error.hpp"

namespace sparq {
namespace {

using test::random_floats;

constexpr std::size_t H = 2, d = 8, B = 4;

template <class F>
void expect_error(F&& f, ErrorCode code, const std::string& fragment) {
  try {
    f();
    FAIL() << "expected sparq::Error(" << to_string(code) << ")";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << "message: " << e.what();
  }
}

class CacheErrorTest : public ::testing::Test {
 protected:
  KVCache cache{
      {.layers = 2, .kv_heads = H, .head_dim = d, .dtype = DType::f16, .block_tokens = B, .capacity_tokens = 12}};
  SeqId seq = cache.add_sequence();
  std::vector<float> kv = random_floats(32 * H * d, 1);

  void SetUp() override { cache.append(seq, 0, std::span(kv).first(5 * H * d), std::span(kv).first(5 * H * d), 5); }
  void expect_unchanged(std::size_t blocks_in_use = 2 * H) {
    EXPECT_EQ(cache.length(seq, 0), 5u);
    EXPECT_EQ(cache.length(seq, 1), 0u);
    EXPECT_EQ(cache.memory_usage().blocks_in_use, blocks_in_use);
    const auto dump = test::dump_layer(cache, seq, 0);
    KVCache fresh(cache.config());
    const SeqId s = fresh.add_sequence();
    fresh.append(s, 0, std::span(kv).first(5 * H * d), std::span(kv).first(5 * H * d), 5);
    EXPECT_EQ(dump.keys, test::dump_layer(fresh, s, 0).keys);
    EXPECT_EQ(std::vector<float>(cache.view(seq, 0).value_mean, cache.view(seq, 0).value_mean + H * d),
              std::vector<float>(fresh.view(s, 0).value_mean, fresh.view(s, 0).value_mean + H * d));
  }
};

TEST_F(CacheErrorTest, CapacityExhaustedChangesNothing) {
  // Capacity 12 tokens = 3 blocks per (layer, head) = 12 blocks in the pool; layer 0
  // uses 4, so 25 more tokens (6 more blocks per head) cannot fit.
  expect_error([&] { cache.append(seq, 0, std::span(kv).first(25 * H * d), std::span(kv).first(25 * H * d), 25); },
               ErrorCode::capacity_exhausted, "blocks");
  expect_unchanged();
  // All-layer appends are all or nothing too.
  std::vector<float> two_layers(2 * 12 * H * d, 0.5f);
  const SeqId other = cache.add_sequence();
  cache.append(other, 1, std::span(kv).first(8 * H * d), std::span(kv).first(8 * H * d), 8);
  expect_error([&] { cache.append_all_layers(seq, two_layers, two_layers, 12); }, ErrorCode::capacity_exhausted,
               "free");
  expect_unchanged(4 * H);
}

TEST_F(CacheErrorTest, WrongSizesNonFiniteAndBadLayer) {
  expect_error([&] { cache.append(seq, 0, std::span(kv).first(H * d - 1), std::span(kv).first(H * d), 1); },
               ErrorCode::shape_mismatch, "keys has 15 floats");
  expect_error([&] { cache.append(seq, 0, std::span(kv).first(H * d), std::span(kv).first(2 * H * d), 1); },
               ErrorCode::shape_mismatch, "values");
  expect_error([&] { cache.append(seq, 2, std::span(kv).first(H * d), std::span(kv).first(H * d), 1); },
               ErrorCode::invalid_argument, "layer=2");
  std::vector<float> bad(kv.begin(), kv.begin() + H * d);
  bad[3] = std::numeric_limits<float>::quiet_NaN();
  expect_error([&] { cache.append(seq, 0, bad, std::span(kv).first(H * d), 1); }, ErrorCode::non_finite_input,
               "keys[token 0, head 0, component 3] is NaN");
  bad[3] = std::numeric_limits<float>::infinity();
  expect_error([&] { cache.append(seq, 0, std::span(kv).first(H * d), bad, 1); }, ErrorCode::non_finite_input,
               "values[token 0, head 0, component 3] is infinite");
  expect_unchanged();
}

TEST_F(CacheErrorTest, UnknownSequenceEverywhere) {
  const SeqId gone = cache.add_sequence();
  cache.remove_sequence(gone);
  std::vector<float> row(d);
  const std::span<const float> one(kv.data(), H * d);
  expect_error([&] { cache.append(gone, 0, one, one, 1); }, ErrorCode::unknown_sequence, "not in the cache");
  expect_error([&] { cache.remove_sequence(gone); }, ErrorCode::unknown_sequence, "sequence");
  expect_error([&] { cache.truncate(gone, 1); }, ErrorCode::unknown_sequence, "sequence");
  expect_error([&] { (void)cache.fork(gone); }, ErrorCode::unknown_sequence, "sequence");
  expect_error([&] { (void)cache.length(gone, 0); }, ErrorCode::unknown_sequence, "sequence");
  expect_error([&] { (void)cache.view(gone, 0); }, ErrorCode::unknown_sequence, "sequence");
  expect_error([&] { cache.read_key(gone, 0, 0, 0, row); }, ErrorCode::unknown_sequence, "sequence");
  expect_error([&] { (void)cache.lock_for_read(gone); }, ErrorCode::unknown_sequence, "sequence");
  expect_unchanged();
}

TEST_F(CacheErrorTest, TruncateAndReadOutOfRange) {
  std::vector<float> row(d), short_row(d - 1);
  expect_error([&] { cache.truncate(seq, 1); }, ErrorCode::invalid_argument, "shortest layer");  // layer 1 is empty
  expect_error([&] { cache.read_value(seq, 0, 0, 5, row); }, ErrorCode::invalid_argument, "pos=5");
  expect_error([&] { cache.read_value(seq, 0, H, 0, row); }, ErrorCode::invalid_argument, "head=2");
  expect_error([&] { cache.read_value(seq, 0, 0, 0, short_row); }, ErrorCode::shape_mismatch, "head_dim=8");
  expect_unchanged();
}

TEST_F(CacheErrorTest, WritersAreRefusedWhileASequenceIsRead) {
  {
    auto reading = cache.lock_for_read(seq);
    const std::span<const float> one(kv.data(), H * d);
    expect_error([&] { cache.append(seq, 0, one, one, 1); }, ErrorCode::concurrent_use, "being read");
    expect_error([&] { cache.truncate(seq, 1); }, ErrorCode::concurrent_use, "being read");
    expect_error([&] { cache.remove_sequence(seq); }, ErrorCode::concurrent_use, "another thread");
    auto second_reader = cache.lock_for_read(seq);  // readers do not exclude each other
  }
  expect_unchanged();
  cache.truncate(seq, 0);  // and once the readers are gone, writers proceed
}

TEST(CacheConfigTest, RejectsZeroAndAbsurdSizes) {
  expect_error([] { KVCache c({.layers = 0}); }, ErrorCode::invalid_argument, "layers=0");
  expect_error([] { KVCache c({.kv_heads = 0}); }, ErrorCode::invalid_argument, "kv_heads=0");
  expect_error([] { KVCache c({.head_dim = 0}); }, ErrorCode::invalid_argument, "head_dim=0");
  expect_error([] { KVCache c({.block_tokens = 0}); }, ErrorCode::invalid_argument, "block_tokens=0");
  expect_error([] { KVCache c({.capacity_tokens = 0}); }, ErrorCode::invalid_argument, "capacity_tokens=0");
  expect_error([] { KVCache c({.head_dim = std::size_t{1} << 20}); }, ErrorCode::invalid_argument, "head_dim=1048576");
  expect_error([] { ModelShape{.q_heads = 6, .kv_heads = 4}.validate(); }, ErrorCode::shape_mismatch, "not a multiple");
}

}  // namespace
}  // namespace sparq
