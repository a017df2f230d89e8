// Cache invariants: both key copies agree, values round-trip, the running value mean
// equals the mean of what is stored, blocks are taken lazily and reused.
#include <gtest/gtest.h>

#include <thread>

#include "cache/element.hpp"
#include "cache_test_util.hpp"
#include "sparq/error.hpp"

namespace sparq {
namespace {

using test::random_floats;

struct Shape {
  DType dtype;
  KeyLayout layouts;
  std::size_t block_tokens;
  std::size_t head_dim;
};

class CacheLayoutTest : public ::testing::TestWithParam<Shape> {};

TEST_P(CacheLayoutTest, StoresRoundedRowsAndBothKeyCopiesAgree) {
  const Shape p = GetParam();
  const std::size_t H = 3, d = p.head_dim, S = 2 * p.block_tokens + 3;
  KVCache c({.layers = 2,
             .kv_heads = H,
             .head_dim = d,
             .dtype = p.dtype,
             .block_tokens = p.block_tokens,
             .capacity_tokens = 4096,
             .layouts = p.layouts});
  const SeqId s = c.add_sequence();
  const auto k = random_floats(S * H * d, 1), v = random_floats(S * H * d, 2);
  // Append in uneven chunks so rows cross block boundaries mid-chunk.
  for (std::size_t at = 0; at < S;) {
    const std::size_t n = std::min<std::size_t>(S - at, at % 2 ? 5 : 1);
    c.append(s, 1, std::span(k).subspan(at * H * d, n * H * d), std::span(v).subspan(at * H * d, n * H * d), n);
    at += n;
  }
  ASSERT_EQ(c.length(s, 1), S);
  ASSERT_EQ(c.length(s, 0), 0u);

  const LayerView view = c.view(s, 1);
  ASSERT_EQ(view.blocks_per_head, (S + p.block_tokens - 1) / p.block_tokens);
  const std::size_t eb = size_of(p.dtype);
  for (std::size_t j = 0; j < S; ++j)
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t i = 0; i < d; ++i) {
        float rounded_k = k[(j * H + h) * d + i], rounded_v = v[(j * H + h) * d + i];
        if (p.dtype == DType::bf16) {
          rounded_k = element::bf16_to_f32(element::f32_to_bf16(rounded_k));
          rounded_v = element::bf16_to_f32(element::f32_to_bf16(rounded_v));
        } else if (p.dtype == DType::f16) {
          rounded_k = element::f16_to_f32(element::f32_to_f16(rounded_k));
          rounded_v = element::f16_to_f32(element::f32_to_f16(rounded_v));
        }
        const std::size_t b = j / p.block_tokens, off = j % p.block_tokens;
        if (has_s_major(p.layouts)) {
          ASSERT_EQ(element::load(view.key_row(h, j), i, p.dtype), rounded_k) << "j=" << j << " h=" << h << " i=" << i;
        }
        if (has_d_major(p.layouts)) {
          ASSERT_EQ(element::load(view.key_block_d_major(h, b) + (i * view.d_major_stride + off) * eb, 0, p.dtype),
                    rounded_k)
              << "d-major copy is not the transpose: j=" << j << " h=" << h << " i=" << i;
        }
        ASSERT_EQ(element::load(view.value_row(h, j), i, p.dtype), rounded_v) << "j=" << j << " h=" << h << " i=" << i;
      }
  for (std::size_t h = 0; h < H; ++h) {
    const auto mean = test::stored_value_mean(c, s, 1, h);
    for (std::size_t i = 0; i < d; ++i)
      ASSERT_EQ(view.value_mean[h * d + i], float(mean[i])) << "h=" << h << " i=" << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, CacheLayoutTest,
    ::testing::Values(Shape{DType::f32, KeyLayout::both, 16, 8}, Shape{DType::bf16, KeyLayout::both, 16, 64},
                      Shape{DType::f16, KeyLayout::both, 7, 80}, Shape{DType::f32, KeyLayout::s_major, 16, 8},
                      Shape{DType::bf16, KeyLayout::d_major, 5, 96}, Shape{DType::f16, KeyLayout::s_major, 1, 4}));

TEST(CacheTest, MemoryIsTakenAsBlocksAreUsedAndReusedAfterRemove) {
  const std::size_t H = 2, d = 16, B = 8;
  KVCache c({.layers = 1, .kv_heads = H, .head_dim = d, .dtype = DType::f32, .block_tokens = B, .capacity_tokens = 64});
  EXPECT_EQ(c.memory_usage().blocks_allocated, 0u);
  EXPECT_EQ(c.memory_usage().blocks_capacity, 64 / B * H);
  const SeqId a = c.add_sequence();
  const auto kv = random_floats(B * H * d, 3);
  c.append(a, 0, kv, kv, B);
  EXPECT_EQ(c.memory_usage().blocks_in_use, H);
  c.append(a, 0, std::span(kv).first(H * d), std::span(kv).first(H * d), 1);
  MemoryUsage m = c.memory_usage();
  EXPECT_EQ(m.blocks_in_use, 2 * H);
  EXPECT_EQ(m.blocks_allocated, 2 * H);
  EXPECT_EQ(m.k_s_major, m.values);
  EXPECT_EQ(m.k_d_major, m.values);
  EXPECT_GE(m.values, 2 * H * B * d * 4);
  c.remove_sequence(a);
  EXPECT_FALSE(c.contains(a));
  EXPECT_EQ(c.memory_usage().blocks_in_use, 0u);
  EXPECT_EQ(c.free_blocks(), 64 / B * H);
  // A new sequence reuses the freed blocks instead of taking new memory.
  const SeqId b = c.add_sequence();
  c.append(b, 0, kv, kv, B);
  EXPECT_EQ(c.memory_usage().blocks_allocated, 2 * H);
  EXPECT_NE(a, b);
}

TEST(CacheTest, SMajorOnlyLayoutHasNoDMajorMemory) {
  KVCache c({.layers = 1,
             .kv_heads = 1,
             .head_dim = 64,
             .dtype = DType::bf16,
             .block_tokens = 256,
             .capacity_tokens = 1024,
             .layouts = KeyLayout::s_major});
  const SeqId s = c.add_sequence();
  const auto kv = random_floats(64, 4);
  c.append(s, 0, kv, kv, 1);
  const MemoryUsage m = c.memory_usage();
  EXPECT_EQ(m.k_d_major, 0u);
  EXPECT_EQ(m.k_s_major, 256u * 64 * 2);
  EXPECT_EQ(c.view(s, 0).d_major_blocks, nullptr);
}

// Dense decode streams S-major K then V of each block: they must be one contiguous range,
// and the d-major copy must not sit in it or between blocks: its rows live in the slab's
// d-major area (which starts on a page), clear of every block.
TEST(CacheTest, BlockRegionsPutDenseStreamsSideBySide) {
  for (const KeyLayout layouts : {KeyLayout::s_major, KeyLayout::d_major, KeyLayout::both})
    for (const DType dt : {DType::f32, DType::bf16}) {
      KVCache c({.layers = 1,
                 .kv_heads = 2,
                 .head_dim = 80,
                 .dtype = dt,
                 .block_tokens = 48,
                 .capacity_tokens = 96,
                 .layouts = layouts});
      const SeqId s = c.add_sequence();
      const auto kv = random_floats(2 * 80, 5);
      c.append(s, 0, kv, kv, 1);
      const LayerView v = c.view(s, 0);
      const std::size_t region = 48 * 80 * size_of(dt);
      const std::string ctx = std::string(to_string(layouts)) + " " + std::string(to_string(dt));
      if (has_s_major(layouts)) {
        EXPECT_EQ(v.v_offset, v.k_s_major_offset + region) << ctx;
      }
      EXPECT_EQ(v.d_major_blocks == nullptr, !has_d_major(layouts)) << ctx;
      if (has_d_major(layouts))
        for (std::size_t h = 0; h < 2; ++h) {
          const auto copy = reinterpret_cast<std::uintptr_t>(v.key_block_d_major(h, 0));
          EXPECT_EQ(copy % 4096, 0u) << ctx << ": a slab's first block";
          EXPECT_GE(v.d_major_stride, 48u) << ctx;
          for (std::size_t i = 0; i < 80; ++i) {
            const std::uintptr_t row = copy + i * v.d_major_stride * size_of(dt), end = row + 48 * size_of(dt);
            for (std::size_t g = 0; g < 2; ++g) {
              const auto blk = reinterpret_cast<std::uintptr_t>(v.block(g, 0));
              ASSERT_TRUE(end <= blk || row >= blk + v.block_data_bytes)
                  << ctx << " h=" << h << " g=" << g << " i=" << i;
            }
          }
        }
      EXPECT_EQ(v.block_data_bytes, v.v_offset + region) << ctx;
      EXPECT_EQ(v.k_s_major_offset == LayerView::kNoRegion, !has_s_major(layouts)) << ctx;
    }
}

// A KV head's consecutive blocks sit back to back (their d-major copies and metadata
// live elsewhere), so dense decode streams one sequence's S-major keys and values
// without a break except where a slab (up to 8 MiB of blocks and copies) ends; the
// d-major copy and metadata found from each block's address stay right across slabs,
// truncates and forks (the value means and the copies' contents say so).
class CacheStreamTest : public ::testing::TestWithParam<KeyLayout> {};

TEST_P(CacheStreamTest, BlocksOfAHeadFormOneStreamAndKeepTheirCopiesAndMetadataAcrossSlabs) {
  const KeyLayout layouts = GetParam();
  const std::size_t H = 2, d = 128, B = 256, S = 100 * B + 37;  // 101 blocks of 128 KiB per head
  KVCache c({.layers = 1,
             .kv_heads = H,
             .head_dim = d,
             .dtype = DType::bf16,
             .block_tokens = B,
             .capacity_tokens = 2 * S,
             .layouts = layouts});
  const SeqId s = c.add_sequence();
  const auto kv = random_floats(S * H * d, 11);
  c.append(s, 0, kv, kv, S);
  const LayerView v = c.view(s, 0);
  EXPECT_EQ(v.k_s_major_offset, 0u);
  EXPECT_EQ(v.block_data_bytes, 2 * B * d * 2);
  // 12.6 MiB of blocks per head, 18.9 MiB with the d-major copies: more than one slab.
  const std::size_t max_breaks = has_d_major(layouts) ? 3 : 2;
  for (std::size_t h = 0; h < H; ++h) {
    std::size_t breaks = 0;
    for (std::size_t b = 0; b + 1 < v.blocks_per_head; ++b)
      breaks += v.block(h, b + 1) != v.block(h, b) + v.block_data_bytes;
    EXPECT_GE(breaks, 1u) << "h=" << h;
    EXPECT_LE(breaks, max_breaks) << "h=" << h;
    if (!has_d_major(layouts)) continue;
    // ... and within a slab each component of consecutive blocks is one run (stage 1
    // reads r long runs); the same slab breaks, and none elsewhere.
    std::size_t copy_breaks = 0;
    for (std::size_t b = 0; b + 1 < v.blocks_per_head; ++b) {
      const bool next_slab = v.block(h, b + 1) != v.block(h, b) + v.block_data_bytes;
      const bool adjacent = v.key_block_d_major(h, b + 1) == v.key_block_d_major(h, b) + B * 2;
      EXPECT_NE(adjacent, next_slab) << "h=" << h << " b=" << b;
      copy_breaks += !adjacent;
    }
    EXPECT_EQ(copy_breaks, breaks) << "h=" << h;
  }
  const auto expect_exact_means = [&](SeqId q, const char* when) {
    const LayerView w = c.view(q, 0);
    for (std::size_t h = 0; h < H; ++h) {
      const auto mean = test::stored_value_mean(c, q, 0, h);
      for (std::size_t i = 0; i < d; ++i)
        ASSERT_EQ(w.value_mean[h * d + i], float(mean[i])) << when << " h=" << h << " i=" << i;
    }
    if (!has_d_major(layouts)) return;
    // Every stored key's d-major element equals its S-major one.
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t j = 0; j < w.length; ++j)
        for (std::size_t i = 0; i < d; i += 37)
          ASSERT_EQ(element::load(w.key_d_major(h, j, i), 0, DType::bf16),
                    element::load(w.key_row(h, j), i, DType::bf16))
              << when << " h=" << h << " j=" << j << " i=" << i;
  };
  expect_exact_means(s, "after the append");
  c.truncate(s, 30 * B + 5);  // the sum is rebuilt from each block's own sum
  expect_exact_means(s, "after a truncate");
  const SeqId f = c.fork(s);
  c.append(f, 0, std::span(kv).first(9 * H * d), std::span(kv).first(9 * H * d), 9);  // copies the shared last block
  expect_exact_means(f, "after a fork and an append");
  expect_exact_means(s, "in the fork's source");
}

INSTANTIATE_TEST_SUITE_P(Layouts, CacheStreamTest, ::testing::Values(KeyLayout::s_major, KeyLayout::both),
                         [](const auto& info) { return info.param == KeyLayout::both ? "both" : "s_major"; });

TEST(CacheTest, ValueMeanStaysExactOverLongSequences) {
  // Many rows with a large common offset: a float running sum would drift, the
  // double sum of the stored values does not.
  const std::size_t d = 4, S = 100000;
  KVCache c(
      {.layers = 1, .kv_heads = 1, .head_dim = d, .dtype = DType::f32, .block_tokens = 256, .capacity_tokens = S});
  const SeqId s = c.add_sequence();
  auto v = random_floats(S * d, 5);
  for (auto& x : v) x += 1000.0f;
  c.append(s, 0, v, v, S);
  const auto mean = test::stored_value_mean(c, s, 0, 0);
  for (std::size_t i = 0; i < d; ++i) EXPECT_EQ(c.view(s, 0).value_mean[i], float(mean[i])) << "i=" << i;
}

TEST(CacheTest, ConcurrentAppendsToDifferentSequences) {
  const std::size_t H = 2, d = 32, per_thread = 300;
  KVCache c({.layers = 2,
             .kv_heads = H,
             .head_dim = d,
             .dtype = DType::bf16,
             .block_tokens = 16,
             .capacity_tokens = 4 * per_thread + 64});
  std::vector<SeqId> ids;
  for (int t = 0; t < 4; ++t) ids.push_back(c.add_sequence());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      const auto kv = random_floats(H * d, 100 + t);
      for (std::size_t i = 0; i < per_thread; ++i)
        for (std::size_t l = 0; l < 2; ++l) c.append(ids[t], l, kv, kv, 1);
    });
  for (auto& th : threads) th.join();
  std::vector<float> row(d);
  for (int t = 0; t < 4; ++t) {
    const auto kv = random_floats(H * d, 100 + t);
    ASSERT_EQ(c.length(ids[t], 1), per_thread);
    c.read_key(ids[t], 1, 1, per_thread - 1, row);
    for (std::size_t i = 0; i < d; ++i)
      ASSERT_EQ(row[i], element::bf16_to_f32(element::f32_to_bf16(kv[d + i]))) << "t=" << t << " i=" << i;
  }
  EXPECT_EQ(c.memory_usage().blocks_in_use, 4 * 2 * H * ((per_thread + 15) / 16));
}

TEST(CacheTest, AppendAllLayersWritesEachLayer) {
  const std::size_t L = 3, H = 2, d = 8, n = 5;
  KVCache c({.layers = L, .kv_heads = H, .head_dim = d, .dtype = DType::f32, .block_tokens = 4, .capacity_tokens = 64});
  const SeqId s = c.add_sequence();
  const auto k = random_floats(L * n * H * d, 6), v = random_floats(L * n * H * d, 7);
  c.append_all_layers(s, k, v, n);
  std::vector<float> row(d);
  for (std::size_t l = 0; l < L; ++l) {
    ASSERT_EQ(c.length(s, l), n);
    c.read_value(s, l, 1, 3, row);
    for (std::size_t i = 0; i < d; ++i) ASSERT_EQ(row[i], v[((l * n + 3) * H + 1) * d + i]) << "l=" << l;
  }
}

}  // namespace
}  // namespace sparq
