#include "sparq/tools/model/llama_checkpoint.hpp"

#include <fmt/core.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <string>

#include "sparq/error.hpp"

namespace sparq::model {

namespace {

static_assert(std::endian::native == std::endian::little, "checkpoints are little-endian; add byte swapping");

constexpr std::size_t kHeaderBytes = 7 * sizeof(std::int32_t);

// Generous bounds: they only exist so that a corrupt header is refused before any
// size arithmetic could overflow or any large allocation is attempted.
constexpr std::int64_t kMaxDim = 1 << 16;
constexpr std::int64_t kMaxLayers = 1 << 10;
constexpr std::int64_t kMaxVocab = 1 << 22;
constexpr std::int64_t kMaxSeqLen = 1 << 24;

[[noreturn]] void bad(std::string_view name, const std::string& what) {
  throw Error(ErrorCode::bad_file, fmt::format("{}: {}", name, what));
}

// Floats in file order: the sizes of every tensor, named for error messages.
struct TensorSpec {
  const char* name;
  std::size_t count;   // floats per tensor
  std::size_t repeat;  // 1 or n_layers
};

std::vector<TensorSpec> tensor_specs(const LlamaConfig& c) {
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
                               {"final_norm", d, 1},
                               {"rope_cos", c.seq_len * (c.head_dim() / 2), 1},
                               {"rope_sin", c.seq_len * (c.head_dim() / 2), 1}};
  if (!c.shared_classifier) s.push_back({"classifier", c.vocab_size * d, 1});
  return s;
}

std::uint64_t expected_bytes(const LlamaConfig& c) {
  std::uint64_t floats = 0;
  for (const TensorSpec& t : tensor_specs(c)) floats += std::uint64_t{t.count} * t.repeat;
  return kHeaderBytes + floats * sizeof(float);
}

LlamaConfig parse_header(std::span<const std::byte> bytes, std::string_view name) {
  if (bytes.size() < kHeaderBytes)
    bad(name,
        fmt::format("file has {} bytes, shorter than the 28-byte header: not a llama2.c checkpoint", bytes.size()));
  std::int32_t h[7];
  std::memcpy(h, bytes.data(), kHeaderBytes);
  const char* fields[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  const std::int64_t limits[7] = {kMaxDim, kMaxDim * 16, kMaxLayers, kMaxDim, kMaxDim, kMaxVocab, kMaxSeqLen};
  for (int i = 0; i < 7; ++i) {
    const std::int64_t v = i == 5 ? std::abs(std::int64_t{h[i]}) : h[i];
    if (v < 1 || v > limits[i])
      bad(name, fmt::format("header field {}={} is out of range [1, {}]: corrupt or not a llama2.c checkpoint",
                            fields[i], h[i], limits[i]));
  }
  LlamaConfig c{.dim = std::size_t(h[0]),
                .hidden_dim = std::size_t(h[1]),
                .n_layers = std::size_t(h[2]),
                .n_heads = std::size_t(h[3]),
                .n_kv_heads = std::size_t(h[4]),
                .vocab_size = std::size_t(std::abs(std::int64_t{h[5]})),
                .seq_len = std::size_t(h[6]),
                .shared_classifier = h[5] > 0};
  if (c.dim % c.n_heads != 0) bad(name, fmt::format("dim={} is not a multiple of n_heads={}", c.dim, c.n_heads));
  if (c.head_dim() % 2 != 0) bad(name, fmt::format("head_dim={} is odd: RoPE needs an even head_dim", c.head_dim()));
  if (c.n_heads % c.n_kv_heads != 0)
    bad(name, fmt::format("n_heads={} is not a multiple of n_kv_heads={}", c.n_heads, c.n_kv_heads));
  return c;
}

void check_size(const LlamaConfig& c, std::uint64_t actual, std::string_view name) {
  const std::uint64_t want = expected_bytes(c);
  if (actual != want)
    bad(name,
        fmt::format("{}: the header (dim={} hidden_dim={} n_layers={} n_heads={} n_kv_heads={} vocab_size={} "
                    "seq_len={}, {} classifier) implies {} bytes but the file has {}",
                    actual < want ? "truncated" : "trailing bytes", c.dim, c.hidden_dim, c.n_layers, c.n_heads,
                    c.n_kv_heads, c.vocab_size, c.seq_len, c.shared_classifier ? "shared" : "separate", want, actual));
}

void put(std::vector<std::byte>& out, const void* p, std::size_t n) {
  const auto* b = static_cast<const std::byte*>(p);
  out.insert(out.end(), b, b + n);
}

}  // namespace

LlamaWeights parse_llama_checkpoint(std::span<const std::byte> bytes, std::string_view name) {
  LlamaWeights w;
  w.config = parse_header(bytes, name);
  const LlamaConfig& c = w.config;
  check_size(c, bytes.size(), name);

  std::size_t offset = kHeaderBytes;
  auto take = [&](const char* tensor, std::size_t count, std::size_t layer) {
    std::vector<float> t(count);
    std::memcpy(t.data(), bytes.data() + offset, count * sizeof(float));
    for (std::size_t i = 0; i < count; ++i)
      if (!std::isfinite(t[i]))
        bad(name, fmt::format("tensor {} (layer {}) element {} at byte {} is {}: weights must be finite", tensor, layer,
                              i, offset + i * sizeof(float), t[i]));
    offset += count * sizeof(float);
    return t;
  };
  const auto specs = tensor_specs(c);
  w.token_embedding = take("token_embedding", specs[0].count, 0);
  w.layers.resize(c.n_layers);
  std::vector<float> LlamaLayer::*members[] = {&LlamaLayer::attn_norm, &LlamaLayer::wq, &LlamaLayer::wk,
                                               &LlamaLayer::wv,        &LlamaLayer::wo, &LlamaLayer::ffn_norm,
                                               &LlamaLayer::w1,        &LlamaLayer::w2, &LlamaLayer::w3};
  for (std::size_t m = 0; m < 9; ++m)
    for (std::size_t l = 0; l < c.n_layers; ++l)
      w.layers[l].*members[m] = take(specs[1 + m].name, specs[1 + m].count, l);
  w.final_norm = take("final_norm", c.dim, 0);
  offset += 2 * specs[11].count * sizeof(float);  // RoPE tables: recomputed by the model
  w.classifier = c.shared_classifier ? w.token_embedding : take("classifier", c.vocab_size * c.dim, 0);
  return w;
}

LlamaWeights load_llama_checkpoint(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::io_error, fmt::format("{}: cannot open the model file", name));
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(ErrorCode::io_error, fmt::format("{}: cannot read the file size: {}", name, ec.message()));
  // Read the header first so that a huge non-checkpoint file is refused before it is read.
  std::vector<std::byte> bytes(std::min<std::uintmax_t>(size, kHeaderBytes));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  const LlamaConfig c = parse_header(bytes, name);
  check_size(c, size, name);
  bytes.resize(size);
  in.read(reinterpret_cast<char*>(bytes.data()) + kHeaderBytes, static_cast<std::streamsize>(size - kHeaderBytes));
  if (!in) throw Error(ErrorCode::io_error, fmt::format("{}: read failed", name));
  return parse_llama_checkpoint(bytes, name);
}

