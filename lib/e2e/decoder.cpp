// RandomDecoder: a Llama-shaped decode step over random weights (decoder.hpp).
#include "sparq/tools/e2e/decoder.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <random>
#include <string>

#include "sparq/decode.hpp"
#include "sparq/error.hpp"

namespace sparq::e2e {

std::uint64_t LayerShape::layer_params() const noexcept {
  return std::uint64_t(q_dim() + 2 * kv_dim()) * d_model + std::uint64_t(d_model) * q_dim() +
         3 * std::uint64_t(ffn) * d_model;
}

void LayerShape::validate() const {
  const auto bad = [&](const char* field, std::size_t v, const char* rule) {
    throw Error(ErrorCode::invalid_argument,
                "shape " + name + ": " + field + "=" + std::to_string(v) + " is invalid: " + rule);
  };
  if (d_model < 1 || d_model > (1u << 20)) bad("d_model", d_model, "must be in [1, 2^20]");
  if (head_dim < 2 || head_dim % 2) bad("head_dim", head_dim, "must be even and at least 2 (RoPE pairs)");
  if (q_heads < 1 || kv_heads < 1 || q_heads % kv_heads)
    bad("q_heads", q_heads, "must be a positive multiple of kv_heads");
  if (q_dim() > (1u << 20)) bad("q_heads", q_heads, "q_heads x head_dim must be at most 2^20");
  if (ffn < 1 || ffn > (1u << 20)) bad("ffn", ffn, "must be in [1, 2^20]");
  if (model_layers < 1) bad("model_layers", model_layers, "must be at least 1");
}

std::span<const LayerShape> known_shapes() noexcept {
  static const std::array<LayerShape, 3> shapes{{
      {.name = "llama2-7b",
       .d_model = 4096,
       .q_heads = 32,
       .kv_heads = 32,
       .head_dim = 128,
       .ffn = 11008,
       .vocab = 32000,
       .model_layers = 32,
       .rope_base = 10000.0},
      {.name = "llama3-8b",
       .d_model = 4096,
       .q_heads = 32,
       .kv_heads = 8,
       .head_dim = 128,
       .ffn = 14336,
       .vocab = 128256,
       .model_layers = 32,
       .rope_base = 500000.0},
      {.name = "tiny",
       .d_model = 64,
       .q_heads = 4,
       .kv_heads = 2,
       .head_dim = 16,
       .ffn = 176,
       .vocab = 300,
       .model_layers = 2,
       .rope_base = 10000.0},
  }};
  return shapes;
}

std::optional<LayerShape> shape_by_name(std::string_view name) {
  for (const LayerShape& s : known_shapes())
    if (s.name == name) return s;
  return std::nullopt;
}

std::uint64_t packed_bytes(std::size_t rows, std::size_t cols, WeightFormat format) noexcept {
  const std::uint64_t rows_padded = (rows + kTileRows - 1) / kTileRows * kTileRows;
  const std::size_t chunk_cols = format == WeightFormat::q8 ? kChunkBytes : kChunkBytes / 2;
  const std::uint64_t chunks = (cols + chunk_cols - 1) / chunk_cols;
  return rows_padded * chunks * kChunkBytes + (format == WeightFormat::q8 ? rows_padded * 8 : 0);
}

std::uint64_t layer_weight_bytes(const LayerShape& s, WeightFormat f) noexcept {
  return packed_bytes(s.q_dim() + 2 * s.kv_dim(), s.d_model, f) + packed_bytes(s.d_model, s.q_dim(), f) +
         packed_bytes(2 * s.ffn, s.d_model, f) + packed_bytes(s.d_model, s.ffn, f);
}

std::uint64_t classifier_bytes(const LayerShape& s, WeightFormat f) noexcept {
  return s.vocab ? packed_bytes(s.vocab, s.d_model, f) : 0;
}

namespace {

// splitmix64: a counter-based stream, so a row's weights do not depend on which thread
// packs it.
struct SplitMix {
  std::uint64_t state;
  std::uint64_t next() noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [-1, 1).
  float uniform() noexcept { return float(std::int64_t(next() >> 40) - (1ll << 23)) * 0x1p-23f; }
};

// Rows of matrix `id`: uniform with the variance of N(0, 1/fan_in).
RowSource random_rows(std::uint64_t seed, std::uint64_t id, std::size_t fan_in) {
  const float a = std::sqrt(3.0f / float(fan_in));
  return [=](std::size_t r, std::span<float> out) {
    SplitMix g{seed * 0x100000001b3ull ^ (id << 40) ^ r};
    for (float& w : out) w = a * g.uniform();
  };
}

std::vector<float> random_norm(std::uint64_t seed, std::uint64_t id, std::size_t n) {
  SplitMix g{seed * 0x100000001b3ull ^ (id << 40) ^ 0xabcdefull};
  std::vector<float> w(n);
  for (float& v : w) v = 1.0f + 0.1f * g.uniform();
  return w;
}

void rmsnorm(const float* x, const float* w, float* out, std::size_t n, float eps) {
  double ss = 0.0;
  for (std::size_t i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
  const float inv = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
  for (std::size_t i = 0; i < n; ++i) out[i] = x[i] * inv * w[i];
}

using Clock = std::chrono::steady_clock;
double since(Clock::time_point& t) {
  const auto now = Clock::now();
  const double s = std::chrono::duration<double>(now - t).count();
  t = now;
  return s;
}

}  // namespace

struct RandomDecoder::Impl {
  DecoderConfig config;
  std::vector<Layer> layers;
  std::vector<float> final_norm;
  std::optional<PackedMatrix> classifier;
  std::unique_ptr<KVCache> cache;
  SeqId seq = 0;
  std::vector<double> inv_freq;  // [head_dim / 2]
  // scratch
  std::vector<float> x, xn, qkv, att, o, gu, h, down, cos, sin;
};

RandomDecoder::RandomDecoder(const DecoderConfig& config) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  const LayerShape& s = config.shape;
  s.validate();
  if (config.layers < 1) throw Error(ErrorCode::invalid_argument, "layers=0: at least one layer is needed");
  m.config = config;
  m.cache = std::make_unique<KVCache>(CacheConfig{.layers = config.layers,
                                                  .kv_heads = s.kv_heads,
                                                  .head_dim = s.head_dim,
                                                  .dtype = config.kv_dtype,
                                                  .block_tokens = config.block_tokens,
                                                  .capacity_tokens = config.capacity_tokens,
                                                  .layouts = config.layout,
                                                  .d_major_type = config.d_major_type});
  m.seq = m.cache->add_sequence();
  const std::uint64_t seed = config.seed;
  const WeightFormat f = config.weights;
  for (std::size_t l = 0; l < config.layers; ++l) {
    const std::uint64_t id = 8 * (l + 1);
    m.layers.push_back(Layer{
        .attn_norm = random_norm(seed, id + 0, s.d_model),
        .ffn_norm = random_norm(seed, id + 1, s.d_model),
        .wqkv = PackedMatrix(s.q_dim() + 2 * s.kv_dim(), s.d_model, f, random_rows(seed, id + 2, s.d_model)),
        .wo = PackedMatrix(s.d_model, s.q_dim(), f, random_rows(seed, id + 3, s.q_dim())),
        .w_gate_up = PackedMatrix(2 * s.ffn, s.d_model, f, random_rows(seed, id + 4, s.d_model)),
        .w_down = PackedMatrix(s.d_model, s.ffn, f, random_rows(seed, id + 5, s.ffn)),
    });
  }
  m.final_norm = random_norm(seed, 1, s.d_model);
  if (config.classifier && s.vocab) m.classifier.emplace(s.vocab, s.d_model, f, random_rows(seed, 2, s.d_model));
  for (std::size_t i = 0; i < s.head_dim / 2; ++i)
    m.inv_freq.push_back(std::pow(s.rope_base, -2.0 * double(i) / double(s.head_dim)));
  m.x.resize(s.d_model);
  m.xn.resize(s.d_model);
  m.qkv.resize(s.q_dim() + 2 * s.kv_dim());
  m.att.resize(s.q_dim());
  m.o.resize(s.d_model);
  m.gu.resize(2 * s.ffn);
  m.h.resize(s.ffn);
  m.down.resize(s.d_model);
  m.cos.resize(s.head_dim / 2);
  m.sin.resize(s.head_dim / 2);
}

RandomDecoder::~RandomDecoder() = default;

const DecoderConfig& RandomDecoder::config() const noexcept {
  return impl_->config;
}
KVCache& RandomDecoder::cache() noexcept {
  return *impl_->cache;
}
SeqId RandomDecoder::sequence() const noexcept {
  return impl_->seq;
}
std::span<const float> RandomDecoder::final_norm() const noexcept {
  return impl_->final_norm;
}
const PackedMatrix* RandomDecoder::classifier() const noexcept {
  return impl_->classifier ? &*impl_->classifier : nullptr;
}

const RandomDecoder::Layer& RandomDecoder::layer(std::size_t l) const {
  if (l >= impl_->layers.size())
    throw Error(ErrorCode::invalid_argument, "layer=" + std::to_string(l) + " out of range: the decoder has " +
                                                 std::to_string(impl_->layers.size()) + " layers");
  return impl_->layers[l];
}

std::uint64_t RandomDecoder::layer_matvec_bytes() const noexcept {
  std::uint64_t b = 0;
  for (const Layer& L : impl_->layers) b += L.wqkv.bytes() + L.wo.bytes() + L.w_gate_up.bytes() + L.w_down.bytes();
  return b;
}

std::uint64_t RandomDecoder::head_matvec_bytes() const noexcept {
  return impl_->classifier ? impl_->classifier->bytes() : 0;
}

void RandomDecoder::fill(std::size_t length, const std::function<bool(double)>& on_progress) {
  Impl& m = *impl_;
  const std::size_t have = m.cache->length(m.seq, 0);
  if (length <= have) return;
  // One pool of random rows, appended at shifting offsets so that layers and chunks differ.
  constexpr std::size_t kChunk = 1024, kShifts = 61;
  const std::size_t row = m.config.shape.kv_dim();
  const std::size_t pool_rows = std::min(length - have, kChunk) + kShifts;
  std::vector<float> keys(pool_rows * row), values(pool_rows * row);
  std::mt19937 rng(std::uint32_t(m.config.seed * 7919 + 17));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : keys) v = normal(rng);
  for (float& v : values) v = normal(rng);
  const std::size_t L = m.layers.size();
  for (std::size_t l = 0; l < L; ++l)
    for (std::size_t done = have; done < length;) {
      const std::size_t n = std::min(kChunk, length - done);
      const std::size_t shift = (l * 7 + done / kChunk) % kShifts;
      m.cache->append(m.seq, l, std::span<const float>(keys).subspan(shift * row, n * row),
                      std::span<const float>(values).subspan(shift * row, n * row), n);
      done += n;
      if (on_progress && !on_progress((double(l) + double(done - have) / double(length - have)) / double(L))) return;
    }
}

