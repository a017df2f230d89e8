#include "sparq/tools/model/llama_model.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "eval/h2o.hpp"
#include "model/attention_mass.hpp"
#include "model/baseline_attention.hpp"
#include "model/linear.hpp"
#include "sparq/error.hpp"

namespace sparq::model {

namespace {

void rmsnorm(const float* x, const float* weight, float* out, std::size_t n, std::size_t dim, float eps) {
  for (std::size_t t = 0; t < n; ++t) {
    double ss = 0.0;
    for (std::size_t i = 0; i < dim; ++i) ss += double(x[t * dim + i]) * x[t * dim + i];
    const float inv = float(1.0 / std::sqrt(ss / double(dim) + double(eps)));
    for (std::size_t i = 0; i < dim; ++i) out[t * dim + i] = x[t * dim + i] * inv * weight[i];
  }
}

}  // namespace

// What a sequence carries besides its cache: the attention its prompt positions received
// (H2O's starting scores) and its H2O state once it decoded with H2O.
struct LlamaModel::SeqState {
  std::vector<std::vector<std::vector<double>>> mass;  // [layer][kv_head][position]
  double h2o_ratio = 0.0;
  std::vector<std::vector<eval::H2OCache>> h2o;  // [layer][kv_head]; empty before the first H2O step
};

LlamaModel::LlamaModel(const LlamaWeights& w, const ModelOptions& options)
    : config_(w.config),
      options_(options),
      embedding_(w.token_embedding),
      final_norm_(w.final_norm),
      classifier_(w.classifier),
      cache_(CacheConfig{.layers = w.config.n_layers,
                         .kv_heads = w.config.n_kv_heads,
                         .head_dim = w.config.head_dim(),
                         .dtype = options.dtype,
                         .block_tokens = options.block_tokens,
                         .capacity_tokens = options.capacity_tokens ? options.capacity_tokens : 8 * w.config.seq_len,
                         .layouts = options.layouts,
                         .d_major_type = options.d_major_type}) {
  if (options.prefill_chunk == 0)
    throw Error(ErrorCode::invalid_argument, "prefill_chunk=0 is invalid: must be at least 1");
  if (!(config_.norm_eps > 0.0f) || !(config_.rope_theta > 0.0f))
    throw Error(ErrorCode::invalid_argument,
                fmt::format("norm_eps={} and rope_theta={} must be positive", config_.norm_eps, config_.rope_theta));
  for (const LlamaLayer& l : w.layers)
    layers_.push_back({l.attn_norm, l.wq, l.wk, l.wv, l.wo, l.ffn_norm, l.w1, l.w2, l.w3});
  const std::size_t hd = config_.head_dim();
  // As tools/train/model.py: inv_freq = theta^(-2i/hd) and angles in double.
  for (std::size_t i = 0; i < hd / 2; ++i)
    inv_freq_.push_back(std::pow(double(config_.rope_theta), -double(2 * i) / double(hd)));
}

LlamaModel::~LlamaModel() = default;

SeqId LlamaModel::add_sequence() {
  return cache_.add_sequence();
}

SeqId LlamaModel::fork(SeqId seq) {
  const SeqId f = cache_.fork(seq);
  if (const auto it = states_.find(seq); it != states_.end())
    states_.emplace(f, std::make_unique<SeqState>(*it->second));
  return f;
}

void LlamaModel::remove_sequence(SeqId seq) {
  cache_.remove_sequence(seq);
  states_.erase(seq);
}

LlamaModel::SeqState& LlamaModel::state(SeqId seq) {
  auto& s = states_[seq];
  if (!s) {
    s = std::make_unique<SeqState>();
    s->mass.assign(config_.n_layers, std::vector<std::vector<double>>(config_.n_kv_heads));
  }
  return *s;
}

void LlamaModel::check_token(int token) const {
  if (token < 0 || std::size_t(token) >= config_.vocab_size)
    throw Error(ErrorCode::invalid_argument,
                fmt::format("token={} is outside the vocabulary [0, {})", token, config_.vocab_size));
}

void LlamaModel::rope_table(std::size_t pos, std::vector<float>& out) const {
  for (double f : inv_freq_) {
    const double angle = double(pos) * f;
    out.push_back(float(std::cos(angle)));
    out.push_back(float(std::sin(angle)));
  }
}

void LlamaModel::rope(float* v, std::size_t n_heads, const float* cos_sin) const {
  const std::size_t hd = config_.head_dim();
  for (std::size_t head = 0; head < n_heads; ++head)
    for (std::size_t i = 0; i < hd / 2; ++i) {
      const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
      float* p = v + head * hd + 2 * i;
      const float a = p[0], b = p[1];
      p[0] = a * c - b * s;
      p[1] = a * s + b * c;
    }
}

void LlamaModel::logits_of(const float* x, std::size_t n, float* out) {
  const std::size_t d = config_.dim;
  std::vector<float> xn(n * d);
  rmsnorm(x, final_norm_.data(), xn.data(), n, d, config_.norm_eps);
  linear(xn.data(), n, d, classifier_.data(), config_.vocab_size, out, false);
}

void LlamaModel::attend_step(std::size_t layer, std::span<const StepItem> items) {
  const LlamaConfig& c = config_;
  const std::size_t d = c.dim;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const StepItem& it = items[i];
    const std::span<const float> q(q_.data() + i * d, d);
    const std::span<float> out(att_.data() + i * d, d);
    if (const auto* b = std::get_if<Baseline>(it.method)) {
      std::vector<eval::H2OCache>* h2o = nullptr;
      if (b->kind == BaselineKind::h2o) h2o = &state(it.seq).h2o[layer];
      std::vector<std::size_t> rows(c.n_kv_heads);
      baseline_attention(cache_, it.seq, layer, *b, q, out, c.n_heads, h2o, rows.data());
      if (it.stats)
        for (std::size_t r : rows) it.stats->bytes += double(2 * r * c.head_dim() * size_of(options_.dtype));
      continue;
    }
    const Method lib =
        std::holds_alternative<Dense>(*it.method) ? Method{Dense{}} : Method{std::get<SparQ>(*it.method)};
    std::vector<float> alpha(c.n_heads);
    const DecodeItem item{.seq = it.seq, .q = q, .out = out, .alpha = alpha};
    Profile profile;
    decode(cache_, layer, lib, std::span(&item, 1), {.profile = it.stats ? &profile : nullptr});
    if (it.stats) it.stats->bytes += double(profile.total().bytes_read);
    if (it.stats && std::holds_alternative<SparQ>(*it.method)) {
      for (float a : alpha) it.stats->alpha_sum += a;
      it.stats->alpha_count += alpha.size();
    }
  }
}

