// PackedMatrix (sparq/tools/e2e/matvec.hpp) against a double-precision reference over the
// stored (dequantized) weights, on every compiled ISA this CPU runs, both q8 kernels and
// bf16, on shapes around the tile (8 rows) and chunk (64 / 32 columns) widths.
#include "sparq/tools/e2e/matvec.hpp"

#include <gtest/gtest.h>
#include <oneapi/tbb/task_arena.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "sparq/error.hpp"
#include "sparq/isa.hpp"

namespace sparq::e2e {
namespace {

struct Case {
  std::size_t rows, cols;
};
// Tile rows 8 and chunk widths 32 (bf16) / 64 (int8): W-1, W, W+1, 3W+2 and odd sizes.
const Case kShapes[] = {{1, 1},
                        {7, 31},
                        {8, 32},
                        {9, 33},
                        {8, 63},
                        {9, 64},
                        {17, 65},
                        {26, 98},
                        {23, 130},
                        {5, 194},
                        {64, 1000},
                        {3, 4113},
                        {40, 11008 / 8 + 3}};

std::vector<float> random_vector(std::size_t n, std::uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

struct Variant {
  WeightFormat format;
  Q8Kernel kernel;
  std::string name() const {
    return std::string(to_string(format)) + (format == WeightFormat::q8 ? "_" + std::string(to_string(kernel)) : "");
  }
};
const Variant kVariants[] = {
    {WeightFormat::q8, Q8Kernel::widen}, {WeightFormat::q8, Q8Kernel::vnni}, {WeightFormat::bf16, Q8Kernel::automatic}};

void check_matvec(Isa isa, const Variant& variant, const Case& shape, tbb::task_arena* arena) {
  const auto [M, K] = shape;
  const std::string ctx = " M=" + std::to_string(M) + " K=" + std::to_string(K) +
                          " isa=" + std::string(to_string(isa)) + " variant=" + variant.name();
  const auto w = random_vector(M * K, std::uint32_t(M * 131 + K), 0.05f);
  const auto x = random_vector(K, std::uint32_t(K * 7 + 3));
  const PackedMatrix m(M, K, variant.format, w);
  std::vector<float> y(M, std::numeric_limits<float>::quiet_NaN());
  m.matvec(x, y, arena, variant.kernel);

  double max_abs_x = 0.0;
  for (float v : x) max_abs_x = std::max(max_abs_x, double(std::fabs(v)));
  const bool quantized_x = variant.format == WeightFormat::q8 && resolve_q8_kernel(variant.kernel) == Q8Kernel::vnni;
  std::vector<float> row(K);
  for (std::size_t r = 0; r < M; ++r) {
    m.dequantize_row(r, row);
    double ref = 0.0, mag = 0.0, sum_abs_w = 0.0;
    for (std::size_t j = 0; j < K; ++j) {
      ref += double(row[j]) * double(x[j]);
      mag += std::fabs(double(row[j]) * double(x[j]));
      sum_abs_w += std::fabs(double(row[j]));
    }
    // f32 sums of K/lanes terms per lane, then across lanes: (K/4 + 16) roundings at most
    // (4 lanes on the generic ISA); vnni adds x's rounding to 8 bits, max|x|/254 per value.
    double tol = (double(K) / 4.0 + 16.0) * 0x1p-24 * mag + 1e-30;
    if (quantized_x) tol += sum_abs_w * max_abs_x / 254.0 * 1.0001 + 4 * 0x1p-24 * mag;
    ASSERT_NEAR(y[r], ref, tol) << "row=" << r << ctx;
  }
}

// One test per (compiled ISA, format/kernel): forces the ISA for its duration and skips,
// naming what is missing, when this CPU cannot run it.
class PackedMatrixIsa : public ::testing::TestWithParam<std::tuple<Isa, Variant>> {
 protected:
  void SetUp() override {
    const auto [isa, variant] = GetParam();
    if (!cpu_supports(isa)) GTEST_SKIP() << "ISA " << to_string(isa) << " is compiled but this CPU cannot run it";
    force_isa(isa);
    if (variant.format == WeightFormat::q8 && variant.kernel == Q8Kernel::vnni && !cpu_supports_vnni())
      GTEST_SKIP() << "q8 vnni needs AVX512-VNNI, which this CPU lacks";
  }
  void TearDown() override { force_isa(std::nullopt); }
};

TEST_P(PackedMatrixIsa, MatchesDoubleReference) {
  const auto [isa, variant] = GetParam();
  tbb::task_arena two(2);
  for (const Case& c : kShapes) {
    check_matvec(isa, variant, c, nullptr);
    check_matvec(isa, variant, c, &two);
  }
}

// The vnni kernel exists only in the avx512 ISA: other ISAs get no vnni case at all.
std::vector<std::tuple<Isa, Variant>> isa_variants() {
  std::vector<std::tuple<Isa, Variant>> out;
  for (const Isa isa : compiled_isas())
    for (const Variant& v : kVariants)
      if (!(v.format == WeightFormat::q8 && v.kernel == Q8Kernel::vnni) || isa == Isa::avx512) out.emplace_back(isa, v);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Isa, PackedMatrixIsa, ::testing::ValuesIn(isa_variants()),
                         [](const ::testing::TestParamInfo<std::tuple<Isa, Variant>>& info) {
                           return std::string(to_string(std::get<0>(info.param))) + "_" +
                                  std::get<1>(info.param).name();
                         });

TEST(PackedMatrix, StoredWeightsAreTheRoundedInputs) {
  const std::size_t M = 9, K = 77;
  const auto w = random_vector(M * K, 5);
  std::vector<float> row(K);
  const PackedMatrix q8(M, K, WeightFormat::q8, w);
  const PackedMatrix bf(M, K, WeightFormat::bf16, w);
  for (std::size_t r = 0; r < M; ++r) {
    float max_abs = 0.0f;
    for (std::size_t j = 0; j < K; ++j) max_abs = std::max(max_abs, std::fabs(w[r * K + j]));
    q8.dequantize_row(r, row);
    for (std::size_t j = 0; j < K; ++j)
      ASSERT_NEAR(row[j], w[r * K + j], max_abs / 254.0f * 1.0001f) << "q8 r=" << r << " j=" << j;
    bf.dequantize_row(r, row);
    for (std::size_t j = 0; j < K; ++j)
      ASSERT_NEAR(row[j], w[r * K + j], std::fabs(w[r * K + j]) * 0x1p-8f) << "bf16 r=" << r << " j=" << j;
  }
  // 1 byte per weight (K padded to 64) plus scale and sum per row (M padded to 8).
  EXPECT_EQ(q8.bytes(), 16u * 128u + 16u * 8u);
  EXPECT_EQ(bf.bytes(), 16u * 96u * 2u);
}

// The same inputs give the same bits whatever the thread count (each row is summed by one
// thread in a fixed order), for a fixed ISA and kernel.
TEST(PackedMatrix, DeterministicAcrossThreadCounts) {
  const std::size_t M = 1000, K = 999;
  const auto w = random_vector(M * K, 11, 0.03f);
  const auto x = random_vector(K, 12);
  tbb::task_arena one(1), two(2);
  for (const WeightFormat f : {WeightFormat::q8, WeightFormat::bf16}) {
    const PackedMatrix m(M, K, f, w);
    for (const Q8Kernel k : {Q8Kernel::automatic, Q8Kernel::widen}) {
      std::vector<float> y1(M), y2(M);
      m.matvec(x, y1, &one, k);
      m.matvec(x, y2, &two, k);
      for (std::size_t r = 0; r < M; ++r)
        ASSERT_EQ(y1[r], y2[r]) << "r=" << r << " format=" << to_string(f) << " kernel=" << to_string(k);
    }
  }
}

TEST(PackedMatrix, RejectsBadArguments) {
  const std::vector<float> w(12, 1.0f);
  EXPECT_THROW(PackedMatrix(0, 4, WeightFormat::q8, std::span<const float>{}), Error);
  EXPECT_THROW(PackedMatrix(3, 5, WeightFormat::q8, w), Error);  // 12 values for 3 x 5
  EXPECT_THROW(PackedMatrix(1, (std::size_t{1} << 20) + 1, WeightFormat::q8,
                            [](std::size_t, std::span<float> out) { std::fill(out.begin(), out.end(), 0.0f); }),
               Error);
  std::vector<float> bad = w;
  bad[7] = std::numeric_limits<float>::infinity();
  try {
    PackedMatrix(3, 4, WeightFormat::bf16, bad);
    FAIL() << "non-finite weight accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::non_finite_input);
  }
  const PackedMatrix m(3, 4, WeightFormat::q8, w);
  std::vector<float> x(4, 1.0f), y(3), y_short(2), x_long(5);
  EXPECT_THROW(m.matvec(x_long, y), Error);
  EXPECT_THROW(m.matvec(x, y_short), Error);
  std::vector<float> row(3);
  EXPECT_THROW(m.dequantize_row(0, row), Error);
  EXPECT_THROW(m.dequantize_row(3, std::span<float>(x)), Error);
  if (!(active_isa() == Isa::avx512 && cpu_supports_vnni())) {
    EXPECT_THROW(m.matvec(x, y, nullptr, Q8Kernel::vnni), Error);
  } else {
    x[1] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_THROW(m.matvec(x, y, nullptr, Q8Kernel::vnni), Error);
  }
}

TEST(PackedMatrix, ParsesNames) {
  EXPECT_EQ(parse_weight_format("q8"), WeightFormat::q8);
  EXPECT_EQ(parse_weight_format("bf16"), WeightFormat::bf16);
  EXPECT_FALSE(parse_weight_format("f32"));
  EXPECT_EQ(parse_q8_kernel("auto"), Q8Kernel::automatic);
  EXPECT_EQ(parse_q8_kernel("vnni"), Q8Kernel::vnni);
  EXPECT_EQ(parse_q8_kernel("widen"), Q8Kernel::widen);
  EXPECT_FALSE(parse_q8_kernel("avx"));
  for (const Q8Kernel k : {Q8Kernel::automatic, Q8Kernel::vnni, Q8Kernel::widen})
    EXPECT_EQ(parse_q8_kernel(to_string(k)), k);
}

}  // namespace
}  // namespace sparq::e2e
