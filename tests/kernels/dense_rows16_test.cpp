// The AVX-512 16-bit-row score loops of dense decode (lib/kernels/dense/dense_rows16.hpp)
// against dot products in double of the same f16 or bf16 keys and f32 queries: the only
// tolerance is f32 arithmetic. Every head-tile width (1, 2, 4, 8), every row length the loop takes and
// tile lengths around the score batches; the shapes it declines are checked to be the
// ones whose registers would not fit. Skipped, saying so, on CPUs without AVX-512.
#include "kernels/dense/dense_rows16.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "cache/element.hpp"
#include "score_batches.hpp"
#include "sparq/isa.hpp"

namespace sparq {
namespace {

namespace rows = kernels::rows16;

TEST(F16Rows, HandlesWholeLinesAndPowerOfTwoHeadTiles) {
  for (std::size_t g : {1, 2, 4, 8})
    for (std::size_t d : {32, 64, 96, 128, 192, 256}) EXPECT_TRUE(rows::handles(g, d)) << g << "," << d;
  EXPECT_FALSE(rows::handles(4, 80));   // not whole lines
  EXPECT_FALSE(rows::handles(4, 288));  // more than 8 lines
  EXPECT_FALSE(rows::handles(4, 0));
  EXPECT_FALSE(rows::handles(3, 128));
  EXPECT_FALSE(rows::handles(16, 128));
}

TEST(F16Rows, ScoresAreDotProductsInTheBatchLayout) {
  if (!cpu_supports(Isa::avx512)) GTEST_SKIP() << "this CPU has no AVX-512: the f16 score loop is not tested";
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::size_t shapes = 0;
  for (std::size_t g : {1, 2, 4, 8})
    for (std::size_t d : {32, 64, 96, 128, 192, 256})
      for (std::size_t n : {1, 2, 3, 7, 16, 17, 33, 64, 255, 256}) {
        if (!rows::handles(g, d)) continue;  // declined shapes: checked above
        ++shapes;
        const std::size_t P = 16 / g, batches = (n + P - 1) / P, q_stride = d + 16;
        const std::size_t ks = n % 2 ? 2 * d : d;  // rows of the fused layout (key | value) too
        std::vector<std::uint16_t> k(n * ks);
        for (auto& x : k) x = element::f32_to_f16(normal(rng));
        std::vector<float> q(g * q_stride);
        for (auto& x : q) x = normal(rng);
        std::vector<float> sc(batches * 16, -7.0f);
        rows::scores(k.data(), d, ks, n, g, q.data(), q_stride, sc.data());
        // f32 products and sums of at most 2 * 8 + 4 levels: well inside 2e-6 of the magnitude.
        test::expect_score_batches(sc, g, d, n, 2e-6, [&](std::size_t h, std::size_t p, std::size_t i) {
          return double(q[h * q_stride + i]) * element::f16_to_f32(k[p * ks + i]);
        });
        if (HasFatalFailure()) return;
      }
  EXPECT_EQ(shapes, 24u * 10);  // every (g, d)
}

// bf16 rows take q in pair order: each 32-value line's 16 even values, then its 16 odd ones.
TEST(Bf16Rows, ScoresAreDotProductsInTheBatchLayout) {
  if (!cpu_supports(Isa::avx512)) GTEST_SKIP() << "this CPU has no AVX-512: the bf16 score loop is not tested";
  std::mt19937 rng(8);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::size_t shapes = 0;
  for (std::size_t g : {1, 2, 4, 8})
    for (std::size_t d : {32, 64, 96, 128, 192, 256})
      for (std::size_t n : {1, 2, 3, 7, 16, 17, 33, 64, 255, 256}) {
        if (!rows::handles(g, d)) continue;
        ++shapes;
        const std::size_t P = 16 / g, batches = (n + P - 1) / P, q_stride = d + 16;
        const std::size_t ks = n % 2 ? 2 * d : d;  // rows of the fused layout (key | value) too
        std::vector<std::uint16_t> k(n * ks);
        for (auto& x : k) x = element::f32_to_bf16(normal(rng));
        std::vector<float> q(g * q_stride), qp(g * q_stride);  // natural order, pair order
        for (auto& x : q) x = normal(rng);
        for (std::size_t h = 0; h < g; ++h)
          for (std::size_t c = 0; c < d; c += 32)
            for (std::size_t j = 0; j < 16; ++j) {
              qp[h * q_stride + c + j] = q[h * q_stride + c + 2 * j];
              qp[h * q_stride + c + 16 + j] = q[h * q_stride + c + 2 * j + 1];
            }
        std::vector<float> sc(batches * 16, -7.0f);
        rows::scores_bf16(k.data(), d, ks, n, g, qp.data(), q_stride, sc.data());
        test::expect_score_batches(sc, g, d, n, 2e-6, [&](std::size_t h, std::size_t p, std::size_t i) {
          return double(q[h * q_stride + i]) * element::bf16_to_f32(k[p * ks + i]);
        });
        if (HasFatalFailure()) return;
      }
  EXPECT_EQ(shapes, 24u * 10);
}

}  // namespace
}  // namespace sparq
