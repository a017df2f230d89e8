// The AVX512-BF16 loops of dense decode (lib/kernels/dense/dense_bf16_dot.hpp) against exact
// emulations: q and the weights rounded to bf16 here (nearest even), products of bf16
// values exact in double, so the only tolerance is f32 accumulation. Every head-tile
// width (1, 2, 4, 8), every row length the loops take (32 .. 256 values) and tile lengths
// around the row pairs and score batches. Skipped, saying so, on CPUs without AVX512-BF16.
#include "kernels/dense/dense_bf16_dot.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "score_batches.hpp"
#include "sparq/isa.hpp"

namespace sparq {
namespace {

namespace dot = kernels::bf16_dot;

// Round to nearest even, as vcvtne2ps2bf16 does for finite values.
std::uint16_t to_bf16(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}
double from_bf16(std::uint16_t b) {
  const std::uint32_t u = std::uint32_t(b) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

class Bf16Dot : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cpu_supports_bf16_dot())
      GTEST_SKIP() << "this CPU has no AVX512-BF16: the bf16 dot-product loops are not tested";
  }
  std::mt19937 rng_{42};
  std::vector<float> normals(std::size_t n, float sigma = 1.0f) {
    std::normal_distribution<float> dist(0.0f, sigma);
    std::vector<float> x(n);
    for (auto& v : x) v = dist(rng_);
    return x;
  }
  std::vector<std::uint16_t> bf16_rows(std::size_t n) {
    std::vector<std::uint16_t> r;
    for (float x : normals(n)) r.push_back(to_bf16(x));
    return r;
  }
};

constexpr std::size_t kGs[] = {1, 2, 4, 8};
constexpr std::size_t kDs[] = {32, 64, 96, 128, 256};
constexpr std::size_t kNs[] = {1, 2, 3, 7, 16, 17, 33, 64, 255, 256};

TEST_F(Bf16Dot, RoundRowsRoundsToNearestEven) {
  const std::size_t rows = 3, d = 96, stride = 112;
  auto src = normals(rows * stride, 3.0f);
  src[5] = 1.00390625f;  // exactly halfway between two bf16 values: rounds to even (1.0)
  src[6] = 1.01171875f;  // halfway, rounds up to the even neighbour (1.015625)
  std::vector<std::uint16_t> out(rows * d);
  dot::round_rows(src.data(), stride, rows, d, out.data());
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t i = 0; i < d; ++i) ASSERT_EQ(out[r * d + i], to_bf16(src[r * stride + i])) << r << "," << i;
  EXPECT_EQ(from_bf16(out[5]), 1.0);
  EXPECT_EQ(from_bf16(out[6]), 1.015625);
}

TEST_F(Bf16Dot, ScoresAreExactDotProductsInTheBatchLayout) {
  for (std::size_t g : kGs)
    for (std::size_t d : kDs)
      for (std::size_t n : kNs) {
        const std::size_t P = 16 / g, batches = (n + P - 1) / P;
        const auto k = bf16_rows(n * d), qb = bf16_rows(g * d);
        std::vector<float> sc(batches * 16, -7.0f);
        dot::scores(k.data(), d, n, g, qb.data(), sc.data());
        // Products of bf16 values are exact in f32: only the sums round.
        test::expect_score_batches(sc, g, d, n, 1e-6, [&](std::size_t h, std::size_t p, std::size_t i) {
          return from_bf16(qb[h * d + i]) * from_bf16(k[p * d + i]);
        });
        if (HasFatalFailure()) return;
      }
}

TEST_F(Bf16Dot, AccumulateVAddsBf16WeightedRowsAndRescales) {
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  for (std::size_t g : kGs)
    for (std::size_t d : kDs)
      for (std::size_t n : kNs)
        for (bool rescale : {false, true}) {
          const std::size_t P = 16 / g, batches = (n + P - 1) / P, stride = d + 16;
          const auto v = bf16_rows(n * d);
          // Weights in the score-batch layout; lanes past n are 0, as the softmax leaves them.
          std::vector<float> pr(batches * 16);
          for (std::size_t b = 0; b < batches; ++b)
            for (std::size_t lane = 0; lane < 16; ++lane) pr[b * 16 + lane] = b * P + lane % P < n ? unit(rng_) : 0.0f;
          std::vector<float> corr(g);
          for (auto& c : corr) c = unit(rng_);
          // o starts as a random row in natural order, put into unpack order by the inverse
          // of to_natural_order (checked on its own below).
          const auto o0 = normals(g * stride);
          std::vector<float> o(g * stride);
          for (std::size_t h = 0; h < g; ++h) {
            std::vector<float> idx(d), nat(d);
            for (std::size_t i = 0; i < d; ++i) idx[i] = float(i);
            dot::to_natural_order(idx.data(), nat.data(), d);  // nat[e] = unpack index of element e
            for (std::size_t e = 0; e < d; ++e) o[h * stride + std::size_t(nat[e])] = o0[h * stride + e];
          }
          std::vector<std::uint32_t> wbuf(batches * 8);
          dot::accumulate_v(v.data(), d, n, g, pr.data(), wbuf.data(), o.data(), stride,
                            rescale ? corr.data() : nullptr);
          for (std::size_t h = 0; h < g; ++h) {
            std::vector<float> got(d);
            dot::to_natural_order(o.data() + h * stride, got.data(), d);
            for (std::size_t e = 0; e < d; ++e) {
              double want = double(o0[h * stride + e]) * (rescale ? corr[h] : 1.0f), mag = std::abs(want);
              for (std::size_t p = 0; p < n; ++p) {
                const double t = from_bf16(to_bf16(pr[(p / P) * 16 + h * P + p % P])) * from_bf16(v[p * d + e]);
                want += t;
                mag += std::abs(t);
              }
              ASSERT_NEAR(got[e], want, 1e-6 * mag + 1e-30)
                  << "g=" << g << " d=" << d << " n=" << n << " rescale=" << rescale << " head " << h << " e " << e;
            }
          }
        }
}

TEST_F(Bf16Dot, UnpackOrderIsThe16BitInterleaveWithin128BitLanes) {
  // Line c of 32 values: lane j of the first register is element 8 (j / 4) + j % 4, of the
  // second 8 (j / 4) + 4 + j % 4 (what _mm512_unpacklo/hi_epi16 produce).
  std::vector<float> src(64), dst(64);
  for (std::size_t i = 0; i < 64; ++i) src[i] = float(i);
  dot::to_natural_order(src.data(), dst.data(), 64);
  EXPECT_EQ(dst[0], 0.0f);
  EXPECT_EQ(dst[3], 3.0f);
  EXPECT_EQ(dst[4], 16.0f);   // element 4 = lane 0 of the second register
  EXPECT_EQ(dst[8], 4.0f);    // element 8 = lane 4 of the first
  EXPECT_EQ(dst[31], 31.0f);  // element 31 = lane 15 of the second
  EXPECT_EQ(dst[32], 32.0f);  // the next line starts over
  EXPECT_EQ(dst[36], 48.0f);
}

TEST_F(Bf16Dot, ForcingNeedsTheCpuAndCanBeUndone) {
  force_bf16_dot(false);
  EXPECT_FALSE(bf16_dot_active());
  force_bf16_dot(true);
  EXPECT_EQ(bf16_dot_active(), active_isa() == Isa::avx512);
  force_isa(Isa::avx2);
  EXPECT_FALSE(bf16_dot_active()) << "the dot products belong to the avx512 kernels";
  force_isa(std::nullopt);
  force_bf16_dot(std::nullopt);
}

}  // namespace
}  // namespace sparq