std::vector<std::byte> encode_llama_checkpoint(const LlamaWeights& w) {
  const LlamaConfig& c = w.config;
  const std::int32_t header[7] = {
      std::int32_t(c.dim),        std::int32_t(c.hidden_dim),
      std::int32_t(c.n_layers),   std::int32_t(c.n_heads),
      std::int32_t(c.n_kv_heads), c.shared_classifier ? std::int32_t(c.vocab_size) : -std::int32_t(c.vocab_size),
      std::int32_t(c.seq_len)};
  std::vector<std::byte> out;
  out.reserve(expected_bytes(c));
  put(out, header, sizeof header);
  auto tensor = [&](const std::vector<float>& t, std::size_t count, const char* what) {
    if (t.size() != count)
      throw Error(ErrorCode::shape_mismatch,
                  fmt::format("tensor {} has {} floats, expected {}", what, t.size(), count));
    put(out, t.data(), count * sizeof(float));
  };
  const auto specs = tensor_specs(c);
  tensor(w.token_embedding, specs[0].count, "token_embedding");
  if (w.layers.size() != c.n_layers)
    throw Error(ErrorCode::shape_mismatch, fmt::format("{} layers given, config says {}", w.layers.size(), c.n_layers));
  std::vector<float> LlamaLayer::*members[] = {&LlamaLayer::attn_norm, &LlamaLayer::wq, &LlamaLayer::wk,
                                               &LlamaLayer::wv,        &LlamaLayer::wo, &LlamaLayer::ffn_norm,
                                               &LlamaLayer::w1,        &LlamaLayer::w2, &LlamaLayer::w3};
  for (std::size_t m = 0; m < 9; ++m)
    for (const LlamaLayer& layer : w.layers) tensor(layer.*members[m], specs[1 + m].count, specs[1 + m].name);
  tensor(w.final_norm, c.dim, "final_norm");
  const std::size_t half = c.head_dim() / 2;
  std::vector<float> cos_t(c.seq_len * half), sin_t(c.seq_len * half);
  for (std::size_t p = 0; p < c.seq_len; ++p)
    for (std::size_t i = 0; i < half; ++i) {
      const double freq = std::pow(10000.0, -2.0 * double(i) / double(c.head_dim()));
      cos_t[p * half + i] = float(std::cos(double(p) * freq));
      sin_t[p * half + i] = float(std::sin(double(p) * freq));
    }
  put(out, cos_t.data(), cos_t.size() * sizeof(float));
  put(out, sin_t.data(), sin_t.size() * sizeof(float));
  if (!c.shared_classifier) tensor(w.classifier, c.vocab_size * c.dim, "classifier");
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
