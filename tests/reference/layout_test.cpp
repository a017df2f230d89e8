// The reference reads keys from whichever copy the cache keeps: every KeyLayout gives
// bit-identical results, and the stored elements read back as written.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cache/element.hpp"
#include "reference/reference.hpp"
#include "test_layer.hpp"

namespace sparq::reference {
namespace {

using testing::LayerSpec;
using testing::random_floats;
using testing::TestLayer;

TEST(ReferenceLayouts, AllKeyLayoutsGiveIdenticalResults) {
  for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
    const std::size_t H = 2, g = 2, d = 8, S = 11, n_q = H * g;
    const std::vector<float> keys = random_floats(S * H * d, 20), values = random_floats(S * H * d, 21);
    const std::vector<float> q = random_floats(n_q * d, 22);
    const SparQResolved p{.r = 3, .k = 4, .window = 1, .reallocation = true};
    std::vector<Result> dense, sparq;
    for (KeyLayout layout : {KeyLayout::both, KeyLayout::s_major, KeyLayout::d_major, KeyLayout::fused}) {
      TestLayer layer(LayerSpec{.kv_heads = H, .head_dim = d, .block_tokens = 4, .dtype = dt, .layouts = layout}, keys,
                      values, S);
      EXPECT_TRUE(key_copies_agree(layer.view()));
      dense.push_back(dense_decode(layer.view(), q, 0, H, g, 0.35));
      sparq.push_back(sparq_decode(layer.view(), q, 0, H, g, 0.35, p));
    }
    for (std::size_t n = 1; n < 4; ++n) {
      const std::string ctx = "dtype=" + std::string(to_string(dt)) + " layout #" + std::to_string(n);
      EXPECT_EQ(dense[n].out, dense[0].out) << ctx;
      EXPECT_EQ(dense[n].lse, dense[0].lse) << ctx;
      EXPECT_EQ(sparq[n].out, sparq[0].out) << ctx;
      EXPECT_EQ(sparq[n].lse, sparq[0].lse) << ctx;
      EXPECT_EQ(sparq[n].alpha, sparq[0].alpha) << ctx;
      EXPECT_EQ(sparq[n].selected, sparq[0].selected) << ctx;
      EXPECT_EQ(sparq[n].approx_scores, sparq[0].approx_scores) << ctx;
    }
  }
}

TEST(ReferenceLayouts, ReadsStoredElementsOfEveryCopy) {
  const std::size_t H = 3, d = 5, S = 7;
  const std::vector<float> keys = random_floats(S * H * d, 23), values = random_floats(S * H * d, 24);
  for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
    for (KeyLayout layout : {KeyLayout::both, KeyLayout::s_major, KeyLayout::d_major, KeyLayout::fused}) {
      TestLayer layer(LayerSpec{.kv_heads = H, .head_dim = d, .block_tokens = 3, .dtype = dt, .layouts = layout}, keys,
                      values, S);
      for (std::size_t h = 0; h < H; ++h) {
        std::vector<double> mean(d, 0.0);
        for (std::size_t j = 0; j < S; ++j) {
          for (std::size_t i = 0; i < d; ++i) {
            const std::size_t n = (j * H + h) * d + i;
            // What the storage type holds: the f32 input rounded once.
            std::byte buf[4];
            element::store(buf, 0, dt, keys[n]);
            EXPECT_EQ(key(layer.view(), h, j, i), element::load(buf, 0, dt)) << "h=" << h << " j=" << j << " i=" << i;
            element::store(buf, 0, dt, values[n]);
            EXPECT_EQ(value(layer.view(), h, j, i), element::load(buf, 0, dt));
            mean[i] += element::load(buf, 0, dt) / double(S);
          }
        }
        const std::vector<double> recomputed = recomputed_value_mean(layer.view(), h);
        for (std::size_t i = 0; i < d; ++i) {
          EXPECT_NEAR(recomputed[i], mean[i], 1e-15);
          // The view's running mean (f32) is that mean rounded.
          EXPECT_NEAR(layer.view().value_mean[h * d + i], recomputed[i], 1e-7) << "h=" << h << " i=" << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace sparq::reference
