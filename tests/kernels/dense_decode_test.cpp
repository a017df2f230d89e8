// Dense decode against the scalar reference (lib/reference) on every compiled ISA the CPU
// runs: f32/f16/bf16 storage (the reference reads the same stored, rounded values, so the
// tolerance is about f32 accumulation alone), MHA/GQA/MQA, d in {64, 80, 96, 128, 256}, S
// around the block and tile widths, the three key layouts, batches, KV-head ranges, lse,
// the causal path, profile accounting and bit-identical results for 1 and 2 threads.
#include <gtest/gtest.h>
#include <oneapi/tbb/task_arena.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernel_test_util.hpp"
#include "reference/reference.hpp"
#include "sparq/decode.hpp"

namespace sparq {
namespace {

using test::IsaTest;

class DenseDecode : public IsaTest {};

// f32 accumulation over the stored values, whatever the storage type: dense decode is the
// baseline every accuracy figure divides by, so its only error is the cache's rounding.
constexpr double kTol = 1e-5;

struct Shape {
  std::size_t q_heads, kv_heads;
};

std::string describe(const CacheConfig& c, std::size_t S, std::size_t q_heads, const std::string& isa) {
  return " S=" + std::to_string(S) + " d=" + std::to_string(c.head_dim) + " B=" + std::to_string(c.block_tokens) +
         " heads=" + std::to_string(q_heads) + "/" + std::to_string(c.kv_heads) +
         " dtype=" + std::string(to_string(c.dtype)) + " layouts=" + std::string(to_string(c.layouts)) + " isa=" + isa;
}

// Runs decode on one sequence of the cache and compares every head (out and lse) with
// reference::dense_decode.
void expect_matches_reference(const KVCache& cache, SeqId seq, std::size_t q_heads, const std::string& isa,
                              std::uint32_t seed, std::size_t kv_begin = 0, std::size_t kv_end = ~std::size_t{0},
                              float q_sigma = 1.0f) {
  const CacheConfig& c = cache.config();
  const std::size_t d = c.head_dim;
  const std::size_t n_kv = std::min(kv_end, c.kv_heads) - kv_begin;
  const std::size_t g = q_heads / c.kv_heads;
  const std::size_t n_q = n_kv * g;
  const auto q = test::normal_floats(n_q * d, seed, q_sigma);
  std::vector<float> out(n_q * d, -7.0f), lse(n_q, -7.0f), alpha(n_q, -7.0f);
  const DecodeItem item{.seq = seq, .q = q, .out = out, .lse = lse, .alpha = alpha};
  decode(cache, 0, Dense{}, {&item, 1}, {.kv_head_begin = kv_begin, .kv_head_end = kv_end});
  const LayerView v = cache.view(seq, 0);
  const auto ref = reference::dense_decode(v, q, kv_begin, kv_begin + n_kv, g, 1.0 / std::sqrt(double(d)));
  const std::string ctx = describe(c, v.length, q_heads, isa);
  const double tol = kTol;
  for (std::size_t h = 0; h < n_q; ++h) {
    const double err = test::rel_error(std::span(out).subspan(h * d, d), std::span(ref.out).subspan(h * d, d));
    EXPECT_LE(err, tol) << "head " << h << ctx;
    EXPECT_NEAR(lse[h], ref.lse[h], tol * std::max(1.0, std::abs(ref.lse[h]))) << "lse head " << h << ctx;
    EXPECT_EQ(alpha[h], 1.0f) << ctx;
  }
}

TEST_P(DenseDecode, MatchesReferenceOverShapes) {
  const std::size_t B = 32;
  const Shape shapes[] = {{4, 4}, {4, 2}, {8, 2}, {8, 1}, {3, 1}};  // MHA, g=2, g=4, g=8 (MQA), MQA odd
  const std::vector<std::size_t> lengths = {1, 7, B - 1, B, B + 1, 1000};
  std::uint32_t seed = 100;
  std::size_t combo = 0;
  for (DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (std::size_t d : {64, 80, 96, 128, 256})
      for (const Shape& sh : shapes) {
        const KeyLayout layouts[] = {KeyLayout::both, KeyLayout::s_major, KeyLayout::d_major, KeyLayout::fused};
        const CacheConfig cfg{.layers = 1,
                              .kv_heads = sh.kv_heads,
                              .head_dim = d,
                              .dtype = dtype,
                              .block_tokens = B,
                              .layouts = layouts[combo++ % 4]};
        auto f = test::make_cache(cfg, lengths, seed);
        for (SeqId s : f.seqs) expect_matches_reference(*f.cache, s, sh.q_heads, isa(), seed++);
        if (HasFailure()) return;
      }
}

// Block sizes that are not multiples of the tile width, smaller than it, and large; every
// layout; odd head_dim (not a multiple of any lane count); peaky softmax (large q).
TEST_P(DenseDecode, MatchesReferenceOverBlockSizesAndLayouts) {
  std::uint32_t seed = 500;
  for (std::size_t B : {1, 5, 13, 16, 17, 256})
    for (KeyLayout layout : {KeyLayout::both, KeyLayout::s_major, KeyLayout::d_major, KeyLayout::fused})
      for (std::size_t d : {72, 128}) {
        const CacheConfig cfg{
            .layers = 1, .kv_heads = 2, .head_dim = d, .dtype = DType::bf16, .block_tokens = B, .layouts = layout};
        auto f = test::make_cache(cfg, {1, 2 * B + 3, 600}, seed);
        for (SeqId s : f.seqs) expect_matches_reference(*f.cache, s, 8, isa(), seed++, 0, ~std::size_t{0}, 4.0f);
        if (HasFailure()) return;
      }
}

TEST_P(DenseDecode, LongSequence) {
  const std::size_t S = 70000;
  for (DType dtype : {DType::bf16, DType::f16}) {
    // One KV head (GQA g = 4) keeps the fill and the reference at ~2 s per dtype.
    const CacheConfig cfg{.layers = 1,
                          .kv_heads = 1,
                          .head_dim = 128,
                          .dtype = dtype,
                          .block_tokens = 256,
                          .layouts = dtype == DType::bf16 ? KeyLayout::s_major : KeyLayout::d_major};
    auto f = test::make_cache(cfg, {S}, 7);
    expect_matches_reference(*f.cache, f.seqs[0], 4, isa(), 9, 0, ~std::size_t{0}, 2.0f);
  }
}

TEST_P(DenseDecode, BatchOfDifferentLengthsAndKvHeadRange) {
  const CacheConfig cfg{.layers = 1, .kv_heads = 4, .head_dim = 64, .dtype = DType::f16, .block_tokens = 64};
  const std::vector<std::size_t> lengths = {1, 3000, 65, 129, 2048};
  auto f = test::make_cache(cfg, lengths, 11);
  const std::size_t g = 2, kv_begin = 1, kv_end = 3, n_q = (kv_end - kv_begin) * g, d = 64;
  std::vector<std::vector<float>> q, out, lse;
  std::vector<DecodeItem> batch;
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    q.push_back(test::normal_floats(n_q * d, 20 + std::uint32_t(i)));
    out.emplace_back(n_q * d);
    lse.emplace_back(n_q);
  }
  for (std::size_t i = 0; i < lengths.size(); ++i)
    batch.push_back({.seq = f.seqs[i], .q = q[i], .out = out[i], .lse = lse[i]});
  decode(*f.cache, 0, Dense{}, batch, {.kv_head_begin = kv_begin, .kv_head_end = kv_end});
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    const auto ref = reference::dense_decode(f.cache->view(f.seqs[i], 0), q[i], kv_begin, kv_end, g, 0.125);
    for (std::size_t h = 0; h < n_q; ++h) {
      EXPECT_LE(test::rel_error(std::span(out[i]).subspan(h * d, d), std::span(ref.out).subspan(h * d, d)), kTol)
          << "item " << i << " S=" << lengths[i] << " head " << h << " isa=" << isa();
      EXPECT_NEAR(lse[i][h], ref.lse[h], kTol * std::max(1.0, std::abs(ref.lse[h])))
          << "item " << i << " isa=" << isa();
    }
  }
}

TEST_P(DenseDecode, ExplicitScale) {
  const CacheConfig cfg{.layers = 1, .kv_heads = 1, .head_dim = 96, .dtype = DType::f32, .block_tokens = 16};
  auto f = test::make_cache(cfg, {300}, 3);
  const auto q = test::normal_floats(2 * 96, 4);
  std::vector<float> out(2 * 96);
  const DecodeItem item{.seq = f.seqs[0], .q = q, .out = out};
  decode(*f.cache, 0, Dense{}, {&item, 1}, {.scale = 0.3f});
  const auto ref = reference::dense_decode(f.cache->view(f.seqs[0], 0), q, 0, 1, 2, 0.3f);
  for (std::size_t h = 0; h < 2; ++h)
    EXPECT_LE(test::rel_error(std::span(out).subspan(h * 96, 96), std::span(ref.out).subspan(h * 96, 96)), kTol)
        << "isa=" << isa();
}

TEST_P(DenseDecode, OneAndTwoThreadsAreBitIdentical) {
  const CacheConfig cfg{.layers = 1, .kv_heads = 2, .head_dim = 128, .dtype = DType::bf16, .block_tokens = 256};
  auto f = test::make_cache(cfg, {20000, 5000}, 5);
  const auto q0 = test::normal_floats(8 * 128, 6), q1 = test::normal_floats(8 * 128, 7);
  auto run = [&](tbb::task_arena* arena) {
    std::vector<float> out(2 * 8 * 128), lse(16);
    const DecodeItem batch[] = {
        {.seq = f.seqs[0], .q = q0, .out = std::span(out).first(1024), .lse = std::span(lse).first(8)},
        {.seq = f.seqs[1], .q = q1, .out = std::span(out).last(1024), .lse = std::span(lse).last(8)}};
    decode(*f.cache, 0, Dense{}, batch, {.arena = arena});
    out.insert(out.end(), lse.begin(), lse.end());
    return out;
  };
  tbb::task_arena one(1), two(2);
  const auto a = run(&one), b = run(&two), c = run(nullptr);
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << "1 vs 2 threads, isa=" << isa();
  EXPECT_EQ(0, std::memcmp(a.data(), c.data(), a.size() * sizeof(float))) << "1 thread vs default arena, isa=" << isa();
}

TEST_P(DenseDecode, CausalMatchesReference) {
  std::uint32_t seed = 40;
  for (DType dtype : {DType::f32, DType::bf16})
    for (std::size_t S : {1, 40, 1100})
      for (std::size_t n_new : {1, 5, 40}) {
        if (n_new > S) continue;
        const CacheConfig cfg{.layers = 1,
                              .kv_heads = 2,
                              .head_dim = 64,
                              .dtype = dtype,
                              .block_tokens = 32,
                              .layouts = S == 40 ? KeyLayout::d_major : KeyLayout::both};
        auto f = test::make_cache(cfg, {S}, seed++);
        const std::size_t n_q = 8, d = 64;
        const auto q = test::normal_floats(n_new * n_q * d, seed++);
        std::vector<float> out(q.size(), -7.0f);
        decode_causal(*f.cache, 0, f.seqs[0], q, out, n_new);
        const auto ref = reference::dense_causal(f.cache->view(f.seqs[0], 0), q, n_new, 0, 2, 4, 0.125);
        for (std::size_t r = 0; r < n_new * n_q; ++r)
          ASSERT_LE(test::rel_error(std::span(out).subspan(r * d, d), std::span(ref.out).subspan(r * d, d)), kTol)
              << "query " << r / n_q << " head " << r % n_q << " S=" << S << " n_new=" << n_new
              << " dtype=" << to_string(dtype) << " isa=" << isa();
      }
}

TEST_P(DenseDecode, ProfileCountsLinesTouched) {
  const CacheConfig cfg{.layers = 1, .kv_heads = 2, .head_dim = 128, .dtype = DType::bf16, .block_tokens = 64};
  auto f = test::make_cache(cfg, {1000}, 8);
  const auto q = test::normal_floats(8 * 128, 9);
  std::vector<float> out(8 * 128);
  const DecodeItem item{.seq = f.seqs[0], .q = q, .out = out};
  Profile p;
  tbb::task_arena two(2);
  decode(*f.cache, 0, Dense{}, {&item, 1}, {.profile = &p, .arena = &two});
  // Each K and V row is 256 bytes, four whole lines: 2 heads * 1000 rows * 2 * 256.
  EXPECT_EQ(p[Phase::dense].bytes_read, 2u * 1000 * 2 * 256);
  EXPECT_EQ(p[Phase::dense].flops, 8u * 1000 * 4 * 128);
  EXPECT_EQ(p[Phase::dense].calls, 1u);
  EXPECT_GT(p[Phase::dense].seconds, 0.0);
  EXPECT_EQ(p.isa, GetParam());
  EXPECT_EQ(p.threads, 2u);
}

// Issue 18.2's case: GQA 8/2, S = 512, d = 128, a bf16 cache, q of sigma 1 and 2. The
// AVX512-BF16 dot-product loops this library had (q and the weights rounded to bf16) were
// 1.9e-2 and 2.9e-2 off exact attention over the same stored values; the bound is 1e-4.
TEST_P(DenseDecode, Bf16CacheGivesExactAttentionOverTheStoredValues) {
  const CacheConfig cfg{.layers = 1, .kv_heads = 2, .head_dim = 128, .dtype = DType::bf16, .block_tokens = 256};
  auto f = test::make_cache(cfg, {512}, 31);
  for (float sigma : {1.0f, 2.0f}) {
    const auto q = test::normal_floats(8 * 128, 32, sigma);
    std::vector<float> out(q.size());
    const DecodeItem item{.seq = f.seqs[0], .q = q, .out = out};
    decode(*f.cache, 0, Dense{}, {&item, 1});
    const auto ref = reference::dense_decode(f.cache->view(f.seqs[0], 0), q, 0, 2, 4, 1.0 / std::sqrt(128.0));
    double worst = 0;
    for (std::size_t h = 0; h < 8; ++h)
      worst = std::max(worst,
                       test::rel_error(std::span(out).subspan(h * 128, 128), std::span(ref.out).subspan(h * 128, 128)));
    EXPECT_LE(worst, 1e-5) << "sigma=" << sigma << " isa=" << isa();
    RecordProperty("worst_rel_error_sigma_" + std::to_string(int(sigma)), std::to_string(worst));
  }
}

SPARQ_INSTANTIATE_FOR_EACH_ISA(DenseDecode);

}  // namespace
}  // namespace sparq