void LlamaModel::forward(SeqId seq, std::size_t n, std::span<const StepItem> items) {
  const LlamaConfig& c = config_;
  const std::size_t d = c.dim, kv = c.kv_dim(), hid = c.hidden_dim, half = c.head_dim() / 2;
  const bool decoding = !items.empty();
  h_.resize(n * d);
  q_.resize(n * d);
  k_.resize(n * kv);
  v_.resize(n * kv);
  att_.resize(n * d);
  gate_.resize(n * hid);
  up_.resize(n * hid);
  // cos/sin per row: every layer sees the same positions.
  rope_.clear();
  const std::size_t pos0 = decoding ? 0 : cache_.length(seq, 0);
  for (std::size_t t = 0; t < n; ++t) rope_table(decoding ? cache_.length(items[t].seq, 0) : pos0 + t, rope_);
  for (std::size_t layer = 0; layer < c.n_layers; ++layer) {
    const Layer& L = layers_[layer];
    rmsnorm(x_.data(), L.attn_norm.data(), h_.data(), n, d, c.norm_eps);
    linear(h_.data(), n, d, L.wq.data(), d, q_.data(), false);
    linear(h_.data(), n, d, L.wk.data(), kv, k_.data(), false);
    linear(h_.data(), n, d, L.wv.data(), kv, v_.data(), false);
    for (std::size_t t = 0; t < n; ++t) {
      rope(q_.data() + t * d, c.n_heads, rope_.data() + t * 2 * half);
      rope(k_.data() + t * kv, c.n_kv_heads, rope_.data() + t * 2 * half);
    }
    if (!decoding) {
      if (observer_) observer_(seq, layer, pos0, n, q_);
      cache_.append(seq, layer, k_, v_, n);
      decode_causal(cache_, layer, seq, q_, att_, n);
      if (options_.attention_mass) add_attention_mass(cache_, seq, layer, q_, n, c.n_heads, state(seq).mass[layer]);
    } else {
      for (std::size_t t = 0; t < n; ++t) {
        const SeqId s = items[t].seq;
        if (observer_) observer_(s, layer, cache_.length(s, layer), 1, std::span(q_).subspan(t * d, d));
        cache_.append(s, layer, std::span(k_).subspan(t * kv, kv), std::span(v_).subspan(t * kv, kv), 1);
      }
      attend_step(layer, items);
    }
    linear(att_.data(), n, d, L.wo.data(), d, x_.data(), true);
    rmsnorm(x_.data(), L.ffn_norm.data(), h_.data(), n, d, c.norm_eps);
    linear(h_.data(), n, d, L.w1.data(), hid, gate_.data(), false);
    linear(h_.data(), n, d, L.w3.data(), hid, up_.data(), false);
    for (std::size_t i = 0; i < n * hid; ++i) {
      const float g = gate_[i];
      gate_[i] = g / (1.0f + std::exp(-g)) * up_[i];
    }
    linear(gate_.data(), n, hid, L.w2.data(), d, x_.data(), true);
  }
}

