// SparQ top-k (lib/kernels/sparq/sparq_select.hpp + sparq_topk passes) on hand cases and
// against a full-sort oracle: ties (lower position first), -0 vs +0, the window, count 0,
// many chunks, the exp (GQA-shared) and logits modes, α sums. Every compiled ISA the CPU
// runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernel_test_util.hpp"
#include "kernels/simd/arch_list.hpp"
#include "kernels/sparq/sparq_select.hpp"

namespace sparq {
namespace {

using test::IsaTest;
class SparqTopk : public IsaTest {};

// Oracle: full sort by (score desc, position asc) of the ranked positions, plus window.
std::vector<std::uint32_t> oracle(const std::vector<double>& score, std::size_t S, std::size_t window,
                                  std::size_t count) {
  const std::size_t N = S - window;
  std::vector<std::uint32_t> idx(N);
  std::iota(idx.begin(), idx.end(), 0u);
  std::sort(idx.begin(), idx.end(),
            [&](std::uint32_t a, std::uint32_t b) { return score[a] != score[b] ? score[a] > score[b] : a < b; });
  idx.resize(count);
  for (std::size_t j = N; j < S; ++j) idx.push_back(std::uint32_t(j));
  std::sort(idx.begin(), idx.end());
  return idx;
}

struct Result {
  std::vector<std::uint32_t> selected;
  std::vector<double> alpha;
};

// Logits mode: one head, scores z (log2 domain), ŝ = 2^(z - shift) / sum.
Result run_logits(Isa isa, const std::vector<float>& z, std::size_t window, std::size_t count, std::size_t chunk) {
  kernels::SparqSelectProblem p;
  p.S = z.size();
  p.n_ranked = z.size() - window;
  p.count = count;
  p.chunk = chunk;
  const float mx = *std::max_element(z.begin(), z.end());
  double sum = 0;
  for (float x : z) sum += std::exp2(double(x) - mx);
  std::vector<float> padded(z);
  padded.resize((z.size() + chunk - 1) / chunk * chunk, 0.0f);
  p.scores = padded.data();
  p.score_stride = padded.size();
  p.shift = mx;
  p.top = mx;
  p.inv_sum = float(1.0 / sum);
  kernels::SparqSelectScratch s;
  Result r;
  r.alpha.resize(1);
  kernels::dispatch_isa(isa, [&](auto arch) { kernels::sparq_select(arch, p, s, r.selected, r.alpha.data()); });
  return r;
}

TEST_P(SparqTopk, TiesGoToLowerPositions) {
  // All equal: the lowest positions win; window always included.
  const std::vector<float> z(50, 0.25f);
  const Result r = run_logits(GetParam(), z, 5, 7, 16);
  const std::vector<std::uint32_t> want = {0, 1, 2, 3, 4, 5, 6, 45, 46, 47, 48, 49};
  EXPECT_EQ(r.selected, want) << "isa=" << isa();
  EXPECT_NEAR(r.alpha[0], 12.0 / 50.0, 1e-6) << "isa=" << isa();
}

TEST_P(SparqTopk, HandCaseWithTiesAcrossChunks) {
  //                      0    1    2    3    4    5    6    7    8    9
  const std::vector<float> z = {1.f, 3.f, 2.f, 3.f, 0.f, 3.f, 2.f, -1.f, 5.f, 2.f};
  // count 4 of positions [0, 8) (window 2 = {8, 9}): 3,3,3 at 1,3,5 then the first 2 at 2.
  const Result r = run_logits(GetParam(), z, 2, 4, 3);
  EXPECT_EQ(r.selected, (std::vector<std::uint32_t>{1, 2, 3, 5, 8, 9})) << "isa=" << isa();
}

TEST_P(SparqTopk, NegativeZeroTiesWithPositiveZero) {
  const std::vector<float> z = {-1.f, 0.0f, -0.0f, -0.0f, 0.0f, -2.f};
  const Result r = run_logits(GetParam(), z, 0, 2, 4);
  EXPECT_EQ(r.selected, (std::vector<std::uint32_t>{1, 2})) << "isa=" << isa();
}

TEST_P(SparqTopk, WindowOnlyAndWindowLargerThanNeeded) {
  std::vector<float> z(40);
  for (std::size_t j = 0; j < z.size(); ++j) z[j] = float(j % 7);
  const Result r = run_logits(GetParam(), z, 6, 0, 8);
  EXPECT_EQ(r.selected, (std::vector<std::uint32_t>{34, 35, 36, 37, 38, 39})) << "isa=" << isa();
}

TEST_P(SparqTopk, MatchesOracleOnRandomAndDuplicateScores) {
  std::mt19937 rng(3);
  for (std::size_t S : {1u, 2u, 17u, 1000u, 4096u, 4097u, 20000u}) {
    for (int kind = 0; kind < 3; ++kind) {
      std::vector<float> z(S);
      std::normal_distribution<float> normal(0.0f, 3.0f);
      std::uniform_int_distribution<int> few(-3, 3);
      for (float& x : z) x = kind == 0 ? normal(rng) : kind == 1 ? float(few(rng)) * 0.5f : -40.0f - normal(rng);
      for (std::size_t window : {std::size_t{0}, S / 5}) {
        const std::size_t N = S - window;
        for (std::size_t count : {std::size_t{0}, std::size_t{1}, N / 16, N / 2, N > 0 ? N - 1 : 0}) {
          if (count >= N && N > 0) continue;
          if (N == 0 && count > 0) continue;
          std::vector<double> score(z.begin(), z.end());
          const auto want = oracle(score, S, window, count);
          const Result r = run_logits(GetParam(), z, window, count, 4096);
          ASSERT_EQ(r.selected, want) << "S=" << S << " kind=" << kind << " window=" << window << " count=" << count
                                      << " isa=" << isa();
          const float mx = *std::max_element(z.begin(), z.end());
          double sum = 0, part = 0;
          for (float x : z) sum += std::exp2(double(x) - mx);
          for (std::uint32_t j : want) part += std::exp2(double(z[j]) - mx);
          EXPECT_NEAR(r.alpha[0], part / sum, 1e-5) << "S=" << S << " kind=" << kind << " isa=" << isa();
        }
      }
    }
  }
}

// Exp mode (GQA-shared): the ranking score is Σ_h w_h^c e_h[j] per chunk c.
TEST_P(SparqTopk, ExpModeRanksBySumOfHeadScores) {
  const std::size_t S = 9000, H = 3, C = 1024, chunks = (S + C - 1) / C, window = 100, count = 700;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> e(H * chunks * C, 0.0f);
  std::vector<float> w(chunks * H);
  for (std::size_t h = 0; h < H; ++h)
    for (std::size_t j = 0; j < S; ++j) e[h * chunks * C + j] = u(rng);
  for (float& x : w) x = 1e-4f * (0.5f + u(rng));
  // Some exact duplicates of the combined score: copy position j's values to j + 1 within a chunk.
  for (std::size_t j = 10; j + 1 < S; j += 97)
    if ((j + 1) % C != 0)
      for (std::size_t h = 0; h < H; ++h) e[h * chunks * C + j + 1] = e[h * chunks * C + j];
  kernels::SparqSelectProblem p;
  p.S = S;
  p.n_ranked = S - window;
  p.count = count;
  p.chunk = C;
  p.scores = e.data();
  p.score_stride = chunks * C;
  p.heads = H;
  p.exp_mode = true;
  p.top = float(H);
  p.chunk_weights = w.data();
  // The oracle uses the same f32 arithmetic as the kernel (fma over heads in order), so
  // the comparison is exact; this checks selection logic, not rounding.
  std::vector<double> score(S);
  for (std::size_t j = 0; j < S; ++j) {
    float c = 0.0f;
    for (std::size_t h = 0; h < H; ++h) c = std::fma(w[(j / C) * H + h], e[h * chunks * C + j], c);
    score[j] = c;
  }
  const auto want = oracle(score, S, window, count);
  kernels::SparqSelectScratch s;
  std::vector<std::uint32_t> got;
  double alpha[H];
  kernels::dispatch_isa(GetParam(), [&](auto arch) { kernels::sparq_select(arch, p, s, got, alpha); });
  if (GetParam() == Isa::generic) {
    // SSE2 has no FMA: xsimd emulates fma as a multiply and an add (two roundings), so
    // compare by score with that tolerance instead of exactly.
    ASSERT_EQ(got.size(), want.size());
    double kth = 1e300;
    for (std::uint32_t j : want)
      if (j < S - window) kth = std::min(kth, score[j]);
    for (std::uint32_t j : got) {
      if (j < S - window) {
        EXPECT_GE(score[j], kth * (1 - 1e-6)) << "j=" << j;
      }
    }
  } else {
    ASSERT_EQ(got, want) << "isa=" << isa();
  }
  for (std::size_t h = 0; h < H; ++h) {
    double a = 0;
    for (std::uint32_t j : got) a += double(w[(j / C) * H + h]) * e[h * chunks * C + j];
    EXPECT_NEAR(alpha[h], a, 1e-6 * std::max(1.0, a)) << "head " << h << " isa=" << isa();
  }
}

SPARQ_INSTANTIATE_FOR_EACH_ISA(SparqTopk);

}  // namespace
}  // namespace sparq
