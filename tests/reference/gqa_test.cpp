// GQA selection in the SparQ reference: shared selection (one i1 and i2 per KV head from
// the group sums) against per-head selection (the paper's algorithm per query head).
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

// g = 4 heads, d = 4, S = 6, r = d (so τ = sqrt(d) = 2 for every head). Head h has
// q_h = 2·e_h. Position h (< 4) has K = 3·e_h: only head h likes it (logit 3). Position 4
// has K = [2, 2, 2, 2]: every head likes it moderately (logit 2). Positions 5: K = 0.
// Per head, Z = e^3 + e^2 + 4 and ŝ_h = [.., e^3/Z at h, .., e^2/Z at 4, 1/Z elsewhere].
// Group sums: position h < 4 → (e^3 + 3)/Z ≈ 23.1/Z; position 4 → 4e^2/Z ≈ 29.6/Z.
// So with k = 1, l = 0 shared selection fetches position 4, per-head fetches h.
class GqaFourHeads : public ::testing::Test {
 protected:
  static constexpr std::size_t g = 4, d = 4, S = 6;
  static std::vector<float> keys() {
    std::vector<float> k(S * d, 0.0f);
    for (std::size_t h = 0; h < 4; ++h) k[h * d + h] = 3.0f;
    for (std::size_t i = 0; i < d; ++i) k[4 * d + i] = 2.0f;
    return k;
  }
  static std::vector<float> values() { return random_floats(S * d, 11); }
  static std::vector<float> queries() {
    std::vector<float> q(g * d, 0.0f);
    for (std::size_t h = 0; h < g; ++h) q[h * d + h] = 2.0f;
    return q;
  }
  TestLayer layer{LayerSpec{.head_dim = d, .block_tokens = 4}, keys(), values(), S};
};

TEST_F(GqaFourHeads, SharedSelectionTakesTopOfSummedScores) {
  const SparQResolved p{.r = d, .k = 1, .window = 0, .reallocation = true, .gqa = GqaSelection::shared};
  const Result res = sparq_decode(layer.view(), queries(), 0, 1, g, 0.5, p);
  const double Z = std::exp(3.0) + std::exp(2.0) + 4;
  for (std::size_t h = 0; h < g; ++h) {
    EXPECT_EQ(res.selected[h], (std::vector<std::uint32_t>{4})) << "h=" << h;
    EXPECT_NEAR(res.approx_scores[h][h], std::exp(3.0) / Z, 1e-15) << "h=" << h;
    EXPECT_NEAR(res.alpha[h], std::exp(2.0) / Z, 1e-15) << "h=" << h;  // each head's own ŝ_h[4]
  }
}

TEST_F(GqaFourHeads, PerHeadSelectionTakesEachHeadsTop) {
  const SparQResolved p{.r = d, .k = 1, .window = 0, .reallocation = true, .gqa = GqaSelection::per_head};
  const Result res = sparq_decode(layer.view(), queries(), 0, 1, g, 0.5, p);
  const double Z = std::exp(3.0) + std::exp(2.0) + 4;
  for (std::size_t h = 0; h < g; ++h) {
    EXPECT_EQ(res.selected[h], (std::vector<std::uint32_t>{std::uint32_t(h)})) << "h=" << h;
    EXPECT_NEAR(res.alpha[h], std::exp(3.0) / Z, 1e-15) << "h=" << h;
  }
}

