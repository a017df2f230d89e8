// The equal-bytes baselines inside the model runtime (oracle, H2O, sink + window) against
// naive double-precision attention over the positions lib/eval chooses; H2O's prefill
// scores against a naive column sum of the causal attention; method names.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "eval/equal_bytes.hpp"
#include "eval/h2o.hpp"
#include "eval/oracle.hpp"
#include "eval/sink_window.hpp"
#include "model/attention_mass.hpp"
#include "model/baseline_attention.hpp"
#include "sparq/error.hpp"
#include "sparq/tools/model/attention_methods.hpp"
#include "sparq/tools/model/llama_model.hpp"

namespace sparq::model {
namespace {

constexpr std::size_t kD = 16, kKv = 2, kG = 2, kHeads = kKv * kG;

struct Fixture {
  explicit Fixture(KeyLayout layouts = KeyLayout::both)
      : cache({.layers = 1,
               .kv_heads = kKv,
               .head_dim = kD,
               .dtype = DType::f32,
               .block_tokens = 8,
               .capacity_tokens = 1024,
               .layouts = layouts}) {}
  KVCache cache;
  SeqId seq = cache.add_sequence();
  std::vector<float> k, v;  // [S][kv][d] as appended
  std::mt19937 gen{7};
  std::normal_distribution<float> normal{0.0f, 1.0f};

