// The evaluator on synthetic traces with known answers.
#include "sparq/tools/eval/evaluator.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "sparq/error.hpp"
#include "sparq/tools/eval/synthetic_trace.hpp"

namespace sparq::eval {
namespace {

struct Trace {
  TraceManifest manifest;
  TraceLayer layer;
  LayerLoader loader() const {
    return [this](std::size_t) { return layer; };
  }
};

// One layer, 2 query heads on 1 KV head, d = 16. Every query points at the key of
// `needle` so strongly that its dense attention mass is ~1 once the needle exists.
Trace needle_trace(std::size_t positions, std::size_t prefill, std::size_t needle) {
  const std::size_t d = 16, nq = 2;
  Trace t;
  t.manifest.shape = {.layers = 1, .q_heads = nq, .kv_heads = 1, .head_dim = d};
  t.manifest.positions = positions;
  t.manifest.prefill = prefill;
  t.layer = TraceLayer{.layer = 0,
                       .positions = positions,
                       .q_heads = nq,
                       .kv_heads = 1,
                       .head_dim = d,
                       .q = std::vector<float>(positions * nq * d),
                       .k = std::vector<float>(positions * d),
                       .v = std::vector<float>(positions * d)};
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& x : t.layer.k) x = normal(rng);
  for (float& x : t.layer.v) x = normal(rng);
  std::vector<float> u(d);
  for (std::size_t i = 0; i < d; ++i) u[i] = (i % 4 == 0 ? 6.0f : 1.0f) * (i % 3 == 0 ? -1.0f : 1.0f);
  double norm2 = 0;
  for (float x : u) norm2 += x * x;
  std::copy(u.begin(), u.end(), t.layer.k.begin() + std::ptrdiff_t(needle * d));
  const double a = 30.0 / (norm2 / std::sqrt(double(d)));  // needle logit 30
  for (std::size_t p = 0; p < positions; ++p)
    for (std::size_t h = 0; h < nq; ++h)
      for (std::size_t i = 0; i < d; ++i) t.layer.q[(p * nq + h) * d + i] = float(a * u[i] * (h ? 0.9 : 1.0));
  return t;
}

const Summary& overall(const EvalResult& r, EvalMethod m, double ratio) {
  for (const auto& row : r.rows)
    if (row.method == m && row.ratio == ratio) return row.overall;
  throw std::runtime_error("no row");
}

TEST(Evaluator, EveryTopKMethodFindsTheNeedle) {
  const Trace t = needle_trace(64, 32, 10);
  EvalOptions o;
  o.ratios = {4};
  const EvalResult r = run_eval(t.manifest, t.loader(), o);
  ASSERT_EQ(r.steps.size(), 32u);
  for (EvalMethod m : kAllMethods) {
    const Summary& s = overall(r, m, 4);
    EXPECT_EQ(s.samples, 32u * 2) << to_string(m);
    if (m == EvalMethod::sink_window) {  // the needle is neither a sink nor recent
      EXPECT_LT(s.alpha_true, 0.01) << to_string(m);
      continue;
    }
    EXPECT_GT(s.alpha_true, 0.999) << to_string(m);
    EXPECT_GT(s.cosine, 0.99) << to_string(m);
    EXPECT_LT(s.rel_l2, runs_in_library(m) ? 0.1 : 1e-3) << to_string(m);
    EXPECT_EQ(s.alpha_est.has_value(), runs_in_library(m)) << to_string(m);
    if (s.alpha_est) {
      EXPECT_GT(*s.alpha_est, 0.9) << to_string(m);
    }
  }
}

TEST(Evaluator, SinkWindowKeepsANeedleAmongTheSinks) {
  const Trace t = needle_trace(64, 32, 1);
  EvalOptions o;
  o.ratios = {8};
  o.methods = {EvalMethod::sink_window};
  const EvalResult r = run_eval(t.manifest, t.loader(), o);
  EXPECT_GT(overall(r, EvalMethod::sink_window, 8).alpha_true, 0.999);
}

TEST(Evaluator, BaselinesEqualDenseWhenTheBudgetCoversTheCache) {
  // Ratio 1: r = d, so k' = S: every baseline attends over everything.
  SyntheticOptions so;
  so.shape = {.layers = 1, .q_heads = 4, .kv_heads = 2, .head_dim = 16};
  so.positions = 40;
  const SyntheticTrace s = make_synthetic_trace(so);
  EvalOptions o;
  o.ratios = {1};
  o.methods = {EvalMethod::oracle, EvalMethod::h2o, EvalMethod::sink_window};
  const EvalResult r = run_eval(
      s.manifest, [&](std::size_t l) { return s.layers[l]; }, o);
  for (const auto& row : r.rows) {
    const Summary& m = row.overall;
    EXPECT_LT(m.rel_l2, 1e-5) << to_string(row.method);
    EXPECT_NEAR(m.cosine, 1.0, 1e-9) << to_string(row.method);
    EXPECT_NEAR(m.recall, 1.0, 1e-12) << to_string(row.method);
    EXPECT_NEAR(m.alpha_true, 1.0, 1e-9) << to_string(row.method);
    EXPECT_NEAR(m.transfer, 1.0, 0.05) << to_string(row.method);
  }
}

TEST(Evaluator, EveryMethodEqualsDenseOnASinglePosition) {
  // S = 1: k = 1 >= S, so SparQ (alpha = 1) and every baseline are exact.
  const Trace t = needle_trace(1, 0, 0);
  EvalOptions o;
  o.ratios = {2, 16};
  const EvalResult r = run_eval(t.manifest, t.loader(), o);
  for (const auto& row : r.rows) {
    EXPECT_LT(row.overall.rel_l2, 1e-6) << to_string(row.method) << " c=" << row.ratio;
    EXPECT_NEAR(row.overall.cosine, 1.0, 1e-9) << to_string(row.method);
    EXPECT_NEAR(row.overall.recall, 1.0, 1e-12) << to_string(row.method);
    if (row.overall.alpha_est) {
      EXPECT_DOUBLE_EQ(*row.overall.alpha_est, 1.0) << to_string(row.method);
    }
  }
}

TEST(Evaluator, BytesAreEqualizedAndLayersAndStepsSelected) {
  SyntheticOptions so;
  so.shape = {.layers = 3, .q_heads = 4, .kv_heads = 2, .head_dim = 32};
  so.positions = 256;
  const SyntheticTrace s = make_synthetic_trace(so);
  EvalOptions o;
  o.ratios = {4, 8};
  o.layers = {2, 0};
  o.steps = 5;
  o.methods = {EvalMethod::sparq, EvalMethod::oracle, EvalMethod::h2o};
  const EvalResult r = run_eval(
      s.manifest, [&](std::size_t l) { return s.layers.at(l); }, o);
  EXPECT_EQ(r.layers, (std::vector<std::size_t>{2, 0}));
  ASSERT_EQ(r.steps.size(), 5u);
  EXPECT_EQ(r.steps.front(), s.manifest.prefill);
  EXPECT_EQ(r.steps.back(), 255u);
  ASSERT_EQ(r.rows.size(), 6u);
  // Dense moves 2·S·d·4 bytes per KV head; S averages over the steps.
  double mean_s = 0;
  for (auto p : r.steps) mean_s += double(p + 1) / double(r.steps.size());
  EXPECT_NEAR(r.dense_bytes_overall, 2 * mean_s * 32 * 4 * 2, 0.02 * r.dense_bytes_overall);
  for (const auto& row : r.rows) {
    EXPECT_EQ(row.per_layer.size(), 2u);
    EXPECT_EQ(row.overall.samples, 2u * 5 * 4);
    // Equal bytes: every method's transfer is close to the nominal ratio.
    EXPECT_NEAR(row.overall.transfer, row.ratio, 0.1 * row.ratio) << to_string(row.method) << " c=" << row.ratio;
  }
}

TEST(Evaluator, PerHeadSummariesAverageToTheLayer) {
  SyntheticOptions so;
  so.shape = {.layers = 2, .q_heads = 4, .kv_heads = 2, .head_dim = 32};
  so.positions = 200;
  const SyntheticTrace s = make_synthetic_trace(so);
  EvalOptions o;
  o.ratios = {8};
  o.steps = 6;
  o.per_head = true;
  o.methods = {EvalMethod::sparq, EvalMethod::sparq_per_head, EvalMethod::h2o, EvalMethod::sink_window};
  const EvalResult r = run_eval(
      s.manifest, [&](std::size_t l) { return s.layers.at(l); }, o);
  for (const auto& row : r.rows) {
    ASSERT_EQ(row.per_head.size(), 2u);
    for (std::size_t li = 0; li < 2; ++li) {
      ASSERT_EQ(row.per_head[li].size(), 4u);
      double rel = 0, cos = 0, recall = 0;
      std::size_t samples = 0;
      for (const Summary& h : row.per_head[li]) {
        EXPECT_EQ(h.samples, 6u) << to_string(row.method);  // one per evaluated step
        rel += h.rel_l2 / 4, cos += h.cosine / 4, recall += h.recall / 4, samples += h.samples;
      }
      EXPECT_EQ(samples, row.per_layer[li].samples);
      EXPECT_NEAR(rel, row.per_layer[li].rel_l2, 1e-12) << to_string(row.method) << " layer " << li;
      EXPECT_NEAR(cos, row.per_layer[li].cosine, 1e-12);
      EXPECT_NEAR(recall, row.per_layer[li].recall, 1e-12);
    }
  }
  o.per_head = false;
  EXPECT_TRUE(run_eval(
                  s.manifest, [&](std::size_t l) { return s.layers.at(l); }, o)
                  .rows[0]
                  .per_head.empty());
}

TEST(Evaluator, SelectSteps) {
  TraceManifest m;
  m.shape = {.layers = 1, .q_heads = 1, .kv_heads = 1, .head_dim = 4};
  m.positions = 10;
  m.prefill = 6;
  EXPECT_EQ(select_steps(m, 0), (std::vector<std::size_t>{6, 7, 8, 9}));
  EXPECT_EQ(select_steps(m, 9), (std::vector<std::size_t>{6, 7, 8, 9}));
  EXPECT_EQ(select_steps(m, 2), (std::vector<std::size_t>{6, 9}));
  EXPECT_EQ(select_steps(m, 1), (std::vector<std::size_t>{9}));
}

TEST(Evaluator, BadOptions) {
  const Trace t = needle_trace(8, 4, 1);
  auto run = [&](EvalOptions o) { return run_eval(t.manifest, t.loader(), o); };
  EvalOptions o;
  o.ratios = {0.5};
  EXPECT_THROW(run(o), Error);
  o.ratios = {};
  EXPECT_THROW(run(o), Error);
  o = {};
  o.layers = {1};
  EXPECT_THROW(run(o), Error);
  o = {};
  o.methods = {};
  EXPECT_THROW(run(o), Error);
}

}  // namespace
}  // namespace sparq::eval
