// Properties of the SparQ reference that DESIGN §1 states: it equals dense attention when
// every position is fetched, r = d gives the exact softmax at temperature sqrt(d), the
// tie rules, the window, GQA shared selection, and independence of the key layout.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "reference/reference.hpp"
#include "test_layer.hpp"

namespace sparq::reference {
namespace {

using testing::LayerSpec;
using testing::random_floats;
using testing::TestLayer;

// |a_i - b_i| <= rel · max_j |b_j| for every i (relative to the vector's scale, so that
// components near zero do not demand more than the arithmetic can give).
void expect_close(const std::vector<double>& a, const std::vector<double>& b, double rel, const std::string& ctx) {
  ASSERT_EQ(a.size(), b.size()) << ctx;
  double scale = 0;
  for (double x : b) scale = std::max(scale, std::abs(x));
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_LE(std::abs(a[i] - b[i]), rel * scale) << ctx << " i=" << i;
}

std::vector<std::uint32_t> iota_positions(std::size_t n, std::size_t first = 0) {
  std::vector<std::uint32_t> p(n);
  std::iota(p.begin(), p.end(), static_cast<std::uint32_t>(first));
  return p;
}

TEST(SparQReference, EqualsDenseWhenKCoversS) {
  for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
    for (std::size_t S : {1u, 5u, 17u}) {
      for (std::size_t g : {1u, 4u}) {
        for (GqaSelection sel : {GqaSelection::shared, GqaSelection::per_head}) {
          const std::size_t H = 2, d = 8, n_q = H * g;
          const LayerSpec spec{.kv_heads = H, .head_dim = d, .block_tokens = 4, .dtype = dt};
          TestLayer layer(spec, random_floats(S * H * d, 1), random_floats(S * H * d, 2), S);
          const std::vector<float> q = random_floats(n_q * d, 3);
          const double scale = 1 / std::sqrt(double(d));
          const Result dense = dense_decode(layer.view(), q, 0, H, g, scale);
          for (std::size_t r : {1u, 3u, 8u}) {
            for (std::size_t k : {S, S + 3}) {
              for (std::size_t l : {0u, 2u, 100u}) {
                for (bool realloc : {false, true}) {
                  const SparQResolved p{.r = r, .k = k, .window = l, .reallocation = realloc, .gqa = sel};
                  const Result sp = sparq_decode(layer.view(), q, 0, H, g, scale, p);
                  const std::string ctx = "dtype=" + std::string(to_string(dt)) + " S=" + std::to_string(S) +
                                          " g=" + std::to_string(g) + " sel=" + std::string(to_string(sel)) +
                                          " r=" + std::to_string(r) + " k=" + std::to_string(k) +
                                          " l=" + std::to_string(l) + " realloc=" + std::to_string(realloc);
                  expect_close(sp.out, dense.out, 1e-12, ctx);
                  expect_close(sp.lse, dense.lse, 1e-12, ctx);
                  for (std::size_t h = 0; h < n_q; ++h) {
                    EXPECT_EQ(sp.alpha[h], 1.0) << ctx;
                    EXPECT_EQ(sp.selected[h], iota_positions(S)) << ctx;
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}

TEST(SparQReference, FullRankApproxScoresAreSoftmaxAtTemperatureSqrtD) {
  const std::size_t S = 13, d = 16;
  const std::vector<float> keys = random_floats(S * d, 4), q = random_floats(d, 5);
  TestLayer layer(LayerSpec{.head_dim = d, .block_tokens = 5}, keys, random_floats(S * d, 6), S);
  const Result res = sparq_decode(layer.view(), q, 0, 1, 1, 0.25, SparQResolved{.r = d, .k = 3, .window = 1});
  // Expected: softmax_j(q·K[j] / sqrt(d)), computed here from the f32 inputs.
  std::vector<double> want(S);
  for (std::size_t j = 0; j < S; ++j) {
    double dot = 0;
    for (std::size_t i = 0; i < d; ++i) dot += double(q[i]) * double(keys[j * d + i]);
    want[j] = std::exp(dot / std::sqrt(double(d)));
  }
  const double z = std::accumulate(want.begin(), want.end(), 0.0);
  for (double& w : want) w /= z;
  expect_close(res.approx_scores[0], want, 1e-12, "r=d");
  EXPECT_EQ(res.components[0], iota_positions(d));
}

TEST(SparQReference, ZeroQueryGivesUniformScoresAndLowestIndices) {
  const std::size_t S = 9, d = 4, k = 5, l = 2;
  const std::vector<float> values = random_floats(S * d, 7);
  TestLayer layer(LayerSpec{.head_dim = d}, random_floats(S * d, 8), values, S);
  const std::vector<float> q(d, 0.0f);
  const Result res = sparq_decode(layer.view(), q, 0, 1, 1, 0.5, SparQResolved{.r = 2, .k = k, .window = l});
  for (double s : res.approx_scores[0]) EXPECT_EQ(s, 1.0 / S);
  EXPECT_EQ(temperature(q, res.components[0]), 0.0);
  // All |q_i| tie: the lowest indices. All ŝ tie: window {7, 8}, then positions 0, 1, 2.
  EXPECT_EQ(res.components[0], (std::vector<std::uint32_t>{0, 1}));
  EXPECT_EQ(res.selected[0], (std::vector<std::uint32_t>{0, 1, 2, 7, 8}));
  EXPECT_NEAR(res.alpha[0], double(k) / S, 1e-15);
  // Exact scores are all 0 too, so y' is the plain mean of the fetched values.
  std::vector<double> want(d, 0.0);
  for (std::uint32_t j : res.selected[0])
    for (std::size_t i = 0; i < d; ++i) want[i] += values[j * d + i] / double(k);
  expect_close(res.out, want, 1e-15, "q=0, no reallocation");
  EXPECT_NEAR(res.lse[0], std::log(double(k)), 1e-15);
}

TEST(SparQReference, TiesGoToLowerIndexAndPosition) {
  // |q| = [1, 3, 3, 1, 3]: r = 2 keeps components 1 and 2 (not 4).
  const std::vector<float> q = {1, -3, 3, -1, 3};
  // Positions 1, 3 and 4 have the same (largest) approximate score; k = 2, l = 0 keeps 1, 3.
  const std::size_t S = 6, d = 5;
  std::vector<float> keys(S * d, 0.0f);
  for (std::size_t j : {1u, 3u, 4u}) keys[j * d + 2] = 1.0f;
  TestLayer layer(LayerSpec{.head_dim = d, .block_tokens = 4}, keys, random_floats(S * d, 9), S);
  const Result res = sparq_decode(layer.view(), q, 0, 1, 1, 0.5, SparQResolved{.r = 2, .k = 2, .window = 0});
  EXPECT_EQ(res.components[0], (std::vector<std::uint32_t>{1, 2}));
  EXPECT_EQ(res.selected[0], (std::vector<std::uint32_t>{1, 3}));
  // The same rule as a building block.
  EXPECT_EQ(top_n(std::vector<double>{2, 5, 5, 1, 5}, 2), (std::vector<std::uint32_t>{1, 2}));
  EXPECT_EQ(top_n(std::vector<double>{0, 0, 0}, 3), (std::vector<std::uint32_t>{0, 1, 2}));
}

TEST(SparQReference, WindowIsAlwaysFetchedAndCountsTowardsK) {
  // ŝ decreasing in j except position 5: the window (last 2) is taken despite its tiny
  // scores, then the 2 largest of the rest (0 and 5), k = 4 in all.
  const std::vector<double> score = {0.30, 0.20, 0.10, 0.05, 0.04, 0.25, 0.03, 0.02, 0.005, 0.005};
  EXPECT_EQ(select_positions(score, 4, 2), (std::vector<std::uint32_t>{0, 5, 8, 9}));
  // A window position with the largest score is not counted twice.
  const std::vector<double> late = {0.1, 0.2, 0.3, 0.4};
  EXPECT_EQ(select_positions(late, 2, 1), (std::vector<std::uint32_t>{2, 3}));
  // l > k: the window is capped at k_eff, i.e. the last k positions whatever the scores.
  EXPECT_EQ(select_positions(score, 3, 10), (std::vector<std::uint32_t>{7, 8, 9}));
  // k > S, l > S: everything.
  EXPECT_EQ(select_positions(late, 9, 7), iota_positions(4));
  // l = 0: pure top-k.
  EXPECT_EQ(select_positions(score, 2, 0), (std::vector<std::uint32_t>{0, 5}));
}

TEST(SparQReference, WindowLargerThanKInDecode) {
  const std::size_t S = 8, d = 4;
  std::vector<float> keys(S * d, 0.0f);
  keys[0] = 20.0f;  // position 0 dominates the scores, yet l > k fetches only the last k
  TestLayer layer(LayerSpec{.head_dim = d}, keys, random_floats(S * d, 10), S);
  const std::vector<float> q = {1, 0, 0, 0};
  const Result res = sparq_decode(layer.view(), q, 0, 1, 1, 0.5, SparQResolved{.r = 1, .k = 3, .window = 5});
  EXPECT_EQ(res.selected[0], (std::vector<std::uint32_t>{5, 6, 7}));
  EXPECT_LT(res.alpha[0], 0.01);  // the fetched positions carry almost no estimated mass
}

TEST(SparQReference, ReallocationMixesInTheMeanValueOfTheRightHead) {
  // y = α·y' + (1 − α)·v̄[kv], with v̄ of each query head's own KV head (here a sub-range
  // [1, 3) of 3 KV heads, g = 2, so an off-by-kv_begin would show).
  const std::size_t H = 3, g = 2, d = 8, S = 23;
  TestLayer layer(LayerSpec{.kv_heads = H, .head_dim = d, .block_tokens = 8, .dtype = DType::bf16},
                  random_floats(S * H * d, 50), random_floats(S * H * d, 51), S);
  const std::size_t kv_begin = 1, kv_end = 3, n_q = (kv_end - kv_begin) * g;
  const std::vector<float> q = random_floats(n_q * d, 52);
  for (GqaSelection sel : {GqaSelection::shared, GqaSelection::per_head}) {
    SparQResolved p{.r = 2, .k = 5, .window = 1, .reallocation = false, .gqa = sel};
    const Result plain = sparq_decode(layer.view(), q, kv_begin, kv_end, g, 0.3, p);
    p.reallocation = true;
    const Result mixed = sparq_decode(layer.view(), q, kv_begin, kv_end, g, 0.3, p);
    EXPECT_EQ(mixed.selected, plain.selected);
    EXPECT_EQ(mixed.alpha, plain.alpha);
    EXPECT_EQ(mixed.lse, plain.lse);
    for (std::size_t h = 0; h < n_q; ++h) {
      const double a = plain.alpha[h];
      EXPECT_GT(a, 0.0);
      EXPECT_LT(a, 1.0);
      const std::vector<double> mean = recomputed_value_mean(layer.view(), kv_begin + h / g);
      for (std::size_t i = 0; i < d; ++i)
        EXPECT_NEAR(mixed.out[h * d + i], a * plain.out[h * d + i] + (1 - a) * mean[i], 1e-7)
            << "sel=" << to_string(sel) << " h=" << h << " i=" << i;
    }
  }
}

TEST(SparQReference, HeadRangeIsASliceOfTheWholeLayer) {
  // A call over KV heads [1, 3) gives exactly the rows of those heads in a call over all.
  const std::size_t H = 4, g = 2, d = 8, S = 9;
  TestLayer layer(LayerSpec{.kv_heads = H, .head_dim = d, .block_tokens = 4}, random_floats(S * H * d, 53),
                  random_floats(S * H * d, 54), S);
  const std::vector<float> q = random_floats(H * g * d, 55);
  const std::span<const float> q_part = std::span(q).subspan(1 * g * d, 2 * g * d);
  const SparQResolved p{.r = 3, .k = 4, .window = 1, .reallocation = true};
  const Result all = sparq_decode(layer.view(), q, 0, H, g, 0.35, p);
  const Result part = sparq_decode(layer.view(), q_part, 1, 3, g, 0.35, p);
  const Result dense_all = dense_decode(layer.view(), q, 0, H, g, 0.35);
  const Result dense_part = dense_decode(layer.view(), q_part, 1, 3, g, 0.35);
  for (std::size_t h = 0; h < 2 * g; ++h) {
    const std::size_t H_all = g + h;  // query head index in the whole-layer call
    EXPECT_EQ(part.selected[h], all.selected[H_all]) << "h=" << h;
    EXPECT_EQ(part.alpha[h], all.alpha[H_all]) << "h=" << h;
    EXPECT_EQ(dense_part.lse[h], dense_all.lse[H_all]) << "h=" << h;
    for (std::size_t i = 0; i < d; ++i) {
      EXPECT_EQ(part.out[h * d + i], all.out[H_all * d + i]) << "h=" << h << " i=" << i;
      EXPECT_EQ(dense_part.out[h * d + i], dense_all.out[H_all * d + i]) << "h=" << h << " i=" << i;
    }
  }
}

}  // namespace
}  // namespace sparq::reference
