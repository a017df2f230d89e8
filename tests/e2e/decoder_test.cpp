// One decode step of a tiny random model (sparq/tools/e2e/decoder.hpp) against a
// double-precision reference written here from the decoder's documented math: RMSNorm,
// matvecs over the stored (dequantized) weights, RoPE on adjacent pairs, dense attention
// over the keys and values the cache holds, SwiGLU, residuals, classifier.
#include "sparq/tools/e2e/decoder.hpp"

#include <gtest/gtest.h>
#include <oneapi/tbb/task_arena.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "sparq/error.hpp"
#include "sparq/tools/e2e/bench_model.hpp"

namespace sparq::e2e {
namespace {

using Vec = std::vector<double>;

Vec matvec(const PackedMatrix& m, const Vec& x) {
  Vec y(m.rows());
  std::vector<float> row(m.cols());
  for (std::size_t r = 0; r < m.rows(); ++r) {
    m.dequantize_row(r, row);
    double s = 0.0;
    for (std::size_t j = 0; j < m.cols(); ++j) s += double(row[j]) * x[j];
    y[r] = s;
  }
  return y;
}

Vec rmsnorm(const Vec& x, std::span<const float> w, double eps) {
  double ss = 0.0;
  for (double v : x) ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / double(x.size()) + eps);
  Vec y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * double(w[i]);
  return y;
}

void rope(double* v, std::size_t heads, std::size_t hd, std::size_t pos, double base) {
  for (std::size_t h = 0; h < heads; ++h)
    for (std::size_t i = 0; i < hd / 2; ++i) {
      const double angle = double(pos) * std::pow(base, -2.0 * double(i) / double(hd));
      double* p = v + h * hd + 2 * i;
      const double a = p[0], b = p[1];
      p[0] = a * std::cos(angle) - b * std::sin(angle);
      p[1] = a * std::sin(angle) + b * std::cos(angle);
    }
}

// The logits of one step at position S (the cache holds S tokens before it, S+1 after;
// positions < S are read back from the cache, position S is the reference's own k, v).
Vec reference_step(RandomDecoder& model, const std::vector<float>& x_in, std::size_t S) {
  const DecoderConfig& c = model.config();
  const LayerShape& s = c.shape;
  const std::size_t hd = s.head_dim, g = s.q_heads / s.kv_heads;
  Vec x(x_in.begin(), x_in.end());
  std::vector<float> row(hd);
  for (std::size_t l = 0; l < c.layers; ++l) {
    const auto& L = model.layer(l);
    Vec qkv = matvec(L.wqkv, rmsnorm(x, L.attn_norm, s.norm_eps));
    double* q = qkv.data();
    double* k = q + s.q_dim();
    double* v = k + s.kv_dim();
    rope(q, s.q_heads, hd, S, s.rope_base);
    rope(k, s.kv_heads, hd, S, s.rope_base);
    Vec att(s.q_dim(), 0.0);
    for (std::size_t h = 0; h < s.q_heads; ++h) {
      const std::size_t kvh = h / g;
      Vec scores(S + 1);
      std::vector<Vec> values(S + 1, Vec(hd));
      for (std::size_t j = 0; j <= S; ++j) {
        Vec key(hd);
        if (j < S) {
          model.cache().read_key(model.sequence(), l, kvh, j, row);
          for (std::size_t i = 0; i < hd; ++i) key[i] = row[i];
          model.cache().read_value(model.sequence(), l, kvh, j, row);
          for (std::size_t i = 0; i < hd; ++i) values[j][i] = row[i];
        } else {
          for (std::size_t i = 0; i < hd; ++i) key[i] = k[kvh * hd + i], values[j][i] = v[kvh * hd + i];
        }
        double dot = 0.0;
        for (std::size_t i = 0; i < hd; ++i) dot += q[h * hd + i] * key[i];
        scores[j] = dot / std::sqrt(double(hd));
      }
      double mx = scores[0], sum = 0.0;
      for (double sc : scores) mx = std::max(mx, sc);
      for (double& sc : scores) sum += (sc = std::exp(sc - mx));
      for (std::size_t j = 0; j <= S; ++j)
        for (std::size_t i = 0; i < hd; ++i) att[h * hd + i] += scores[j] / sum * values[j][i];
    }
    const Vec o = matvec(L.wo, att);
    for (std::size_t i = 0; i < s.d_model; ++i) x[i] += o[i];
    const Vec gu = matvec(L.w_gate_up, rmsnorm(x, L.ffn_norm, s.norm_eps));
    Vec h(s.ffn);
    for (std::size_t i = 0; i < s.ffn; ++i) h[i] = gu[i] / (1.0 + std::exp(-gu[i])) * gu[s.ffn + i];
    const Vec down = matvec(L.w_down, h);
    for (std::size_t i = 0; i < s.d_model; ++i) x[i] += down[i];
  }
  return matvec(*model.classifier(), rmsnorm(x, model.final_norm(), s.norm_eps));
}

DecoderConfig tiny_config(WeightFormat f) {
  return {.shape = *shape_by_name("tiny"),
          .layers = 2,
          .weights = f,
          .q8_kernel = Q8Kernel::widen,  // f32 FMAs on x as given: the reference's x
          .classifier = true,
          .kv_dtype = DType::f32,
          .block_tokens = 16,
          .capacity_tokens = 64,
          .seed = 3};
}

std::vector<float> random_input(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}

TEST(RandomDecoder, DenseStepMatchesDoubleReference) {
  for (const WeightFormat f : {WeightFormat::q8, WeightFormat::bf16}) {
    RandomDecoder model(tiny_config(f));
    const std::size_t S = 37;  // over two blocks of 16 and a partial one
    model.fill(S);
    ASSERT_EQ(model.cache().length(model.sequence(), 0), S);
    const auto x = random_input(model.config().shape.d_model, 9);
    std::vector<float> logits(model.config().shape.vocab);
    tbb::task_arena two(2);
    const StepTimes t = model.step(x, Dense{}, &two, logits);
    EXPECT_EQ(model.cache().length(model.sequence(), 1), S + 1);
    EXPECT_GT(t.total, 0.0);
    const Vec ref = reference_step(model, x, S);
    double max_ref = 0.0;
    for (double r : ref) max_ref = std::max(max_ref, std::fabs(r));
    for (std::size_t i = 0; i < ref.size(); ++i)
      ASSERT_NEAR(logits[i], ref[i], 2e-5 * max_ref) << "logit " << i << " weights=" << to_string(f);
  }
}

// A step rolled back (truncate) and taken again gives the same bits, for any thread
// count: what the benchmark relies on to time many steps at one context.
TEST(RandomDecoder, StepAfterRollbackIsBitIdentical) {
  RandomDecoder model(tiny_config(WeightFormat::q8));
  model.fill(40);
  const auto x = random_input(model.config().shape.d_model, 4);
  tbb::task_arena one(1), two(2);
  for (const Method& method : {Method{Dense{}}, Method{SparQ::for_ratio(4)}}) {
    std::vector<float> a(model.config().shape.vocab), b(a.size());
    (void)model.step(x, method, &one, a);
    model.truncate_to(40);
    (void)model.step(x, method, &two, b);
    model.truncate_to(40);
    ASSERT_EQ(model.cache().length(model.sequence(), 0), 40u);
    for (std::size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "logit " << i;
  }
}

// The cache's layout changes addresses, not values: a dense step reads the same K and V
// whether they sit in separate regions or side by side (fused), with or without an int8
// d-major copy; a SparQ step runs on each.
TEST(RandomDecoder, KeyLayoutsGiveTheSameDenseStep) {
  const auto x = random_input(64, 5);
  std::vector<float> want(300);
  {
    RandomDecoder model(tiny_config(WeightFormat::q8));
    model.fill(40);
    (void)model.step(x, Dense{}, nullptr, want);
  }
  for (const auto& [layout, type] :
       {std::pair{KeyLayout::fused, DMajorType::same}, std::pair{KeyLayout::fused, DMajorType::int8},
        std::pair{KeyLayout::both, DMajorType::int8}}) {
    DecoderConfig c = tiny_config(WeightFormat::q8);
    c.layout = layout;
    c.d_major_type = type;
    RandomDecoder model(c);
    model.fill(40);
    std::vector<float> got(300);
    (void)model.step(x, Dense{}, nullptr, got);
    for (std::size_t i = 0; i < got.size(); ++i)
      ASSERT_EQ(got[i], want[i]) << "logit " << i << " layout " << to_string(layout) << "+" << to_string(type);
    model.truncate_to(40);
    (void)model.step(x, SparQ::for_ratio(4), nullptr, got);
    for (float v : got) ASSERT_TRUE(std::isfinite(v));
  }
}

TEST(RandomDecoder, RejectsBadInput) {
  RandomDecoder model(tiny_config(WeightFormat::q8));
  model.fill(5);
  std::vector<float> x(63), out(300);
  EXPECT_THROW((void)model.step(x, Dense{}, nullptr, out), Error);
  x.resize(64);
  out.resize(64);  // the classifier is on: logits are [vocab]
  EXPECT_THROW((void)model.step(x, Dense{}, nullptr, out), Error);
  EXPECT_THROW((void)model.layer(2), Error);
  LayerShape bad = *shape_by_name("tiny");
  bad.kv_heads = 3;
  EXPECT_THROW(RandomDecoder({.shape = bad}), Error);
}

TEST(ByteModel, CountsWeightsAndAttention) {
  const LayerShape s = *shape_by_name("llama2-7b");
  // 4 x 4096^2 + 3 x 4096 x 11008 weights, 1 byte each, + 8 bytes per row.
  EXPECT_EQ(s.layer_params(), 202375168u);
  EXPECT_EQ(layer_weight_bytes(s, WeightFormat::q8), 202375168u + 8u * (3 * 4096 + 4096 + 2 * 11008 + 4096));
  EXPECT_EQ(layer_weight_bytes(s, WeightFormat::bf16), 2u * 202375168u);
  // Dense: K and V of every position, 32 heads x 128 x 2 bytes each: 16 KiB per token and layer.
  const TokenBytes dense = token_bytes(s, WeightFormat::q8, false, Dense{}, 16384, DType::bf16);
  EXPECT_EQ(dense.attention, 32ull * 16384 * 16384);
  // SparQ at ratio 8 moves about an eighth of that (+ the mean value rows, 32 x 512 B).
  const TokenBytes sparq = token_bytes(s, WeightFormat::q8, false, SparQ::for_ratio(8), 16384, DType::bf16);
  EXPECT_EQ(sparq.attention, 32ull * (16384ull * 16384 / 8 + 32 * 512));
  EXPECT_EQ(sparq.weights, dense.weights);
  // An int8 d-major copy: stage 1 reads S·r bytes plus one f32 scale per row and block
  // instead of S·r·2; stage 2 and the mean value row are unchanged.
  const StorageModel int8{.d_major_type = DMajorType::int8};
  const TokenBytes q8 = token_bytes(s, WeightFormat::q8, false, SparQ::for_ratio(8), 16384, DType::bf16, int8);
  EXPECT_EQ(q8.attention, 32ull * 32 * (16384ull * 16 + 64 * 16 * 4 + 2 * 1024 * 128 * 2 + 512));
  EXPECT_EQ(token_bytes(s, WeightFormat::q8, false, Dense{}, 16384, DType::bf16, int8).attention, dense.attention);
}

TEST(ByteModel, CacheBytesFollowTheStorage) {
  const LayerShape s = *shape_by_name("llama3-8b");  // 8 KV heads of 128
  const std::uint64_t both = cache_bytes_per_layer(s, 1000, DType::bf16, {});
  EXPECT_EQ(both, 4ull * 256 * 128 * 2 * 3 * 8);  // 4 blocks of K, d-major K and V
  EXPECT_EQ(cache_bytes_per_layer(s, 1000, DType::bf16, {.layouts = KeyLayout::fused}), both);
  const std::uint64_t int8 = cache_bytes_per_layer(s, 1000, DType::bf16, {.d_major_type = DMajorType::int8});
  EXPECT_LT(int8, both);
  EXPECT_GE(int8, 4ull * 256 * 128 * (2 + 2 + 1) * 8);  // K, V and the int8 copy, plus scales
  EXPECT_EQ(cache_bytes_per_layer(s, 1000, DType::bf16, {.layouts = KeyLayout::s_major}), 4ull * 256 * 128 * 2 * 2 * 8);
}

TEST(MethodSpec, Parses) {
  EXPECT_EQ(parse_method_spec("dense")->label, "dense");
  EXPECT_EQ(parse_method_spec("sparq")->label, "sparq:8");
  EXPECT_EQ(parse_method_spec("sparq:4")->label, "sparq:4");
  EXPECT_EQ(parse_method_spec("sparq:2.5")->label, "sparq:2.5");
  EXPECT_FALSE(parse_method_spec("sparq:0.5"));
  EXPECT_FALSE(parse_method_spec("sparq:"));
  EXPECT_FALSE(parse_method_spec("sparq:8x"));
  EXPECT_FALSE(parse_method_spec("h2o"));
}

}  // namespace
}  // namespace sparq::e2e
