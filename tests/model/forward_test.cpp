// The C++ forward pass (LlamaModel) against a hand-computed case and an independent,
// naive double-precision forward pass; dense vs SparQ with k >= S.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "sparq/error.hpp"
#include "sparq/tools/model/llama_checkpoint.hpp"
#include "sparq/tools/model/llama_model.hpp"

namespace sparq::model {
namespace {

// Naive forward of the whole sequence in double: explicit causal softmax attention,
// RoPE from its definition. Shares nothing with LlamaModel. Returns [n][vocab].
std::vector<std::vector<double>> reference_logits(const LlamaWeights& w, const std::vector<int>& tokens) {
  const LlamaConfig& c = w.config;
  const std::size_t d = c.dim, hd = c.head_dim(), kvd = c.kv_dim(), H = c.hidden_dim, n = tokens.size();
  using Mat = std::vector<std::vector<double>>;
  auto matvec = [](const std::vector<float>& W, const std::vector<double>& x, std::size_t out) {
    std::vector<double> y(out, 0.0);
    for (std::size_t o = 0; o < out; ++o)
      for (std::size_t i = 0; i < x.size(); ++i) y[o] += double(W[o * x.size() + i]) * x[i];
    return y;
  };
  auto norm = [&](const std::vector<double>& x, const std::vector<float>& g) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double inv = 1.0 / std::sqrt(ss / double(x.size()) + double(c.norm_eps));
    std::vector<double> y(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * g[i];
    return y;
  };
  auto rope = [&](std::vector<double>& v, std::size_t pos) {
    for (std::size_t off = 0; off < v.size(); off += hd)
      for (std::size_t i = 0; i < hd / 2; ++i) {
        const double theta = double(pos) * std::pow(double(c.rope_theta), -2.0 * double(i) / double(hd));
        const double a = v[off + 2 * i], b = v[off + 2 * i + 1];
        v[off + 2 * i] = a * std::cos(theta) - b * std::sin(theta);
        v[off + 2 * i + 1] = a * std::sin(theta) + b * std::cos(theta);
      }
  };
  Mat x(n);
  for (std::size_t t = 0; t < n; ++t)
    x[t].assign(w.token_embedding.begin() + std::ptrdiff_t(tokens[t] * d),
                w.token_embedding.begin() + std::ptrdiff_t((tokens[t] + 1) * d));
  for (const LlamaLayer& L : w.layers) {
    Mat q(n), k(n), v(n);
    for (std::size_t t = 0; t < n; ++t) {
      const auto h = norm(x[t], L.attn_norm);
      q[t] = matvec(L.wq, h, d);
      k[t] = matvec(L.wk, h, kvd);
      v[t] = matvec(L.wv, h, kvd);
      rope(q[t], t);
      rope(k[t], t);
    }
    for (std::size_t t = 0; t < n; ++t) {
      std::vector<double> att(d, 0.0);
      for (std::size_t head = 0; head < c.n_heads; ++head) {
        const std::size_t kvh = head / (c.n_heads / c.n_kv_heads);
        std::vector<double> s(t + 1);
        double m = -1e300;
        for (std::size_t j = 0; j <= t; ++j) {
          double dot = 0;
          for (std::size_t i = 0; i < hd; ++i) dot += q[t][head * hd + i] * k[j][kvh * hd + i];
          s[j] = dot / std::sqrt(double(hd));
          m = std::max(m, s[j]);
        }
        double z = 0;
        for (double& e : s) z += (e = std::exp(e - m));
        for (std::size_t j = 0; j <= t; ++j)
          for (std::size_t i = 0; i < hd; ++i) att[head * hd + i] += s[j] / z * v[j][kvh * hd + i];
      }
      const auto o = matvec(L.wo, att, d);
      for (std::size_t i = 0; i < d; ++i) x[t][i] += o[i];
      const auto h = norm(x[t], L.ffn_norm);
      auto g = matvec(L.w1, h, H);
      const auto u = matvec(L.w3, h, H);
      for (std::size_t i = 0; i < H; ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      const auto down = matvec(L.w2, g, d);
      for (std::size_t i = 0; i < d; ++i) x[t][i] += down[i];
    }
  }
  Mat logits(n);
  for (std::size_t t = 0; t < n; ++t) logits[t] = matvec(w.classifier, norm(x[t], w.final_norm), c.vocab_size);
  return logits;
}

LlamaConfig small_config() {
  return {
      .dim = 128, .hidden_dim = 96, .n_layers = 2, .n_heads = 2, .n_kv_heads = 1, .vocab_size = 256, .seq_len = 128};
}

TEST(Forward, HandComputedOneLayerCase) {
  // dim 2, one head of dim 2, vocab 2, identity V and O projections, zero Q/K and MLP.
  // One token at position 0 attends only to itself, so the attention output is
  // v = rmsnorm(e) and x = e + rmsnorm(e) is parallel to e; the logits are
  // rmsnorm(x) = e / rms(e) with rms((3, 4)) = sqrt(12.5).
  LlamaWeights w;
  w.config = {.dim = 2, .hidden_dim = 1, .n_layers = 1, .n_heads = 1, .n_kv_heads = 1, .vocab_size = 2, .seq_len = 4};
  w.token_embedding = {3, 4, 1, 0};
  w.layers.push_back({.attn_norm = {1, 1},
                      .wq = {0, 0, 0, 0},
                      .wk = {0, 0, 0, 0},
                      .wv = {1, 0, 0, 1},
                      .wo = {1, 0, 0, 1},
                      .ffn_norm = {1, 1},
                      .w1 = {0, 0},
                      .w2 = {0, 0},
                      .w3 = {0, 0}});
  w.final_norm = {1, 1};
  w.classifier = {1, 0, 0, 1};
  LlamaModel m(w);
  const SeqId s = m.add_sequence();
  const std::vector<int> tok = {0};
  const auto logits = m.prefill(s, tok);
  // rms includes eps = 1e-5 in the mean of squares
  const double r0 = std::sqrt(12.5 + 1e-5);
  const double x0 = 3 + 3 / r0, x1 = 4 + 4 / r0, rx = std::sqrt((x0 * x0 + x1 * x1) / 2 + 1e-5);
  EXPECT_NEAR(logits[0], x0 / rx, 1e-6);
  EXPECT_NEAR(logits[1], x1 / rx, 1e-6);
  EXPECT_NEAR(logits[0], 3 / std::sqrt(12.5), 1e-5);
}

TEST(Forward, PrefillAndStepsMatchDoubleReference) {
  const LlamaWeights w = random_llama_weights(small_config(), 11, 0.08f);
  std::vector<int> tokens;
  for (int i = 0; i < 37; ++i) tokens.push_back((i * 37 + 11) % 256);
  const auto ref = reference_logits(w, tokens);

  LlamaModel a(w), b(w);
  const SeqId sa = a.add_sequence(), sb = b.add_sequence();
  std::vector<float> all;
  (void)a.prefill(sa, tokens, &all);
  const std::size_t V = w.config.vocab_size;
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    const auto stepped = b.step(sb, tokens[t], Dense{});
    double scale = 0;
    for (double v : ref[t]) scale = std::max(scale, std::abs(v));
    for (std::size_t v = 0; v < V; ++v) {
      ASSERT_NEAR(all[t * V + v], ref[t][v], 1e-4 * (1 + scale)) << "prefill t=" << t << " v=" << v;
      ASSERT_NEAR(stepped[v], ref[t][v], 1e-4 * (1 + scale)) << "step t=" << t << " v=" << v;
    }
  }
  EXPECT_EQ(a.length(sa), tokens.size());
}

TEST(Forward, HeaderRopeThetaNormEpsAndPrefillChunksMatchTheReference) {
  LlamaConfig c = small_config();
  c.rope_theta = 500000.0f;
  c.norm_eps = 1e-3f;
  const LlamaWeights w = random_llama_weights(c, 12, 0.08f);
  std::vector<int> tokens;
  for (int i = 0; i < 41; ++i) tokens.push_back((i * 53 + 7) % 256);
  const auto ref = reference_logits(w, tokens);
  const std::size_t V = c.vocab_size;
  for (std::size_t chunk : {std::size_t{1}, std::size_t{5}, std::size_t{16}, std::size_t{256}}) {
    LlamaModel m(w, {.prefill_chunk = chunk});
    const SeqId s = m.add_sequence();
    std::vector<float> all;
    (void)m.prefill(s, tokens, &all);
    for (std::size_t t = 0; t < tokens.size(); ++t) {
      double scale = 0;
      for (double v : ref[t]) scale = std::max(scale, std::abs(v));
      for (std::size_t v = 0; v < V; ++v)
        ASSERT_NEAR(all[t * V + v], ref[t][v], 1e-4 * (1 + scale)) << "chunk=" << chunk << " t=" << t << " v=" << v;
    }
  }
}

TEST(Forward, ABatchedStepEqualsSingleSteps) {
  const LlamaWeights w = random_llama_weights(small_config(), 13, 0.08f);
  LlamaModel m(w);
  const std::vector<int> prompt = {'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k'};
  const AttentionMethod methods[] = {Dense{}, SparQ::for_ratio(4), Baseline{.kind = BaselineKind::sink_window}};
  const SeqId base = m.add_sequence();
  (void)m.prefill(base, prompt);
  std::vector<SeqId> batched, single;
  for (std::size_t i = 0; i < 3; ++i) batched.push_back(m.fork(base)), single.push_back(m.fork(base));
  const std::size_t V = w.config.vocab_size;
  std::vector<float> logits;
  for (int step = 0; step < 6; ++step) {
    std::vector<StepItem> items;
    for (std::size_t i = 0; i < 3; ++i) items.push_back({batched[i], 'x' + step, &methods[i], nullptr});
    m.step(items, logits);
    for (std::size_t i = 0; i < 3; ++i) {
      const auto one = m.step(single[i], 'x' + step, methods[i]);
      for (std::size_t v = 0; v < V; ++v)
        ASSERT_NEAR(logits[i * V + v], one[v], 1e-5 * (1 + std::abs(one[v]))) << "method " << i << " step " << step;
    }
  }
  const StepItem twice[] = {{batched[0], 1, &methods[0], nullptr}, {batched[0], 2, &methods[0], nullptr}};
  EXPECT_THROW(m.step(twice, logits), Error);
}

std::vector<int> greedy(LlamaModel& m, const std::vector<int>& prompt, int n, const AttentionMethod& method) {
  const SeqId s = m.add_sequence();
  (void)m.prefill(s, std::span(prompt).first(prompt.size() - 1));
  std::vector<int> out;
  int next = prompt.back();
  for (int i = 0; i < n; ++i) out.push_back(next = argmax(m.step(s, next, method)));
  m.remove_sequence(s);
  return out;
}

TEST(Forward, DenseAndSparqWithKAtLeastSGiveTheSameTokens) {
  const LlamaWeights w = random_llama_weights(small_config(), 5, 0.08f);
  LlamaModel m(w);
  const std::vector<int> prompt = {'T', 'h', 'e', ' ', 'p', 'a', 's', 's', ' ', 'k', 'e', 'y', ' ', 'i', 's'};
  const auto dense = greedy(m, prompt, 24, Dense{});
  for (auto gqa : {GqaSelection::shared, GqaSelection::per_head})
    for (std::size_t r : {std::size_t{1}, std::size_t{64}}) {
      SparQ sp = SparQ::for_ratio(8);
      sp.k = 1000;  // >= S at every step
      sp.r = r;
      sp.gqa = gqa;
      EXPECT_EQ(greedy(m, prompt, 24, sp), dense) << "r=" << r << " gqa=" << to_string(gqa);
    }
  // A real compression still runs and returns valid tokens.
  const auto sparse = greedy(m, prompt, 24, SparQ::for_ratio(4));
  for (int t : sparse) EXPECT_TRUE(t >= 0 && t < 256);
}

TEST(Forward, BadTokensAreRefused) {
  LlamaModel m(random_llama_weights(small_config(), 1));
  const SeqId s = m.add_sequence();
  EXPECT_THROW((void)m.step(s, 256, Dense{}), Error);
  EXPECT_THROW((void)m.step(s, -1, Dense{}), Error);
  EXPECT_THROW((void)m.prefill(s, std::vector<int>{}), Error);
  EXPECT_EQ(m.length(s), 0u);
}

}  // namespace
}  // namespace sparq::model
