#include "sparq/tools/model/llama_model.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "sparq/error.hpp"

namespace sparq::model {

namespace {

// [out][in] -> [in][out]
std::vector<float> transposed(const std::vector<float>& w, std::size_t out, std::size_t in) {
  std::vector<float> t(w.size());
  for (std::size_t o = 0; o < out; ++o)
    for (std::size_t i = 0; i < in; ++i) t[i * out + o] = w[o * in + i];
  return t;
}

// y[n][out] = x[n][in] · wt[in][out] (+ y when accumulate). Rows go in tiles of 8 so
// that each row of wt is loaded once per tile rather than once per token.
void matmul(const float* __restrict x, const float* __restrict wt, float* __restrict y, std::size_t n, std::size_t in,
            std::size_t out, bool accumulate) {
  constexpr std::size_t kTile = 8;
  if (!accumulate) std::fill(y, y + n * out, 0.0f);
  for (std::size_t t0 = 0; t0 < n; t0 += kTile) {
    const std::size_t t1 = std::min(n, t0 + kTile);
    for (std::size_t i = 0; i < in; ++i) {
      const float* __restrict w = wt + i * out;
      for (std::size_t t = t0; t < t1; ++t) {
        const float xi = x[t * in + i];
        float* __restrict yt = y + t * out;
        for (std::size_t o = 0; o < out; ++o) yt[o] += xi * w[o];
      }
    }
  }
}

void rmsnorm(const float* x, const float* weight, float* out, std::size_t n, std::size_t dim) {
  for (std::size_t t = 0; t < n; ++t) {
    double ss = 0.0;
    for (std::size_t i = 0; i < dim; ++i) ss += double(x[t * dim + i]) * x[t * dim + i];
    const float inv = float(1.0 / std::sqrt(ss / double(dim) + 1e-5));
    for (std::size_t i = 0; i < dim; ++i) out[t * dim + i] = x[t * dim + i] * inv * weight[i];
  }
}

}  // namespace

LlamaModel::LlamaModel(const LlamaWeights& w, const ModelOptions& options)
    : config_(w.config),
      embedding_(w.token_embedding),
      final_norm_(w.final_norm),
      classifier_(w.classifier),
      cache_(CacheConfig{.layers = w.config.n_layers,
                         .kv_heads = w.config.n_kv_heads,
                         .head_dim = w.config.head_dim(),
                         .dtype = options.dtype,
                         .block_tokens = options.block_tokens,
                         .capacity_tokens = options.capacity_tokens ? options.capacity_tokens : 8 * w.config.seq_len,
                         .layouts = options.layouts}) {
  const LlamaConfig& c = config_;
  const std::size_t d = c.dim, kv = c.kv_dim(), h = c.hidden_dim;
  for (const LlamaLayer& l : w.layers)
    layers_.push_back({.attn_norm = l.attn_norm,
                       .wq_t = transposed(l.wq, d, d),
                       .wk_t = transposed(l.wk, kv, d),
                       .wv_t = transposed(l.wv, kv, d),
                       .wo_t = transposed(l.wo, d, d),
                       .ffn_norm = l.ffn_norm,
                       .w1_t = transposed(l.w1, h, d),
                       .w2_t = transposed(l.w2, d, h),
                       .w3_t = transposed(l.w3, h, d)});
  const std::size_t hd = c.head_dim();
  for (std::size_t i = 0; i < hd / 2; ++i) inv_freq_.push_back(float(std::pow(10000.0, -2.0 * double(i) / double(hd))));
}

void LlamaModel::check_token(int token) const {
  if (token < 0 || std::size_t(token) >= config_.vocab_size)
    throw Error(ErrorCode::invalid_argument,
                fmt::format("token={} is outside the vocabulary [0, {})", token, config_.vocab_size));
}

void LlamaModel::rope(float* v, std::size_t n_heads, std::size_t pos) const {
  const std::size_t hd = config_.head_dim();
  for (std::size_t i = 0; i < hd / 2; ++i) {
    // Angle in float like the training code (torch computes pos * inv_freq in f32).
    const float angle = float(pos) * inv_freq_[i];
    const float c = std::cos(angle), s = std::sin(angle);
    for (std::size_t head = 0; head < n_heads; ++head) {
      float* p = v + head * hd + 2 * i;
      const float a = p[0], b = p[1];
      p[0] = a * c - b * s;
      p[1] = a * s + b * c;
    }
  }
}

void LlamaModel::logits_of(const float* x, float* out) const {
  const std::size_t d = config_.dim;
  std::vector<float> xn(d);
  rmsnorm(x, final_norm_.data(), xn.data(), 1, d);
  for (std::size_t v = 0; v < config_.vocab_size; ++v) {
    const float* row = classifier_.data() + v * d;
    float acc = 0.0f;
    for (std::size_t i = 0; i < d; ++i) acc += row[i] * xn[i];
    out[v] = acc;
  }
}

void LlamaModel::forward(SeqId seq, std::size_t n, const Method* method, StepStats* stats) {
  const LlamaConfig& c = config_;
  const std::size_t d = c.dim, kv = c.kv_dim(), hid = c.hidden_dim, hd = c.head_dim();
  h_.resize(n * d);
  q_.resize(n * d);
  k_.resize(n * kv);
  v_.resize(n * kv);
  att_.resize(n * d);
  gate_.resize(n * hid);
  up_.resize(n * hid);
  for (std::size_t layer = 0; layer < c.n_layers; ++layer) {
    const Layer& L = layers_[layer];
    const std::size_t pos0 = cache_.length(seq, layer);
    rmsnorm(x_.data(), L.attn_norm.data(), h_.data(), n, d);
    matmul(h_.data(), L.wq_t.data(), q_.data(), n, d, d, false);
    matmul(h_.data(), L.wk_t.data(), k_.data(), n, d, kv, false);
    matmul(h_.data(), L.wv_t.data(), v_.data(), n, d, kv, false);
    for (std::size_t t = 0; t < n; ++t) {
      rope(q_.data() + t * d, c.n_heads, pos0 + t);
      rope(k_.data() + t * kv, c.n_kv_heads, pos0 + t);
    }
    if (observer_) observer_(layer, pos0, n, q_);
    cache_.append(seq, layer, k_, v_, n);
    if (method == nullptr) {
      decode_causal(cache_, layer, seq, q_, att_, n);
    } else {
      std::vector<float> alpha(c.n_heads);
      const DecodeItem item{.seq = seq, .q = q_, .out = att_, .alpha = alpha};
      decode(cache_, layer, *method, std::span(&item, 1));
      if (stats) {
        for (float a : alpha) stats->alpha_sum += a;
        stats->alpha_count += alpha.size();
      }
    }
    matmul(att_.data(), L.wo_t.data(), x_.data(), n, d, d, true);
    rmsnorm(x_.data(), L.ffn_norm.data(), h_.data(), n, d);
    matmul(h_.data(), L.w1_t.data(), gate_.data(), n, d, hid, false);
    matmul(h_.data(), L.w3_t.data(), up_.data(), n, d, hid, false);
    for (std::size_t i = 0; i < n * hid; ++i) {
      const float g = gate_[i];
      gate_[i] = g / (1.0f + std::exp(-g)) * up_[i];
    }
    matmul(gate_.data(), L.w2_t.data(), x_.data(), n, hid, d, true);
  }
  (void)hd;
}

std::vector<float> LlamaModel::prefill(SeqId seq, std::span<const int> tokens, std::vector<float>* all_logits) {
  if (tokens.empty()) throw Error(ErrorCode::invalid_argument, "prefill of 0 tokens: give at least one token");
  for (int t : tokens) check_token(t);
  const std::size_t d = config_.dim, n = tokens.size();
  x_.resize(n * d);
  for (std::size_t t = 0; t < n; ++t) std::copy_n(embedding_.data() + std::size_t(tokens[t]) * d, d, x_.data() + t * d);
  forward(seq, n, nullptr, nullptr);
  std::vector<float> logits(config_.vocab_size);
  if (all_logits) {
    all_logits->resize(n * config_.vocab_size);
    for (std::size_t t = 0; t < n; ++t) logits_of(x_.data() + t * d, all_logits->data() + t * config_.vocab_size);
    std::copy_n(all_logits->data() + (n - 1) * config_.vocab_size, config_.vocab_size, logits.data());
  } else {
    logits_of(x_.data() + (n - 1) * d, logits.data());
  }
  return logits;
}

std::vector<float> LlamaModel::step(SeqId seq, int token, const Method& method, StepStats* stats) {
  check_token(token);
  const std::size_t d = config_.dim;
  x_.assign(embedding_.data() + std::size_t(token) * d, embedding_.data() + std::size_t(token + 1) * d);
  forward(seq, 1, &method, stats);
  std::vector<float> logits(config_.vocab_size);
  logits_of(x_.data(), logits.data());
  return logits;
}

int argmax(std::span<const float> logits) {
  return int(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

double log_prob(std::span<const float> logits, int target) {
  double m = -std::numeric_limits<double>::infinity();
  for (float v : logits) m = std::max(m, double(v));
  double s = 0.0;
  for (float v : logits) s += std::exp(double(v) - m);
  return double(logits[std::size_t(target)]) - m - std::log(s);
}

}  // namespace sparq::model