  void append(std::size_t n) {
    std::vector<float> kk(n * kKv * kD), vv(kk.size());
    for (float& x : kk) x = normal(gen);
    for (float& x : vv) x = normal(gen);
    cache.append(seq, 0, kk, vv, n);
    k.insert(k.end(), kk.begin(), kk.end());
    v.insert(v.end(), vv.begin(), vv.end());
  }
  std::vector<float> random_q(float scale = 1.0f) {
    std::vector<float> q(kHeads * kD);
    for (float& x : q) x = scale * normal(gen);
    return q;
  }
  // Exact softmax attention of head h over `pos` (double); its probabilities in `probs`.
  std::vector<double> attend(const std::vector<float>& q, std::size_t h, const std::vector<std::uint32_t>& pos,
                             std::vector<double>* probs = nullptr) const {
    const std::size_t kh = h / kG;
    std::vector<double> l(pos.size());
    for (std::size_t n = 0; n < pos.size(); ++n) {
      double dot = 0;
      for (std::size_t i = 0; i < kD; ++i) dot += double(q[h * kD + i]) * k[(pos[n] * kKv + kh) * kD + i];
      l[n] = dot / std::sqrt(double(kD));
    }
    const double m = *std::max_element(l.begin(), l.end());
    double z = 0;
    for (double& x : l) z += (x = std::exp(x - m));
    std::vector<double> y(kD, 0.0);
    for (std::size_t n = 0; n < pos.size(); ++n) {
      l[n] /= z;
      for (std::size_t i = 0; i < kD; ++i) y[i] += l[n] * v[(pos[n] * kKv + kh) * kD + i];
    }
    if (probs) *probs = l;
    return y;
  }
  std::size_t length() const { return k.size() / (kKv * kD); }
};

void expect_close(const std::vector<float>& out, std::size_t h, const std::vector<double>& want, const char* what) {
  for (std::size_t i = 0; i < kD; ++i)
    EXPECT_NEAR(out[h * kD + i], want[i], 2e-5 * (1 + std::abs(want[i]))) << what << " head " << h << " i " << i;
}

std::vector<std::uint32_t> all_positions(std::size_t S) {
  std::vector<std::uint32_t> p(S);
  std::iota(p.begin(), p.end(), 0u);
  return p;
}

TEST(RuntimeBaselines, OracleAndWindowAttendOverLibEvalsPositions) {
  for (KeyLayout layouts : {KeyLayout::both, KeyLayout::s_major}) {  // d-major scores, or rows and sgemm
    SCOPED_TRACE(std::string(to_string(layouts)));
    Fixture f(layouts);
    f.append(101);
    const auto q = f.random_q(3.0f);
    const std::size_t S = f.length(), budget = eval::equal_bytes_budget(kD, S, 4.0);
    ASSERT_LT(budget, S);
    std::vector<float> out(kHeads * kD);
    std::size_t rows[kKv];
    baseline_attention(f.cache, f.seq, 0, {.kind = BaselineKind::oracle, .ratio = 4.0}, q, out, kHeads, nullptr, rows);
    for (std::size_t kh = 0; kh < kKv; ++kh) {
      std::vector<double> mass(S, 0.0), p;
      for (std::size_t h = kh * kG; h < (kh + 1) * kG; ++h) {
        (void)f.attend(q, h, all_positions(S), &p);
        for (std::size_t j = 0; j < S; ++j) mass[j] += p[j];
      }
      const auto pos = eval::oracle_positions(mass, budget);
      EXPECT_EQ(rows[kh], budget);
      for (std::size_t h = kh * kG; h < (kh + 1) * kG; ++h) expect_close(out, h, f.attend(q, h, pos), "oracle");
    }
    baseline_attention(f.cache, f.seq, 0, {.kind = BaselineKind::sink_window, .ratio = 4.0, .sinks = 3}, q, out, kHeads,
                       nullptr);
    const auto win = eval::sink_window_positions(S, budget, 3);
    for (std::size_t h = 0; h < kHeads; ++h) expect_close(out, h, f.attend(q, h, win), "window");
  }
}

TEST(RuntimeBaselines, H2OEvictsAndAccumulatesLikeLibEval) {
  Fixture f;
  f.append(60);
  std::vector<eval::H2OCache> state(kKv), model(kKv);
  for (std::size_t kh = 0; kh < kKv; ++kh)
    for (std::size_t j = 0; j < 60; ++j) {
      const double s = double((j * 37 + kh) % 11);  // prefill scores with ties
      state[kh].add(s);
      model[kh].add(s);
    }
  std::vector<float> out(kHeads * kD);
  for (int step = 0; step < 5; ++step) {
    f.append(1);
    const auto q = f.random_q(2.0f);
    const std::size_t budget = eval::equal_bytes_budget(kD, f.length(), 8.0);
    baseline_attention(f.cache, f.seq, 0, {.kind = BaselineKind::h2o, .ratio = 8.0}, q, out, kHeads, &state);
    for (std::size_t kh = 0; kh < kKv; ++kh) {
      model[kh].add();
      model[kh].evict_to(budget);
      std::vector<double> group(model[kh].kept().size(), 0.0), p;
      for (std::size_t h = kh * kG; h < (kh + 1) * kG; ++h) {
        expect_close(out, h, f.attend(q, h, model[kh].kept(), &p), "h2o");
        for (std::size_t i = 0; i < p.size(); ++i) group[i] += p[i];
      }
      model[kh].accumulate(group);
      ASSERT_EQ(state[kh].kept(), model[kh].kept()) << "step " << step;
      for (std::size_t i = 0; i < group.size(); ++i)
        EXPECT_NEAR(state[kh].scores()[i], model[kh].scores()[i], 1e-5) << "step " << step;
    }
  }
}

TEST(RuntimeBaselines, PrefillAttentionMassIsTheCausalColumnSum) {
  Fixture f;
  f.append(50);  // a chunk of 50 queries at positions 0..49, then 23 more at 50..72
  std::vector<std::vector<double>> mass;
  std::vector<float> q1(50 * kHeads * kD), q2(23 * kHeads * kD);
  for (float& x : q1) x = 2.0f * f.normal(f.gen);
  add_attention_mass(f.cache, f.seq, 0, q1, 50, kHeads, mass);
  f.append(23);
  for (float& x : q2) x = 2.0f * f.normal(f.gen);
  add_attention_mass(f.cache, f.seq, 0, q2, 23, kHeads, mass);
  std::vector<std::vector<double>> want(kKv, std::vector<double>(73, 0.0));
  for (std::size_t t = 0; t < 73; ++t) {
    const std::vector<float> qt = t < 50 ? std::vector<float>(q1.begin() + std::ptrdiff_t(t * kHeads * kD),
                                                              q1.begin() + std::ptrdiff_t((t + 1) * kHeads * kD))
                                         : std::vector<float>(q2.begin() + std::ptrdiff_t((t - 50) * kHeads * kD),
                                                              q2.begin() + std::ptrdiff_t((t - 49) * kHeads * kD));
    std::vector<double> p;
    for (std::size_t h = 0; h < kHeads; ++h) {
      (void)f.attend(qt, h, all_positions(t + 1), &p);
      for (std::size_t j = 0; j <= t; ++j) want[h / kG][j] += p[j];
    }
  }
  for (std::size_t kh = 0; kh < kKv; ++kh) {
    ASSERT_EQ(mass[kh].size(), 73u);
    for (std::size_t j = 0; j < 73; ++j) EXPECT_NEAR(mass[kh][j], want[kh][j], 1e-5 * (1 + want[kh][j])) << j;
  }
}

TEST(RuntimeBaselines, FastExpIsAccurate) {
  for (float x = -90.0f; x <= 0.0f; x += 0.0137f) {
    const double want = std::exp(double(std::max(x, -87.0f)));
    EXPECT_NEAR(exp_nonpositive(x), want, 3e-7 * want) << x;
  }
  EXPECT_EQ(exp_nonpositive(0.0f), 1.0f);
}

LlamaConfig small_config() {
  return {
      .dim = 128, .hidden_dim = 96, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .vocab_size = 256, .seq_len = 256};
}

std::vector<std::vector<int>> greedy_all(LlamaModel& m, const std::vector<int>& prompt, std::size_t n,
                                         const std::vector<NamedMethod>& methods) {
  const SeqId base = m.add_sequence();
  (void)m.prefill(base, std::span(prompt).first(prompt.size() - 1));
  std::vector<SeqId> seqs;
  for (std::size_t i = 0; i < methods.size(); ++i) seqs.push_back(m.fork(base));
  std::vector<std::vector<int>> out(methods.size());
  std::vector<int> next(methods.size(), prompt.back());
  std::vector<float> logits;
  for (std::size_t t = 0; t < n; ++t) {
    std::vector<StepItem> items;
    for (std::size_t i = 0; i < methods.size(); ++i) items.push_back({seqs[i], next[i], &methods[i].method, nullptr});
    m.step(items, logits);
    for (std::size_t i = 0; i < methods.size(); ++i)
      out[i].push_back(next[i] = argmax(std::span(logits).subspan(i * 256, 256)));
  }
  for (SeqId s : seqs) m.remove_sequence(s);
  m.remove_sequence(base);
  return out;
}

TEST(RuntimeBaselines, AtRatioOneEveryBaselineIsDense) {
  LlamaModel m(random_llama_weights(small_config(), 21, 0.1f), {.attention_mass = true});
  std::vector<int> prompt;
  for (int i = 0; i < 70; ++i) prompt.push_back("the pass key is 4 and "[i % 22]);
  const double one[] = {1.0};
  const auto methods = parse_attention_methods("dense,oracle,h2o,window", one);
  const auto out = greedy_all(m, prompt, 20, methods);
  for (std::size_t i = 1; i < out.size(); ++i) EXPECT_EQ(out[i], out[0]) << methods[i].name;
  // A real compression runs too.
  const double eight[] = {8.0};
  for (const auto& o : greedy_all(m, prompt, 10, parse_attention_methods("all", eight)))
    for (int t : o) EXPECT_TRUE(t >= 0 && t < 256);
}

TEST(RuntimeBaselines, H2ONeedsThePrefillScores) {
  LlamaModel m(random_llama_weights(small_config(), 22, 0.1f));
  const SeqId s = m.add_sequence();
  (void)m.prefill(s, std::vector<int>{1, 2, 3});
  try {
    (void)m.step(s, 4, Baseline{.kind = BaselineKind::h2o});
    ADD_FAILURE() << "H2O ran without prefill scores";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("attention_mass"), std::string::npos) << e.what();
  }
  EXPECT_EQ(m.length(s), 3u);  // refused before anything was appended
}

TEST(AttentionMethods, NamesRatiosOverridesAndErrors) {
  const double r[] = {2.0, 8.0};
  SparQOverrides ov;
  ov.r = 3;
  ov.reallocation = false;
  ov.sinks = 2;
  auto m = parse_attention_methods("dense,sparq:4,sparq-per-head-real,h2o:2.5,sink-window:16", r, ov);
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(m[0].name, "dense");
  EXPECT_EQ(m[1].name, "sparq:4");
  const auto& s1 = std::get<SparQ>(m[1].method);
  EXPECT_EQ(s1.r, 3u);
  EXPECT_EQ(s1.reallocation, false);
  EXPECT_EQ(s1.gqa, GqaSelection::shared);
  EXPECT_EQ(m[2].name, "sparq-per-head-real:2");
  EXPECT_EQ(m[3].name, "sparq-per-head-real:8");
  const auto& s3 = std::get<SparQ>(m[3].method);
  EXPECT_EQ(s3.gqa, GqaSelection::per_head);
  EXPECT_EQ(s3.reallocation, true);  // the name wins over the override
  EXPECT_EQ(m[4].name, "h2o:2.5");
  EXPECT_EQ(std::get<Baseline>(m[4].method).kind, BaselineKind::h2o);
  EXPECT_EQ(m[5].name, "window:16");
  EXPECT_EQ(std::get<Baseline>(m[5].method).sinks, 2u);
  EXPECT_TRUE(needs_attention_mass(m));
  EXPECT_EQ(parse_attention_methods("all", r).size(), 1u + 7u * 2u);
  for (const char* bad : {"", "dense,,sparq", "sparq:0.5", "sparq:x", "magic:8", "dense,dense", "oracle:inf"})
    EXPECT_THROW((void)parse_attention_methods(bad, r), Error) << bad;
}

}  // namespace
}  // namespace sparq::model
