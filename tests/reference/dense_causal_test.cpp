// Dense causal attention of a chunk of new queries: query t of the chunk sees positions
// [0, S - n_new + t], i.e. exactly dense decode over the sequence as it was when that
// token was the last one.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "reference/reference.hpp"
#include "test_layer.hpp"

namespace sparq::reference {
namespace {

using testing::LayerSpec;
using testing::random_floats;
using testing::TestLayer;

TEST(DenseCausalReference, EachQuerySeesItsPrefix) {
  const std::size_t H = 2, g = 3, d = 6, S = 10, n_new = 4, n_q = H * g;
  const std::vector<float> keys = random_floats(S * H * d, 30), values = random_floats(S * H * d, 31);
  const std::vector<float> q = random_floats(n_new * n_q * d, 32);
  const LayerSpec spec{.kv_heads = H, .head_dim = d, .block_tokens = 4, .dtype = DType::bf16};
  TestLayer full(spec, keys, values, S);
  const Result chunk = dense_causal(full.view(), q, n_new, 0, H, g, 0.4);
  ASSERT_EQ(chunk.out.size(), n_new * n_q * d);
  ASSERT_EQ(chunk.lse.size(), n_new * n_q);
  for (std::size_t t = 0; t < n_new; ++t) {
    // The same sequence cut after position S - n_new + t: [S'][H][d] is a prefix of keys.
    const std::size_t prefix = S - n_new + t + 1;
    TestLayer cut(spec, std::span(keys).first(prefix * H * d), std::span(values).first(prefix * H * d), prefix);
    const Result one = dense_decode(cut.view(), std::span(q).subspan(t * n_q * d, n_q * d), 0, H, g, 0.4);
    for (std::size_t n = 0; n < n_q * d; ++n)
      EXPECT_EQ(chunk.out[t * n_q * d + n], one.out[n]) << "t=" << t << " n=" << n;
    for (std::size_t h = 0; h < n_q; ++h) EXPECT_EQ(chunk.lse[t * n_q + h], one.lse[h]) << "t=" << t;
  }
}

TEST(DenseCausalReference, SingleNewQueryIsDenseDecode) {
  const std::size_t d = 4, S = 5;
  TestLayer layer(LayerSpec{.head_dim = d}, random_floats(S * d, 33), random_floats(S * d, 34), S);
  const std::vector<float> q = random_floats(d, 35);
  const Result a = dense_causal(layer.view(), q, 1, 0, 1, 1, 0.5);
  const Result b = dense_decode(layer.view(), q, 0, 1, 1, 0.5);
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.lse, b.lse);
}

// The first query of a chunk covering the whole sequence sees only position 0: its
// output is V[0] and its lse is its single logit.
TEST(DenseCausalReference, FirstPositionAttendsToItselfOnly) {
  const std::size_t d = 4, S = 3;
  const std::vector<float> keys = {1, 2, 0, 0, /**/ 5, 5, 5, 5, /**/ 1, 1, 1, 1};
  const std::vector<float> values = {4, 3, 2, 1, /**/ 9, 9, 9, 9, /**/ 0, 0, 0, 0};
  TestLayer layer(LayerSpec{.head_dim = d}, keys, values, S);
  const std::vector<float> q = {1, 1, 0, 0, /**/ 0, 0, 0, 0, /**/ 0, 0, 0, 0};
  const Result res = dense_causal(layer.view(), q, S, 0, 1, 1, 0.5);
  EXPECT_EQ(std::vector<double>(res.out.begin(), res.out.begin() + d), (std::vector<double>{4, 3, 2, 1}));
  EXPECT_EQ(res.lse[0], 1.5);  // 0.5 · (1·1 + 1·2)
}

}  // namespace
}  // namespace sparq::reference
