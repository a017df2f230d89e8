// Finite inputs near f32's limit (kernels/softmax_range.hpp): value sums that would
// overflow stay finite, a logit beyond f32's range takes all the weight (or none), and a
// logit that is NaN in f32 is reported as an error, never returned as a silent NaN. On
// every compiled ISA, dense and SparQ, against the double-precision reference.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernel_test_util.hpp"
#include "reference/reference.hpp"
#include "sparq/decode.hpp"
#include "sparq/error.hpp"

namespace sparq {
namespace {

using test::IsaTest;

constexpr std::size_t kQ = 8, kKv = 2, kD = 64, kS = 2500, kG = kQ / kKv;

struct Problem {
  std::unique_ptr<KVCache> cache;
  SeqId seq = 0;
  std::vector<float> q;
};

// f32 cache, one layer, kS positions of N(0, 1) keys and values, then `edit` applied to
// the keys and values (layout [S][kv][d]) before they are appended.
template <class Edit>
Problem make_problem(Edit edit) {
  Problem p;
  p.cache = std::make_unique<KVCache>(
      CacheConfig{.kv_heads = kKv, .head_dim = kD, .dtype = DType::f32, .block_tokens = 64, .capacity_tokens = 4096});
  p.seq = p.cache->add_sequence();
  auto k = test::normal_floats(kS * kKv * kD, 11), v = test::normal_floats(kS * kKv * kD, 12);
  p.q = test::normal_floats(kQ * kD, 13);
  edit(k, v, p.q);
  p.cache->append(p.seq, 0, k, v, kS);
  return p;
}

float& at(std::vector<float>& x, std::size_t pos, std::size_t head, std::size_t i) {
  return x[(pos * kKv + head) * kD + i];
}

std::vector<float> run(const Problem& p, const Method& m) {
  std::vector<float> out(kQ * kD, -1.0f);
  const DecodeItem item{.seq = p.seq, .q = p.q, .out = out};
  decode(*p.cache, 0, m, {&item, 1});
  return out;
}

// Dense and SparQ with k >= S (exact) against the double reference, every head.
void expect_exact(const Problem& p, const std::string& isa) {
  const auto ref = reference::dense_decode(p.cache->view(p.seq, 0), p.q, 0, kKv, kG, 1.0 / std::sqrt(double(kD)));
  SparQ all = SparQ::for_ratio(8);
  all.k = kS;
  for (const Method& m : {Method{Dense{}}, Method{all}}) {
    const std::vector<float> out = run(p, m);
    for (std::size_t h = 0; h < kQ; ++h) {
      const std::span<const float> got(out.data() + h * kD, kD);
      const std::span<const double> want(ref.out.data() + h * kD, kD);
      for (float x : got) ASSERT_TRUE(std::isfinite(x)) << "head " << h << " isa=" << isa;
      EXPECT_LE(test::rel_error(got, want), 1e-5) << "head " << h << " method " << m.index() << " isa=" << isa;
    }
  }
}

class ExtremeValues : public IsaTest {};

TEST_P(ExtremeValues, ValueSumsBeyondF32StayFinite) {
  // Every position's value component 3 of KV head 0 at 3e38: the softmax-weighted sum of
  // 2500 of them overflows f32 unless kept scaled; the weighted mean is 3e38.
  const Problem p = make_problem([](auto&, auto& v, auto&) {
    for (std::size_t j = 0; j < kS; ++j) at(v, j, 0, 3) = 3e38f;
  });
  expect_exact(p, isa());
}

TEST_P(ExtremeValues, TwoHugeValuesUnderUniformWeights) {
  // The case of the report: q = 0 (uniform weights) and two values of 3e38.
  const Problem p = make_problem([](auto&, auto& v, auto& q) {
    std::fill(q.begin(), q.end(), 0.0f);
    at(v, 10, 0, 3) = 3e38f;
    at(v, 11, 0, 3) = 3e38f;
  });
  expect_exact(p, isa());
}

TEST_P(ExtremeValues, LogitBeyondF32TakesAllTheWeight) {
  // q·k of position 777 with KV head 0 is ~5e38 in the log2 domain: beyond f32. Exactly,
  // every other position's weight is exp(-huge) = 0, so heads 0-3 output V[777].
  const Problem p = make_problem([](auto& k, auto&, auto& q) {
    at(k, 777, 0, 5) = 3e38f;
    for (std::size_t h = 0; h < kQ; ++h) q[h * kD + 5] = 10.0f;
  });
  expect_exact(p, isa());
  // SparQ at ratio 8 ranks the position first and fetches it: the same output.
  SparQ m = SparQ::for_ratio(8);
  m.reallocation = false;
  const std::vector<float> out = run(p, m);
  std::vector<float> v777(kD);
  p.cache->read_value(p.seq, 0, 0, 777, v777);
  for (std::size_t h = 0; h < kG; ++h)
    for (std::size_t i = 0; i < kD; ++i)
      EXPECT_FLOAT_EQ(out[h * kD + i], v777[i]) << "head " << h << " i " << i << " isa=" << isa();
}

TEST_P(ExtremeValues, LogitBelowF32GetsNoWeight) {
  const Problem p = make_problem([](auto& k, auto&, auto& q) {
    at(k, 777, 1, 5) = -3e38f;
    for (std::size_t h = 0; h < kQ; ++h) q[h * kD + 5] = 10.0f;
  });
  expect_exact(p, isa());
}

TEST_P(ExtremeValues, NanLogitIsAnErrorNotASilentNan) {
  // +3e38 and -3e38 in one key: in f32 the products are +inf and -inf and the dot product
  // is NaN (exactly it is a modest number). decode() must say so rather than return NaN
  // or silently drop the position.
  const Problem p = make_problem([](auto& k, auto&, auto& q) {
    at(k, 100, 0, 5) = 3e38f;
    at(k, 100, 0, 9) = -3e38f;
    for (std::size_t h = 0; h < kQ; ++h) q[h * kD + 5] = q[h * kD + 9] = 10.0f;
  });
  SparQ all = SparQ::for_ratio(8);
  all.k = kS;
  for (const Method& m : {Method{Dense{}}, Method{all}}) {
    try {
      (void)run(p, m);
      ADD_FAILURE() << "no error, method " << m.index() << " isa=" << isa();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::non_finite_input) << e.what();
      EXPECT_NE(std::string(e.what()).find("not finite"), std::string::npos) << e.what();
    }
  }
}

TEST_P(ExtremeValues, CausalPrefillKeepsValueSumsFinite) {
  const Problem p = make_problem([](auto&, auto& v, auto&) {
    for (std::size_t j = 0; j < kS; ++j) at(v, j, 1, 7) = -3e38f;
  });
  constexpr std::size_t n_new = 3;
  const auto q = test::normal_floats(n_new * kQ * kD, 21);
  std::vector<float> out(q.size());
  decode_causal(*p.cache, 0, p.seq, q, out, n_new);
  for (std::size_t i = 0; i < n_new; ++i)
    for (std::size_t h = kG; h < kQ; ++h)  // heads of KV head 1: component 7 is -3e38 exactly
      EXPECT_NEAR(out[(i * kQ + h) * kD + 7], -3e38f, 3e38 * 1e-5)
          << "query " << i << " head " << h << " isa=" << isa();
}

SPARQ_INSTANTIATE_FOR_EACH_ISA(ExtremeValues);

}  // namespace
}  // namespace sparq
