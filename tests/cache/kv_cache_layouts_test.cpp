// The fused layout (each position's key and value side by side) and the int8 d-major
// copy (per-block scales): rows round-trip, the copies agree with the exact keys through
// uneven appends, copy-on-write, truncate and re-append, memory is counted by part, and
// configurations that cannot work are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "cache/element.hpp"
#include "cache_test_util.hpp"
#include "reference/reference.hpp"
#include "sparq/error.hpp"

namespace sparq {
namespace {

using test::random_floats;

constexpr std::size_t kH = 3, kD = 80, kB = 16;

KVCache make(KeyLayout layouts, DMajorType t, DType dtype = DType::bf16) {
  return KVCache({.layers = 1,
                  .kv_heads = kH,
                  .head_dim = kD,
                  .dtype = dtype,
                  .block_tokens = kB,
                  .capacity_tokens = 4096,
                  .layouts = layouts,
                  .d_major_type = t});
}

// Appends S tokens in uneven chunks (rows cross block ends mid-chunk), keys
// growing in magnitude along the sequence so that int8 scales must grow (and requantize)
// inside blocks.
void append_uneven(KVCache& c, SeqId s, std::size_t S, std::uint32_t seed, std::size_t from = 0) {
  auto k = random_floats(S * kH * kD, seed), v = random_floats(S * kH * kD, seed + 1);
  for (std::size_t j = 0; j < S; ++j)
    for (std::size_t x = 0; x < kH * kD; ++x) k[j * kH * kD + x] *= 1.0f + float(from + j) / 8.0f;
  for (std::size_t at = 0; at < S;) {
    const std::size_t n = std::min<std::size_t>(S - at, at % 3 ? 5 : 1);
    c.append(s, 0, std::span(k).subspan(at * kH * kD, n * kH * kD), std::span(v).subspan(at * kH * kD, n * kH * kD), n);
    at += n;
  }
}

TEST(FusedLayout, KeyAndValueOfAPositionAreOneRun) {
  for (DType dt : {DType::f32, DType::f16, DType::bf16}) {
    KVCache c = make(KeyLayout::fused, DMajorType::same, dt);
    const SeqId s = c.add_sequence();
    append_uneven(c, s, 3 * kB + 5, 1);
    const LayerView v = c.view(s, 0);
    const std::size_t e = size_of(dt);
    EXPECT_EQ(v.row_stride, 2 * kD);
    EXPECT_EQ(v.k_s_major_offset, 0u);
    for (std::size_t h = 0; h < kH; ++h)
      for (std::size_t j = 0; j < v.length; ++j) {
        ASSERT_EQ(v.value_row(h, j), v.key_row(h, j) + kD * e) << "h=" << h << " j=" << j;
        if (j % kB) {
          ASSERT_EQ(v.key_row(h, j), v.key_row(h, j - 1) + 2 * kD * e) << "h=" << h << " j=" << j;
        }
      }
    EXPECT_TRUE(reference::key_copies_agree(v)) << to_string(dt);
    // Rows read back equal the rounded inputs (read_key/read_value go through the view).
    std::vector<float> row(kD);
    c.read_value(s, 0, 2, 7, row);
    std::vector<float> want(kD);
    for (std::size_t i = 0; i < kD; ++i) want[i] = float(reference::value(v, 2, 7, i));
    EXPECT_EQ(row, want);
    const MemoryUsage m = c.memory_usage();
    EXPECT_EQ(m.k_s_major, m.values);
    EXPECT_EQ(m.k_s_major, m.blocks_allocated * kB * kD * e);
    EXPECT_EQ(m.k_d_major, m.k_s_major);
  }
}

TEST(Int8DMajorCopy, AgreesWithTheExactKeysThroughAppendsForksAndTruncates) {
  for (KeyLayout layouts : {KeyLayout::both, KeyLayout::fused})
    for (DType dt : {DType::f32, DType::bf16}) {
      const std::string ctx = std::string(to_string(layouts)) + " " + std::string(to_string(dt));
      KVCache c = make(layouts, DMajorType::int8, dt);
      const SeqId s = c.add_sequence();
      append_uneven(c, s, 2 * kB + 7, 3);
      EXPECT_TRUE(reference::key_copies_agree(c.view(s, 0))) << ctx;
      // A fork shares the partly filled last block; appending to it copies the block,
      // scales and all, and grows the copy's scales without touching the original.
      const SeqId f = c.fork(s);
      append_uneven(c, f, 9, 5, 2 * kB + 7);
      EXPECT_TRUE(reference::key_copies_agree(c.view(f, 0))) << ctx;
      EXPECT_TRUE(reference::key_copies_agree(c.view(s, 0))) << ctx;
      // Truncate into a block, then append larger keys there: in-place requantization.
      c.truncate(s, 10);
      append_uneven(c, s, 12, 7, 100);
      const LayerView v = c.view(s, 0);
      EXPECT_TRUE(reference::key_copies_agree(v)) << ctx;
      // The scale of each (block, component) is the absmax of its rows / 127, or more
      // (rows truncated away may have set it), and dequantized keys are within half of it.
      double worst = 0;
      for (std::size_t h = 0; h < kH; ++h)
        for (std::size_t j = 0; j < v.length; ++j)
          for (std::size_t i = 0; i < kD; ++i) {
            const double scale = v.d_major_scale(h, j / kB)[i];
            worst = std::max(worst, std::abs(reference::approx_key(v, h, j, i) - reference::key(v, h, j, i)) / scale);
          }
      EXPECT_LE(worst, 0.5 + 1e-6) << ctx;
      EXPECT_GT(worst, 0.3) << ctx << ": keys are not exact multiples of their scales";
      const MemoryUsage m = c.memory_usage();
      EXPECT_EQ(m.k_d_major, m.blocks_allocated * kD * kB) << ctx << ": one byte an element";
    }
}

TEST(Int8DMajorCopy, NeedsTheExactKeysBesideIt) {
  for (KeyLayout layouts : {KeyLayout::s_major, KeyLayout::d_major}) {
    try {
      (void)make(layouts, DMajorType::int8);
      ADD_FAILURE() << "accepted int8 with " << to_string(layouts);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("d_major_type=int8"), std::string::npos) << e.what();
    }
  }
  CacheConfig bad;
  bad.d_major_type = static_cast<DMajorType>(7);
  EXPECT_THROW(bad.validate(), Error);
}

TEST(Int8DMajorCopy, ZeroKeysQuantizeToZero) {
  KVCache c = make(KeyLayout::both, DMajorType::int8);
  const SeqId s = c.add_sequence();
  const std::vector<float> zeros(kH * kD, 0.0f), v = random_floats(kH * kD, 9);
  c.append(s, 0, zeros, v, 1);
  const LayerView view = c.view(s, 0);
  for (std::size_t h = 0; h < kH; ++h)
    for (std::size_t i = 0; i < kD; ++i) {
      EXPECT_EQ(view.d_major_scale(h, 0)[i], 0.0f);
      EXPECT_EQ(reference::approx_key(view, h, 0, i), 0.0);
    }
}

}  // namespace
}  // namespace sparq