void RandomDecoder::truncate_to(std::size_t length) {
  const std::size_t have = impl_->cache->length(impl_->seq, 0);
  if (length < have) impl_->cache->truncate(impl_->seq, have - length);
}

StepTimes RandomDecoder::step(std::span<const float> x_in, const Method& method, tbb::task_arena* arena,
                              std::span<float> out, Profile* attention_profile) {
  Impl& m = *impl_;
  const LayerShape& s = m.config.shape;
  const std::size_t d = s.d_model, hd = s.head_dim;
  if (x_in.size() != d)
    throw Error(ErrorCode::shape_mismatch,
                "x has " + std::to_string(x_in.size()) + " values, expected d_model=" + std::to_string(d));
  const std::size_t out_size = m.classifier ? s.vocab : d;
  if (out.size() != out_size)
    throw Error(ErrorCode::shape_mismatch,
                "out has " + std::to_string(out.size()) + " values, expected " + std::to_string(out_size));
  const Q8Kernel qk = m.config.q8_kernel;
  StepTimes t;
  const auto start = Clock::now();
  auto mark = start;

  const std::size_t pos = m.cache->length(m.seq, 0);
  std::copy(x_in.begin(), x_in.end(), m.x.begin());
  for (std::size_t i = 0; i < hd / 2; ++i) {
    const double angle = double(pos) * m.inv_freq[i];
    m.cos[i] = float(std::cos(angle));
    m.sin[i] = float(std::sin(angle));
  }
  const auto rope = [&](float* v, std::size_t heads) {
    for (std::size_t h = 0; h < heads; ++h)
      for (std::size_t i = 0; i < hd / 2; ++i) {
        float* p = v + h * hd + 2 * i;
        const float a = p[0], b = p[1];
        p[0] = a * m.cos[i] - b * m.sin[i];
        p[1] = a * m.sin[i] + b * m.cos[i];
      }
  };
  float* q = m.qkv.data();
  float* k = q + s.q_dim();
  float* v = k + s.kv_dim();
  t.other += since(mark);

  for (std::size_t l = 0; l < m.layers.size(); ++l) {
    const Layer& L = m.layers[l];
    rmsnorm(m.x.data(), L.attn_norm.data(), m.xn.data(), d, s.norm_eps);
    t.other += since(mark);
    L.wqkv.matvec(m.xn, m.qkv, arena, qk);
    t.matvec += since(mark);
    rope(q, s.q_heads);
    rope(k, s.kv_heads);
    t.other += since(mark);
    m.cache->append(m.seq, l, std::span<const float>(k, s.kv_dim()), std::span<const float>(v, s.kv_dim()), 1);
    t.append += since(mark);
    const DecodeItem item{.seq = m.seq, .q = std::span<const float>(q, s.q_dim()), .out = m.att};
    decode(*m.cache, l, method, {&item, 1}, {.profile = attention_profile, .arena = arena});
    t.attention += since(mark);
    L.wo.matvec(m.att, m.o, arena, qk);
    t.matvec += since(mark);
    for (std::size_t i = 0; i < d; ++i) m.x[i] += m.o[i];
    rmsnorm(m.x.data(), L.ffn_norm.data(), m.xn.data(), d, s.norm_eps);
    t.other += since(mark);
    L.w_gate_up.matvec(m.xn, m.gu, arena, qk);
    t.matvec += since(mark);
    for (std::size_t i = 0; i < s.ffn; ++i) {
      const float g = m.gu[i];
      m.h[i] = g / (1.0f + std::exp(-g)) * m.gu[s.ffn + i];
    }
    t.other += since(mark);
    L.w_down.matvec(m.h, m.down, arena, qk);
    t.matvec += since(mark);
    for (std::size_t i = 0; i < d; ++i) m.x[i] += m.down[i];
    t.other += since(mark);
  }
  if (m.classifier) {
    rmsnorm(m.x.data(), m.final_norm.data(), m.xn.data(), d, s.norm_eps);
    m.classifier->matvec(m.xn, out, arena, qk);
  } else {
    std::copy(m.x.begin(), m.x.end(), out.begin());
  }
  t.head += since(mark);
  t.total = std::chrono::duration<double>(mark - start).count();
  return t;
}

}  // namespace sparq::e2e
