// Per-ISA widening of f16/bf16 against lib/cache/element.hpp on all 65536 patterns, and
// the vectorized exp2 against std::exp2.
#include "kernels/simd/vector_ops.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "cache/element.hpp"
#include "kernel_test_util.hpp"
#include "kernels/simd/arch_list.hpp"

namespace sparq {
namespace {

using test::IsaTest;

class VectorOps : public IsaTest {};

std::vector<float> widen(Isa isa, DType dtype, const std::vector<std::uint16_t>& bits, std::size_t n) {
  std::vector<float> out(n, -1.0f);
  kernels::dispatch_isa(
      isa, [&](auto arch) { kernels::WidenRow<decltype(arch)>{}(arch, dtype, bits.data(), out.data(), n); });
  return out;
}

void check_all_patterns(Isa isa, DType dtype, float (*scalar)(std::uint16_t)) {
  std::vector<std::uint16_t> bits(65536);
  for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = std::uint16_t(i);
  // n = 65535 also exercises the tail path (not a multiple of any lane count).
  for (std::size_t n : {std::size_t{65536}, std::size_t{65535}}) {
    const auto got = widen(isa, dtype, bits, n);
    std::size_t bad = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const float want = scalar(bits[i]);
      const bool same = std::isnan(want) ? std::isnan(got[i])
                                         : std::bit_cast<std::uint32_t>(want) == std::bit_cast<std::uint32_t>(got[i]);
      if (!same && bad++ < 5)
        ADD_FAILURE() << to_string(dtype) << " pattern 0x" << std::hex << i << std::dec << ": got " << got[i]
                      << ", want " << want << " isa=" << to_string(isa) << " n=" << n;
    }
    EXPECT_EQ(bad, 0u) << to_string(dtype) << " isa=" << to_string(isa);
  }
}

TEST_P(VectorOps, Bf16WidensExactlyOnAllPatterns) {
  check_all_patterns(GetParam(), DType::bf16, element::bf16_to_f32);
}
TEST_P(VectorOps, F16WidensExactlyOnAllPatterns) {
  check_all_patterns(GetParam(), DType::f16, element::f16_to_f32);
}

TEST_P(VectorOps, Int8WidensExactlyOnAllValues) {
  std::vector<std::int8_t> x(256 + 5);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::int8_t(int(i % 256) - 128);
  std::vector<float> y(x.size(), 0.5f);
  kernels::dispatch_isa(GetParam(),
                        [&](auto arch) { kernels::WidenI8Row<decltype(arch)>{}(arch, x.data(), y.data(), x.size()); });
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y[i], float(x[i])) << "i=" << i << " isa=" << isa();
}

TEST_P(VectorOps, F32RowsAreCopied) {
  const auto x = test::normal_floats(37, 3);
  std::vector<float> y(37);
  kernels::dispatch_isa(
      GetParam(), [&](auto arch) { kernels::WidenRow<decltype(arch)>{}(arch, DType::f32, x.data(), y.data(), 37); });
  EXPECT_EQ(x, y);
}

TEST_P(VectorOps, Exp2MatchesStdExp2) {
  std::vector<float> x;
  for (float v = -126.0f; v <= 127.0f; v += 0.0137f) x.push_back(v);
  for (float v : {0.0f, -0.0f, 0.5f, -0.5f, 1e-7f, -1e-7f, -1.0f, 1.0f}) x.push_back(v);
  std::vector<float> y(x.size());
  kernels::dispatch_isa(GetParam(),
                        [&](auto arch) { kernels::Exp2Row<decltype(arch)>{}(arch, x.data(), y.data(), x.size()); });
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double want = std::exp2(double(x[i]));
    const double rel = std::abs(y[i] - want) / want;
    worst = std::max(worst, rel);
    ASSERT_LE(rel, 3e-7) << "x=" << x[i] << " got " << y[i] << " want " << want << " isa=" << isa();
  }
  RecordProperty("worst_relative_error", std::to_string(worst));
}

TEST_P(VectorOps, Exp2OfVeryNegativeIsZero) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {-inf, -1000.0f, -127.0f, -200.5f, 0.0f};
  std::vector<float> y(x.size(), -1.0f);
  kernels::dispatch_isa(GetParam(),
                        [&](auto arch) { kernels::Exp2Row<decltype(arch)>{}(arch, x.data(), y.data(), x.size()); });
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(y[i], 0.0f) << "x=" << x[i] << " isa=" << isa();
  EXPECT_EQ(y[4], 1.0f) << "isa=" << isa();
}

// Scores beyond f32's range count as ±limit; NaN stays NaN (clamp) or ranks last (rank)
// (kernels/softmax_range.hpp): relies on x86 max/min returning their second operand for
// NaN, on every ISA.
TEST_P(VectorOps, ClampScoreBoundsInfinitiesAndKeepsOrRanksNan) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float lim = std::numeric_limits<float>::max();
  const std::vector<float> x = {inf,   -inf,   nan,    -nan, 1.5f, -2.5f, lim, -lim, 0.0f,
                                3e38f, -3e38f, 1e-30f, nan,  7.0f, -inf,  inf, 42.0f};
  const std::vector<float> want = {lim,   -lim,   nan,    nan, 1.5f, -2.5f, lim, -lim, 0.0f,
                                   3e38f, -3e38f, 1e-30f, nan, 7.0f, -lim,  lim, 42.0f};
  for (const bool rank : {false, true}) {
    std::vector<float> y(x.size(), 0.0f);
    kernels::dispatch_isa(GetParam(), [&](auto arch) {
      kernels::ClampScoreRow<decltype(arch)>{}(arch, x.data(), y.data(), x.size(), lim, rank);
    });
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (std::isnan(want[i]) && !rank)
        EXPECT_TRUE(std::isnan(y[i])) << "x=" << x[i] << " isa=" << isa();
      else
        EXPECT_EQ(y[i], std::isnan(want[i]) ? -lim : want[i]) << "x=" << x[i] << " rank=" << rank << " isa=" << isa();
    }
  }
}

TEST_P(VectorOps, RowSumsPutRowIInLaneI) {
  constexpr std::size_t M = kernels::kMaxLanes;
  std::vector<float> rows(M * M);
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = float(i % 7) + float(i / 7) * 0.25f;
  std::vector<float> sums(M, -1.0f);
  std::size_t W = 0;
  kernels::dispatch_isa(GetParam(),
                        [&](auto arch) { W = kernels::SumRows<decltype(arch)>{}(arch, rows.data(), sums.data()); });
  ASSERT_GE(W, 1u);
  for (std::size_t r = 0; r < W; ++r) {
    double want = 0;
    for (std::size_t i = 0; i < W; ++i) want += rows[r * W + i];
    EXPECT_NEAR(sums[r], want, 1e-4 * std::abs(want)) << "row " << r << " of " << W << " isa=" << isa();
  }
}

SPARQ_INSTANTIATE_FOR_EACH_ISA(VectorOps);

}  // namespace
}  // namespace sparq
