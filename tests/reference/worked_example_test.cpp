// A worked example of DESIGN §1 computed by hand: d = 4, S = 3, MHA, r = 2, k = 2, l = 1,
// scale = 1/sqrt(d) = 1/2. Every stored value is exact in f32, bf16 and f16.
//
//   q    = [2, 0, 1, 2]
//   K[0] = [1, 0, 0, 0]    V[0] = [3, 0, 0, 0]
//   K[1] = [0, 0, 2, 0]    V[1] = [0, 3, 0, 0]
//   K[2] = [0, 1, 0,-1]    V[2] = [0, 0, 3, 3]      v̄ = [1, 1, 1, 1]
//
// Dense: logits scale·q·K[j] = [2, 2, -2]/2 = [1, 1, -1]; Z = 2e + 1/e, lse = log Z,
//   y = (e·V[0] + e·V[1] + e⁻¹·V[2]) / Z = [3e, 3e, 3/e, 3/e] / Z.
// SparQ:
//   1. |q| = [2, 0, 1, 2] → i1 = {0, 3}.
//   2. Σ|q[i1]| = 4, Σ|q| = 5 → τ = sqrt(4·4/5) = 4/√5.
//      q[i1]·K[j][i1] = [2, 0, -2] → logits [2, 0, -2]/τ = [√5/2, 0, -√5/2] =: [a, 0, -a],
//      ŝ = [e^a, 1, e^-a] / (e^a + 1 + e^-a).  (K[1] hides its mass in component 2.)
//   3. k_eff = 2, window min(1, 2) = 1 → {2}; the largest ŝ of {0, 1} is position 0
//      → i2 = {0, 2}.
//   4. α = ŝ[0] + ŝ[2] = (e^a + e^-a) / (e^a + 1 + e^-a).
//   5. logits over i2: [1, -1]; s = [e, 1/e]/(e + 1/e), lse = log(e + 1/e),
//      y' = s0·V[0] + s2·V[2] = [3·s0, 0, 3·s2, 3·s2].
//   6. with reallocation y = α·y' + (1 − α)·[1, 1, 1, 1].
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "reference/reference.hpp"
#include "test_layer.hpp"

namespace sparq::reference {
namespace {

using testing::LayerSpec;
using testing::TestLayer;

const std::vector<float> kQ = {2, 0, 1, 2};
const std::vector<float> kKeys = {1, 0, 0, 0, /**/ 0, 0, 2, 0, /**/ 0, 1, 0, -1};
const std::vector<float> kValues = {3, 0, 0, 0, /**/ 0, 3, 0, 0, /**/ 0, 0, 3, 3};
constexpr double kTol = 1e-14;

class WorkedExample : public ::testing::TestWithParam<DType> {
 protected:
  TestLayer layer{LayerSpec{.kv_heads = 1, .head_dim = 4, .block_tokens = 2, .dtype = GetParam()}, kKeys, kValues, 3};
};

TEST_P(WorkedExample, Dense) {
  const Result res = dense_decode(layer.view(), kQ, 0, 1, 1, 0.5);
  const double e = std::exp(1.0), Z = 2 * e + 1 / e;
  const std::vector<double> want = {3 * e / Z, 3 * e / Z, 3 / e / Z, 3 / e / Z};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(res.out[i], want[i], kTol) << "i=" << i;
  EXPECT_NEAR(res.lse[0], std::log(Z), kTol);
  EXPECT_EQ(res.alpha[0], 1.0);
  EXPECT_TRUE(res.selected.empty());
  EXPECT_TRUE(res.approx_scores.empty());
}

TEST_P(WorkedExample, SparQ) {
  for (bool realloc : {false, true}) {
    const SparQResolved p{.r = 2, .k = 2, .window = 1, .reallocation = realloc};
    const Result res = sparq_decode(layer.view(), kQ, 0, 1, 1, 0.5, p);
    const double a = std::sqrt(5.0) / 2, za = std::exp(a) + 1 + std::exp(-a);
    EXPECT_EQ(res.components[0], (std::vector<std::uint32_t>{0, 3}));
    ASSERT_EQ(res.approx_scores[0].size(), 3u);
    EXPECT_NEAR(res.approx_scores[0][0], std::exp(a) / za, kTol);
    EXPECT_NEAR(res.approx_scores[0][1], 1 / za, kTol);
    EXPECT_NEAR(res.approx_scores[0][2], std::exp(-a) / za, kTol);
    EXPECT_EQ(res.selected[0], (std::vector<std::uint32_t>{0, 2}));
    const double alpha = (std::exp(a) + std::exp(-a)) / za;
    EXPECT_NEAR(res.alpha[0], alpha, kTol);

    const double e = std::exp(1.0), s0 = e / (e + 1 / e), s2 = (1 / e) / (e + 1 / e);
    std::vector<double> want = {3 * s0, 0, 3 * s2, 3 * s2};
    if (realloc)
      for (double& y : want) y = alpha * y + (1 - alpha) * 1.0;
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(res.out[i], want[i], kTol) << "i=" << i << " realloc=" << realloc;
    EXPECT_NEAR(res.lse[0], std::log(e + 1 / e), kTol);
  }
}

TEST_P(WorkedExample, Temperature) {
  const std::vector<std::uint32_t> i1 = {0, 3};
  EXPECT_NEAR(temperature(kQ, i1), 4 / std::sqrt(5.0), kTol);
}

INSTANTIATE_TEST_SUITE_P(AllDTypes, WorkedExample, ::testing::Values(DType::f32, DType::bf16, DType::f16),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace sparq::reference
