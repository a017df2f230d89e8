// Parsing and encoding of checkpoint bytes, both versions (format in llama_checkpoint.hpp).
// Files, hashes and sidecars are in checkpoint_file.cpp.
#include "sparq/tools/model/llama_checkpoint.hpp"

#include <fmt/core.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "common/half_float.hpp"
#include "model/checkpoint_format.hpp"
#include "sparq/error.hpp"

namespace sparq::model {

namespace {

static_assert(std::endian::native == std::endian::little, "checkpoints are little-endian; add byte swapping");

// Generous bounds: they only exist so that a corrupt header is refused before any
// size arithmetic could overflow or any large allocation is attempted.
constexpr std::int64_t kMaxDim = 1 << 16;
constexpr std::int64_t kMaxLayers = 1 << 10;
constexpr std::int64_t kMaxVocab = 1 << 22;
constexpr std::int64_t kMaxSeqLen = 1 << 24;

[[noreturn]] void bad(std::string_view name, const std::string& what) {
  throw Error(ErrorCode::bad_file, fmt::format("{}: {}", name, what));
}

// Elements in file order: the sizes of every tensor, named for error messages.
struct TensorSpec {
  const char* name;
  std::size_t count;   // elements per tensor
  std::size_t repeat;  // 1 or n_layers
};

std::vector<TensorSpec> tensor_specs(const LlamaConfig& c, int version) {
  const std::size_t d = c.dim, kv = c.kv_dim(), h = c.hidden_dim, L = c.n_layers;
  std::vector<TensorSpec> s = {{"token_embedding", c.vocab_size * d, 1},
                               {"attn_norm", d, L},
                               {"wq", d * d, L},
                               {"wk", kv * d, L},
                               {"wv", kv * d, L},
                               {"wo", d * d, L},
                               {"ffn_norm", d, L},
                               {"w1", h * d, L},
                               {"w2", d * h, L},
                               {"w3", h * d, L},
                               {"final_norm", d, 1}};
  if (version == 1) {
    s.push_back({"rope_cos", c.seq_len * (c.head_dim() / 2), 1});
    s.push_back({"rope_sin", c.seq_len * (c.head_dim() / 2), 1});
  }
  if (version == 2 || !c.shared_classifier) s.push_back({"classifier", c.vocab_size * d, 1});
  return s;
}

std::vector<float> LlamaLayer::*const kLayerMembers[9] = {
    &LlamaLayer::attn_norm, &LlamaLayer::wq, &LlamaLayer::wk, &LlamaLayer::wv, &LlamaLayer::wo,
    &LlamaLayer::ffn_norm,  &LlamaLayer::w1, &LlamaLayer::w2, &LlamaLayer::w3};

std::uint64_t expected_bytes(const LlamaConfig& c, int version, std::size_t elem) {
  std::uint64_t n = 0;
  for (const TensorSpec& t : tensor_specs(c, version)) n += std::uint64_t{t.count} * t.repeat;
  return (version == 1 ? kHeaderBytesV1 : kHeaderBytesV2) + n * elem;
}

// The 7 shape fields shared by both versions; version 1 encodes a shared classifier
// in the sign of vocab_size.
LlamaConfig parse_shape(const std::int32_t (&h)[7], int version, std::string_view name) {
  const char* fields[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  const std::int64_t limits[7] = {kMaxDim, kMaxDim * 16, kMaxLayers, kMaxDim, kMaxDim, kMaxVocab, kMaxSeqLen};
  const char* what = version == 1 ? "a llama2.c checkpoint" : "an SPQLM checkpoint";
  for (int i = 0; i < 7; ++i) {
    const std::int64_t v = i == 5 && version == 1 ? std::abs(std::int64_t{h[i]}) : h[i];
    if (v < 1 || v > limits[i])
      bad(name, fmt::format("header field {}={} is out of range [1, {}]: corrupt or not {}", fields[i], h[i], limits[i],
                            what));
  }
  LlamaConfig c{.dim = std::size_t(h[0]),
                .hidden_dim = std::size_t(h[1]),
                .n_layers = std::size_t(h[2]),
                .n_heads = std::size_t(h[3]),
                .n_kv_heads = std::size_t(h[4]),
                .vocab_size = std::size_t(std::abs(std::int64_t{h[5]})),
                .seq_len = std::size_t(h[6]),
                .shared_classifier = version == 1 && h[5] > 0};
  if (c.dim % c.n_heads != 0) bad(name, fmt::format("dim={} is not a multiple of n_heads={}", c.dim, c.n_heads));
  if (c.head_dim() % 2 != 0) bad(name, fmt::format("head_dim={} is odd: RoPE needs an even head_dim", c.head_dim()));
  if (c.n_heads % c.n_kv_heads != 0)
    bad(name, fmt::format("n_heads={} is not a multiple of n_kv_heads={}", c.n_heads, c.n_kv_heads));
  return c;
}

void check_size(const LlamaConfig& c, const ParsedHeader& h, std::uint64_t actual, std::string_view name) {
  const std::uint64_t want = expected_bytes(c, h.version, size_of(h.dtype));
  if (actual != want)
    bad(name, fmt::format("{}: the header (dim={} hidden_dim={} n_layers={} n_heads={} n_kv_heads={} vocab_size={} "
                          "seq_len={}, {}) implies {} bytes but the file has {}",
                          actual < want ? "truncated" : "trailing bytes", c.dim, c.hidden_dim, c.n_layers, c.n_heads,
                          c.n_kv_heads, c.vocab_size, c.seq_len,
                          h.version == 2 ? fmt::format("version 2, {}", to_string(h.dtype))
                                         : fmt::format("{} classifier", c.shared_classifier ? "shared" : "separate"),
                          want, actual));
}

template <class T>
T read_at(std::span<const std::byte> bytes, std::size_t offset) {
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof v);
  return v;
}

void put(std::vector<std::byte>& out, const void* p, std::size_t n) {
  const auto* b = static_cast<const std::byte*>(p);
  out.insert(out.end(), b, b + n);
}

}  // namespace

ParsedHeader parse_checkpoint_header(std::span<const std::byte> bytes, std::string_view name) {
  ParsedHeader h;
  std::int32_t shape[7];
  const bool v2 = bytes.size() >= kMagic.size() && std::memcmp(bytes.data(), kMagic.data(), kMagic.size()) == 0;
  if (!v2) {
    if (bytes.size() < kHeaderBytesV1)
      bad(name,
          fmt::format("file has {} bytes, shorter than the 28-byte header: not a llama2.c checkpoint", bytes.size()));
    std::memcpy(shape, bytes.data(), sizeof shape);
    h.config = parse_shape(shape, 1, name);
    return h;
  }
  if (bytes.size() < kHeaderBytesV2)
    bad(name, fmt::format("file has {} bytes, shorter than the {}-byte SPQLM header: truncated", bytes.size(),
                          kHeaderBytesV2));
  h.version = int(read_at<std::uint32_t>(bytes, 8));
  if (h.version != 2)
    bad(name, fmt::format("SPQLM format version {} is not supported: this build reads version 2", h.version));
  const std::uint32_t code = read_at<std::uint32_t>(bytes, 12);
  if (code != 1 && code != 2) bad(name, fmt::format("dtype code {} is unknown: 1 (f16) or 2 (bf16)", code));
  h.dtype = code == 1 ? DType::f16 : DType::bf16;
  std::memcpy(shape, bytes.data() + 16, sizeof shape);
  h.config = parse_shape(shape, 2, name);
  h.config.rope_theta = read_at<float>(bytes, 44);
  h.config.norm_eps = read_at<float>(bytes, 48);
  if (!std::isfinite(h.config.rope_theta) || h.config.rope_theta <= 0.0f)
    bad(name, fmt::format("rope_theta={} is invalid: must be finite and > 0", h.config.rope_theta));
  if (!std::isfinite(h.config.norm_eps) || h.config.norm_eps <= 0.0f || h.config.norm_eps >= 1.0f)
    bad(name, fmt::format("norm_eps={} is invalid: must be in (0, 1)", h.config.norm_eps));
  return h;
}

void check_checkpoint_size(const ParsedHeader& h, std::uint64_t file_bytes, std::string_view name) {
  check_size(h.config, h, file_bytes, name);
}

LlamaWeights parse_llama_checkpoint(std::span<const std::byte> bytes, std::string_view name) {
  const ParsedHeader h = parse_checkpoint_header(bytes, name);
  check_size(h.config, h, bytes.size(), name);
  LlamaWeights w;
  w.config = h.config;
  w.info.version = h.version;
  w.info.dtype = h.dtype;
  const LlamaConfig& c = w.config;
  const std::size_t elem = size_of(h.dtype);

  std::size_t offset = h.version == 1 ? kHeaderBytesV1 : kHeaderBytesV2;
  auto take = [&](const char* tensor, std::size_t count, std::size_t layer) {
    std::vector<float> t(count);
    const std::byte* src = bytes.data() + offset;
    if (h.dtype == DType::f32) {
      std::memcpy(t.data(), src, count * sizeof(float));
    } else {
      for (std::size_t i = 0; i < count; ++i) {
        std::uint16_t u;
        std::memcpy(&u, src + 2 * i, 2);
        t[i] = h.dtype == DType::bf16 ? half::bf16_to_f32(u) : half::f16_to_f32(u);
      }
    }
    for (std::size_t i = 0; i < count; ++i)
      if (!std::isfinite(t[i]))
        bad(name, fmt::format("tensor {} (layer {}) element {} at byte {} is {}: weights must be finite", tensor, layer,
                              i, offset + i * elem, t[i]));
    offset += count * elem;
    return t;
  };
  const auto specs = tensor_specs(c, h.version);
  w.token_embedding = take("token_embedding", specs[0].count, 0);
  w.layers.resize(c.n_layers);
  for (std::size_t m = 0; m < 9; ++m)
    for (std::size_t l = 0; l < c.n_layers; ++l)
      w.layers[l].*kLayerMembers[m] = take(specs[1 + m].name, specs[1 + m].count, l);
  w.final_norm = take("final_norm", c.dim, 0);
  if (h.version == 1) offset += 2 * specs[11].count * elem;  // RoPE tables: recomputed by the model
  w.classifier = c.shared_classifier ? w.token_embedding : take("classifier", c.vocab_size * c.dim, 0);
  return w;
}

namespace {

// Appends every tensor of `w` (in file order, v1's RoPE tables excepted) through `emit`.
template <class Emit>
void emit_tensors(const LlamaWeights& w, int version, Emit&& emit) {
  const LlamaConfig& c = w.config;
  auto tensor = [&](const std::vector<float>& t, std::size_t count, const char* what) {
    if (t.size() != count)
      throw Error(ErrorCode::shape_mismatch,
                  fmt::format("tensor {} has {} floats, expected {}", what, t.size(), count));
    emit(t);
  };
  const auto specs = tensor_specs(c, version);
  tensor(w.token_embedding, specs[0].count, "token_embedding");
  if (w.layers.size() != c.n_layers)
    throw Error(ErrorCode::shape_mismatch, fmt::format("{} layers given, config says {}", w.layers.size(), c.n_layers));
  for (std::size_t m = 0; m < 9; ++m)
    for (const LlamaLayer& layer : w.layers) tensor(layer.*kLayerMembers[m], specs[1 + m].count, specs[1 + m].name);
  tensor(w.final_norm, c.dim, "final_norm");
}

}  // namespace

std::vector<std::byte> encode_llama_checkpoint(const LlamaWeights& w) {
  const LlamaConfig& c = w.config;
  const std::int32_t header[7] = {
      std::int32_t(c.dim),        std::int32_t(c.hidden_dim),
      std::int32_t(c.n_layers),   std::int32_t(c.n_heads),
      std::int32_t(c.n_kv_heads), c.shared_classifier ? std::int32_t(c.vocab_size) : -std::int32_t(c.vocab_size),
      std::int32_t(c.seq_len)};
  std::vector<std::byte> out;
  out.reserve(expected_bytes(c, 1, 4));
  put(out, header, sizeof header);
  emit_tensors(w, 1, [&](const std::vector<float>& t) { put(out, t.data(), t.size() * sizeof(float)); });
  const std::size_t half = c.head_dim() / 2;
  std::vector<float> cos_t(c.seq_len * half), sin_t(c.seq_len * half);
  for (std::size_t p = 0; p < c.seq_len; ++p)
    for (std::size_t i = 0; i < half; ++i) {
      const double freq = std::pow(double(c.rope_theta), -2.0 * double(i) / double(c.head_dim()));
      cos_t[p * half + i] = float(std::cos(double(p) * freq));
      sin_t[p * half + i] = float(std::sin(double(p) * freq));
    }
  put(out, cos_t.data(), cos_t.size() * sizeof(float));
  put(out, sin_t.data(), sin_t.size() * sizeof(float));
  if (!c.shared_classifier) {
    if (w.classifier.size() != c.vocab_size * c.dim)
      throw Error(ErrorCode::shape_mismatch, fmt::format("tensor classifier has {} floats, expected {}",
                                                         w.classifier.size(), c.vocab_size * c.dim));
    put(out, w.classifier.data(), w.classifier.size() * sizeof(float));
  }
  return out;
}

std::vector<std::byte> encode_spqlm_checkpoint(const LlamaWeights& w, DType dtype) {
  if (dtype == DType::f32)
    throw Error(ErrorCode::invalid_argument, "SPQLM checkpoints store f16 or bf16 weights, not f32");
  const LlamaConfig& c = w.config;
  std::vector<std::byte> out;
  out.reserve(expected_bytes(c, 2, 2));
  put(out, kMagic.data(), kMagic.size());
  const std::uint32_t version = 2, code = dtype == DType::f16 ? 1 : 2;
  put(out, &version, 4);
  put(out, &code, 4);
  const std::int32_t shape[7] = {std::int32_t(c.dim),     std::int32_t(c.hidden_dim), std::int32_t(c.n_layers),
                                 std::int32_t(c.n_heads), std::int32_t(c.n_kv_heads), std::int32_t(c.vocab_size),
                                 std::int32_t(c.seq_len)};
  put(out, shape, sizeof shape);
  put(out, &c.rope_theta, 4);
  put(out, &c.norm_eps, 4);
  auto emit = [&](const std::vector<float>& t) {
    for (float x : t) {
      const std::uint16_t u = dtype == DType::bf16 ? half::f32_to_bf16(x) : half::f32_to_f16(x);
      put(out, &u, 2);
    }
  };
  emit_tensors(w, 2, emit);
  const std::vector<float>& cls = c.shared_classifier ? w.token_embedding : w.classifier;
  if (cls.size() != c.vocab_size * c.dim)
    throw Error(ErrorCode::shape_mismatch,
                fmt::format("tensor classifier has {} floats, expected {}", cls.size(), c.vocab_size * c.dim));
  emit(cls);
  return out;
}

LlamaWeights random_llama_weights(const LlamaConfig& config, std::uint64_t seed, float scale) {
  LlamaWeights w;
  w.config = config;
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  auto rnd = [&](std::size_t n) {
    std::vector<float> t(n);
    for (float& x : t) x = normal(gen);
    return t;
  };
  const std::size_t d = config.dim, kv = config.kv_dim(), h = config.hidden_dim;
  w.token_embedding = rnd(config.vocab_size * d);
  for (std::size_t l = 0; l < config.n_layers; ++l)
    w.layers.push_back({.attn_norm = std::vector<float>(d, 1.0f),
                        .wq = rnd(d * d),
                        .wk = rnd(kv * d),
                        .wv = rnd(kv * d),
                        .wo = rnd(d * d),
                        .ffn_norm = std::vector<float>(d, 1.0f),
                        .w1 = rnd(h * d),
                        .w2 = rnd(d * h),
                        .w3 = rnd(h * d)});
  w.final_norm = std::vector<float>(d, 1.0f);
  w.classifier = config.shared_classifier ? w.token_embedding : rnd(config.vocab_size * d);
  return w;
}

}  // namespace sparq::model
