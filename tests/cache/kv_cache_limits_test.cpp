// Numeric and size limits of the cache: f32 values that the storage type cannot hold
// are refused (never stored as inf), and sizes that would overflow size_t are refused
// with the error that names the real problem. Each failure leaves the cache unchanged.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "cache_test_util.hpp"
#include "sparq/error.hpp"

namespace sparq {
namespace {

using test::random_floats;

template <class F>
void expect_error(F&& f, ErrorCode code, std::initializer_list<std::string> fragments) {
  try {
    f();
    ADD_FAILURE() << "expected sparq::Error(" << to_string(code) << ")";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const std::string& fragment : fragments)
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
          << "missing '" << fragment << "' in message: " << e.what();
  }
}

struct Overflow {
  DType dtype;
  float too_big;       // the smallest magnitude (or close to it) that rounds to inf
  float largest_kept;  // the largest f32 that still rounds to a finite value
  const char* limit;   // as the message prints the storage's largest finite value
};

class StorageOverflowTest : public ::testing::TestWithParam<Overflow> {};

// A finite f32 that rounds to inf in f16 / bf16 is refused, naming its position, its
// value and the storage limit, for keys and values, append and append_all_layers; the
// largest value that still rounds to a finite one is accepted.
TEST_P(StorageOverflowTest, RefusedWithPositionValueAndLimit) {
  const Overflow o = GetParam();
  constexpr std::size_t L = 2, H = 2, d = 8, n = 3;
  KVCache cache(
      {.layers = L, .kv_heads = H, .head_dim = d, .dtype = o.dtype, .block_tokens = 4, .capacity_tokens = 64});
  const SeqId s = cache.add_sequence();
  const std::vector<float> ok = random_floats(L * n * H * d, 3);
  cache.append(s, 0, std::span(ok).first(n * H * d), std::span(ok).first(n * H * d), n);
  const auto before = test::dump_layer(cache, s, 0);
  const std::size_t blocks = cache.memory_usage().blocks_in_use;

  // token 2, head 1, component 5 of a layer.
  const std::size_t at = (2 * H + 1) * d + 5;
  for (float sign : {1.0f, -1.0f}) {
    std::vector<float> bad(ok.begin(), ok.begin() + n * H * d);
    bad[at] = sign * o.too_big;
    const std::span<const float> good(ok.data(), n * H * d);
    for (bool keys : {true, false}) {
      SCOPED_TRACE(std::string(keys ? "keys" : "values") + " dtype=" + std::string(to_string(o.dtype)));
      expect_error([&] { cache.append(s, 0, keys ? bad : good, keys ? good : bad, n); }, ErrorCode::non_finite_input,
                   {keys ? "keys[token 2, head 1, component 5]" : "values[token 2, head 1, component 5]",
                    std::string(to_string(o.dtype)), o.limit});
      // In layer 1 of an all-layer append.
      std::vector<float> all(ok), good_all(ok);
      all[n * H * d + at] = sign * o.too_big;
      expect_error([&] { cache.append_all_layers(s, keys ? all : good_all, keys ? good_all : all, n); },
                   ErrorCode::non_finite_input, {"[layer 1, token 2, head 1, component 5]", o.limit});
    }
  }
  EXPECT_EQ(cache.length(s, 0), n);
  EXPECT_EQ(cache.length(s, 1), 0u);
  EXPECT_EQ(cache.memory_usage().blocks_in_use, blocks);
  EXPECT_EQ(test::dump_layer(cache, s, 0).keys, before.keys);

  // The largest value that still rounds to a finite one is stored as a finite value.
  std::vector<float> edge(ok.begin(), ok.begin() + n * H * d);
  edge[at] = o.largest_kept;
  cache.append(s, 0, edge, edge, n);
  std::vector<float> row(d);
  cache.read_key(s, 0, 1, n + 2, row);
  EXPECT_TRUE(std::isfinite(row[5])) << row[5];
  cache.read_value(s, 0, 1, n + 2, row);
  EXPECT_TRUE(std::isfinite(row[5])) << row[5];
}

INSTANTIATE_TEST_SUITE_P(
    Dtypes, StorageOverflowTest,
    ::testing::Values(Overflow{DType::f16, 70000.0f, std::nextafter(65520.0f, 0.0f), "65504"},
                      Overflow{DType::f16, 65520.0f, std::nextafter(65520.0f, 0.0f), "65504"},
                      Overflow{DType::bf16, 3.4e38f, std::bit_cast<float>(0x7f7f7fffu), "3.3895314e+38"},
                      Overflow{DType::bf16, std::bit_cast<float>(0x7f7f8000u), std::bit_cast<float>(0x7f7f7fffu),
                               "3.3895314e+38"}),
    [](const auto& info) { return std::string(to_string(info.param.dtype)) + "_" + std::to_string(info.index); });

TEST(StorageOverflowTest, F32StorageTakesEveryFiniteValue) {
  KVCache cache(
      {.layers = 1, .kv_heads = 1, .head_dim = 4, .dtype = DType::f32, .block_tokens = 4, .capacity_tokens = 8});
  const SeqId s = cache.add_sequence();
  const float big = std::numeric_limits<float>::max();
  const std::vector<float> kv{big, -big, 1.0f, 0.0f};
  cache.append(s, 0, kv, kv, 1);
  std::vector<float> row(4);
  cache.read_key(s, 0, 0, 0, row);
  EXPECT_EQ(row, kv);
}

// n_tokens * kv_heads * head_dim wraps to the size of the (empty) spans: a shape
// mismatch, not an attempt to allocate 2^58 blocks.
TEST(SizeOverflowTest, AppendWithWrappingTokenCountIsAShapeMismatch) {
  KVCache cache(
      {.layers = 2, .kv_heads = 2, .head_dim = 8, .dtype = DType::f32, .block_tokens = 4, .capacity_tokens = 64});
  const SeqId s = cache.add_sequence();
  const std::size_t wraps = std::size_t{1} << 60;  // * 2 * 8 = 2^64
  expect_error([&] { cache.append(s, 0, {}, {}, wraps); }, ErrorCode::shape_mismatch,
               {"n_tokens=1152921504606846976", "overflows"});
  expect_error([&] { cache.append(s, 0, {}, {}, wraps + 1); }, ErrorCode::shape_mismatch, {"overflows"});
  EXPECT_EQ(cache.length(s, 0), 0u);
  EXPECT_EQ(cache.memory_usage().blocks_in_use, 0u);
}

TEST(SizeOverflowTest, AllLayerAppendWithWrappingTokenCountIsAShapeMismatch) {
  KVCache cache(
      {.layers = 2, .kv_heads = 2, .head_dim = 8, .dtype = DType::f32, .block_tokens = 4, .capacity_tokens = 64});
  const SeqId s = cache.add_sequence();
  const std::size_t wraps = std::size_t{1} << 59;  // * 2 layers * 2 * 8 = 2^64
  expect_error([&] { cache.append_all_layers(s, {}, {}, wraps); }, ErrorCode::shape_mismatch,
               {"n_tokens=576460752303423488", "overflows"});
  // Per layer it does not overflow, over all layers it does.
  expect_error([&] { cache.append_all_layers(s, {}, {}, std::size_t{1} << 60 >> 1); }, ErrorCode::shape_mismatch,
               {"overflows"});
  EXPECT_EQ(cache.length(s, 0), 0u);
  EXPECT_EQ(cache.memory_usage().blocks_in_use, 0u);
}

// Every field within its documented limit, but the pool's block count
// layers * kv_heads * ceil(capacity_tokens / block_tokens) = 2^12 * 2^12 * 2^40 = 2^64.
TEST(SizeOverflowTest, ConfigWhosePoolSizeOverflowsIsRefused) {
  const CacheConfig c{
      .layers = 4096, .kv_heads = 4096, .head_dim = 8, .block_tokens = 1, .capacity_tokens = std::size_t{1} << 40};
  expect_error([&] { c.validate(); }, ErrorCode::invalid_argument, {"capacity_tokens", "overflows"});
  expect_error([&] { KVCache cache(c); }, ErrorCode::invalid_argument, {"overflows"});
  // Just inside: the same with 2^39 tokens has 2^63 blocks, which size_t holds; the pool's
  // bytes would not, so it is refused too, naming the bytes.
  CacheConfig half = c;
  half.capacity_tokens = std::size_t{1} << 39;
  expect_error([&] { half.validate(); }, ErrorCode::invalid_argument, {"bytes"});
  // A large but representable pool is fine (memory is taken only as blocks are used).
  CacheConfig fine = c;
  fine.capacity_tokens = std::size_t{1} << 20;
  KVCache cache(fine);
  EXPECT_EQ(cache.memory_usage().blocks_capacity, (std::size_t{1} << 44));
}

}  // namespace
}  // namespace sparq