TEST(GqaSharedSelection, ComponentsComeFromTheGroupSumOfMagnitudes) {
  // g = 3, r = 1: head 0 alone would keep component 0, but Σ_h|q_h| = [2, 0, 0, 3] keeps 3.
  // Head 0 then has Σ|q_0[i1]| = 0, so its ŝ is uniform.
  const std::size_t d = 4, S = 5;
  TestLayer layer(LayerSpec{.head_dim = d}, random_floats(S * d, 12), random_floats(S * d, 13), S);
  const std::vector<float> q = {2, 0, 0, 0, /**/ 0, 0, 0, -1.5f, /**/ 0, 0, 0, 1.5f};
  const SparQResolved p{.r = 1, .k = 2, .window = 1, .gqa = GqaSelection::shared};
  const Result res = sparq_decode(layer.view(), q, 0, 1, 3, 0.5, p);
  for (std::size_t h = 0; h < 3; ++h) EXPECT_EQ(res.components[h], (std::vector<std::uint32_t>{3})) << "h=" << h;
  for (double s : res.approx_scores[0]) EXPECT_EQ(s, 1.0 / S);
  const Result per_head = sparq_decode(layer.view(), q, 0, 1, 3, 0.5,
                                       SparQResolved{.r = 1, .k = 2, .window = 1, .gqa = GqaSelection::per_head});
  EXPECT_EQ(per_head.components[0], (std::vector<std::uint32_t>{0}));
}

// Random data, g = 4, two KV heads, a head range: the shared i2 is the window plus the
// top of Σ_h ŝ_h, computed here independently from the reported per-head ŝ.
TEST(GqaSharedSelection, MatchesTopKOfSummedScoresOnRandomData) {
  const std::size_t H = 3, g = 4, d = 8, S = 21, k = 6, l = 2;
  TestLayer layer(LayerSpec{.kv_heads = H, .head_dim = d, .block_tokens = 8}, random_floats(S * H * d, 14),
                  random_floats(S * H * d, 15), S);
  const std::size_t kv_begin = 1, kv_end = 3, n_q = (kv_end - kv_begin) * g;
  const std::vector<float> q = random_floats(n_q * d, 16);
  const SparQResolved p{.r = 3, .k = k, .window = l, .gqa = GqaSelection::shared};
  const Result res = sparq_decode(layer.view(), q, kv_begin, kv_end, g, 0.125, p);
  for (std::size_t kv = 0; kv < kv_end - kv_begin; ++kv) {
    std::vector<double> sum(S, 0.0);
    for (std::size_t h = kv * g; h < (kv + 1) * g; ++h)
      for (std::size_t j = 0; j < S; ++j) sum[j] += res.approx_scores[h][j];
    std::vector<std::uint32_t> order(S - l);
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return sum[a] > sum[b]; });
    std::vector<std::uint32_t> want(order.begin(), order.begin() + (k - l));
    for (std::size_t j = S - l; j < S; ++j) want.push_back(std::uint32_t(j));
    std::sort(want.begin(), want.end());
    for (std::size_t h = kv * g; h < (kv + 1) * g; ++h) {
      EXPECT_EQ(res.selected[h], want) << "kv=" << kv << " h=" << h;
      double alpha = 0;
      for (std::uint32_t j : want) alpha += res.approx_scores[h][j];
      EXPECT_NEAR(res.alpha[h], alpha, 1e-15) << "h=" << h;
    }
  }
}

// With g = 1 shared and per-head selection are the same algorithm.
TEST(GqaSharedSelection, GroupOfOneEqualsPerHead) {
  const std::size_t H = 2, d = 8, S = 19;
  TestLayer layer(LayerSpec{.kv_heads = H, .head_dim = d, .block_tokens = 4}, random_floats(S * H * d, 17),
                  random_floats(S * H * d, 18), S);
  const std::vector<float> q = random_floats(H * d, 19);
  SparQResolved p{.r = 2, .k = 5, .window = 1, .reallocation = true, .gqa = GqaSelection::shared};
  const Result shared = sparq_decode(layer.view(), q, 0, H, 1, 0.3, p);
  p.gqa = GqaSelection::per_head;
  const Result per_head = sparq_decode(layer.view(), q, 0, H, 1, 0.3, p);
  EXPECT_EQ(shared.out, per_head.out);
  EXPECT_EQ(shared.selected, per_head.selected);
  EXPECT_EQ(shared.alpha, per_head.alpha);
}

}  // namespace
}  // namespace sparq::reference