std::vector<float> LlamaModel::prefill(SeqId seq, std::span<const int> tokens, std::vector<float>* all_logits) {
  if (tokens.empty()) throw Error(ErrorCode::invalid_argument, "prefill of 0 tokens: give at least one token");
  for (int t : tokens) check_token(t);
  if (!cache_.contains(seq)) throw Error(ErrorCode::unknown_sequence, fmt::format("sequence {} is unknown", seq));
  const std::size_t d = config_.dim, V = config_.vocab_size, n = tokens.size();
  if (all_logits) all_logits->resize(n * V);
  std::vector<float> logits(V);
  for (std::size_t c0 = 0; c0 < n; c0 += options_.prefill_chunk) {
    const std::size_t nc = std::min(options_.prefill_chunk, n - c0);
    x_.resize(nc * d);
    for (std::size_t t = 0; t < nc; ++t)
      std::copy_n(embedding_.data() + std::size_t(tokens[c0 + t]) * d, d, x_.data() + t * d);
    forward(seq, nc, {});
    if (all_logits)
      logits_of(x_.data(), nc, all_logits->data() + c0 * V);
    else if (c0 + nc == n)
      logits_of(x_.data() + (nc - 1) * d, 1, logits.data());
  }
  if (all_logits) std::copy_n(all_logits->data() + (n - 1) * V, V, logits.data());
  return logits;
}

std::vector<float> LlamaModel::step(SeqId seq, int token, const AttentionMethod& method, StepStats* stats) {
  const StepItem item{.seq = seq, .token = token, .method = &method, .stats = stats};
  std::vector<float> logits;
  step(std::span(&item, 1), logits);
  return logits;
}

void LlamaModel::step(std::span<const StepItem> batch, std::vector<float>& logits) {
  if (batch.empty()) throw Error(ErrorCode::invalid_argument, "a decode step of 0 sequences: give at least one");
  std::set<SeqId> seen;
  for (const StepItem& it : batch) {
    check_token(it.token);
    if (it.method == nullptr) throw Error(ErrorCode::invalid_argument, "a step item without a method");
    if (!cache_.contains(it.seq))
      throw Error(ErrorCode::unknown_sequence, fmt::format("sequence {} is unknown", it.seq));
    if (!seen.insert(it.seq).second)
      throw Error(ErrorCode::invalid_argument, fmt::format("sequence {} appears twice in one decode step", it.seq));
    const auto* b = std::get_if<Baseline>(it.method);
    if (b == nullptr) continue;
    if (!std::isfinite(b->ratio) || b->ratio < 1.0)
      throw Error(ErrorCode::invalid_argument, fmt::format("baseline ratio={} must be finite and >= 1", b->ratio));
    if (b->kind != BaselineKind::h2o) continue;
    const std::size_t len = cache_.length(it.seq, 0);
    const auto st = states_.find(it.seq);
    const SeqState* s = st == states_.end() ? nullptr : st->second.get();
    if (s && !s->h2o.empty()) {
      if (s->h2o_ratio != b->ratio || s->h2o[0][0].length() != len)
        throw Error(ErrorCode::invalid_argument,
                    fmt::format("H2O on sequence {}: a sequence that decoded with H2O at ratio {} must decode every "
                                "further step with it (got ratio {} after {} of {} positions)",
                                it.seq, s->h2o_ratio, b->ratio, s->h2o[0][0].length(), len));
      continue;
    }
    // The first H2O step: every cached position enters with the attention it received.
    const std::size_t covered = s ? s->mass[0][0].size() : 0;
    if (covered != len)
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("H2O on sequence {}: its scores cover {} of its {} positions; start H2O right after a "
                              "prefill with ModelOptions::attention_mass",
                              it.seq, covered, len));
  }
  for (const StepItem& it : batch) {
    const auto* b = std::get_if<Baseline>(it.method);
    if (b == nullptr || b->kind != BaselineKind::h2o) continue;
    SeqState& s = state(it.seq);
    if (!s.h2o.empty()) continue;
    s.h2o_ratio = b->ratio;
    s.h2o.assign(config_.n_layers, std::vector<eval::H2OCache>(config_.n_kv_heads));
    for (std::size_t l = 0; l < config_.n_layers; ++l)
      for (std::size_t h = 0; h < config_.n_kv_heads; ++h)
        for (double m : s.mass[l][h]) s.h2o[l][h].add(m);
  }
  const std::size_t d = config_.dim, n = batch.size();
  x_.resize(n * d);
  for (std::size_t t = 0; t < n; ++t)
    std::copy_n(embedding_.data() + std::size_t(batch[t].token) * d, d, x_.data() + t * d);
  forward(0, n, batch);
  for (const StepItem& it : batch)
    if (it.stats) ++it.stats->steps;
  logits.resize(n * config_.vocab_size);
  logits_of(x_.data(), n, logits.data());
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
