// The llama2.c-layout checkpoint loader: round trip, and clear sparq::Error (never a
// crash) on truncated, padded, corrupt or missing files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "common/half_float.hpp"
#include "sparq/error.hpp"
#include "sparq/tools/model/llama_checkpoint.hpp"

namespace sparq::model {
namespace {

LlamaConfig tiny_config(bool shared = false) {
  return {.dim = 8,
          .hidden_dim = 12,
          .n_layers = 2,
          .n_heads = 2,
          .n_kv_heads = 1,
          .vocab_size = 7,
          .seq_len = 5,
          .shared_classifier = shared};
}

std::filesystem::path temp_file(const std::string& name, const std::vector<std::byte>& bytes) {
  const auto path = std::filesystem::temp_directory_path() / ("sparq_model_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  return path;
}

// Runs `fn`, expects sparq::Error with `code` whose message contains `needle`.
template <class Fn>
void expect_error(Fn&& fn, ErrorCode code, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown; expected one containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what();
  }
}

TEST(Checkpoint, RoundTripSeparateAndSharedClassifier) {
  for (bool shared : {false, true}) {
    const LlamaWeights w = random_llama_weights(tiny_config(shared), 7);
    const auto bytes = encode_llama_checkpoint(w);
    const LlamaWeights r = parse_llama_checkpoint(bytes, "mem");
    EXPECT_EQ(r.config.dim, 8u);
    EXPECT_EQ(r.config.shared_classifier, shared);
    EXPECT_EQ(r.token_embedding, w.token_embedding);
    ASSERT_EQ(r.layers.size(), 2u);
    EXPECT_EQ(r.layers[1].wk, w.layers[1].wk) << "shared=" << shared;
    EXPECT_EQ(r.layers[0].w2, w.layers[0].w2) << "shared=" << shared;
    EXPECT_EQ(r.classifier, w.classifier) << "shared=" << shared;
    const auto path = temp_file("roundtrip.bin", bytes);
    EXPECT_EQ(load_llama_checkpoint(path).layers[1].w3, w.layers[1].w3);
    std::filesystem::remove(path);
  }
}

TEST(Checkpoint, TruncatedFilesAreRefusedWithTheExpectedSize) {
  const auto bytes = encode_llama_checkpoint(random_llama_weights(tiny_config(), 1));
  for (std::size_t keep : {std::size_t{0}, std::size_t{5}, std::size_t{28}, std::size_t{100}, bytes.size() - 1}) {
    const std::vector<std::byte> cut(bytes.begin(), bytes.begin() + std::ptrdiff_t(keep));
    SCOPED_TRACE("keep=" + std::to_string(keep));
    if (keep < 28) {
      expect_error([&] { (void)parse_llama_checkpoint(cut, "cut.bin"); }, ErrorCode::bad_file, "header");
    } else {
      expect_error([&] { (void)parse_llama_checkpoint(cut, "cut.bin"); }, ErrorCode::bad_file, "truncated");
      const auto path = temp_file("cut.bin", cut);
      expect_error([&] { (void)load_llama_checkpoint(path); }, ErrorCode::bad_file,
                   std::to_string(bytes.size()) + " bytes but the file has " + std::to_string(keep));
      std::filesystem::remove(path);
    }
  }
}

TEST(Checkpoint, TrailingBytesAreRefused) {
  auto bytes = encode_llama_checkpoint(random_llama_weights(tiny_config(), 1));
  bytes.resize(bytes.size() + 4);
  expect_error([&] { (void)parse_llama_checkpoint(bytes, "long.bin"); }, ErrorCode::bad_file, "trailing bytes");
}

TEST(Checkpoint, CorruptHeadersAreRefused) {
  const auto good = encode_llama_checkpoint(random_llama_weights(tiny_config(), 1));
  struct Case {
    int field;
    std::int32_t value;
    const char* needle;
  };
  for (const Case& c : {Case{0, -8, "dim=-8"}, Case{0, 0, "dim=0"}, Case{2, 1 << 30, "n_layers"},
                        Case{3, 3, "not a multiple of n_heads=3"}, Case{4, 3, "n_kv_heads=3"},
                        Case{5, 0, "vocab_size=0"}, Case{6, -1, "seq_len=-1"}, Case{3, 8, "head_dim=1 is odd"}}) {
    auto bytes = good;
    std::memcpy(bytes.data() + 4 * c.field, &c.value, 4);
    SCOPED_TRACE(c.needle);
    expect_error([&] { (void)parse_llama_checkpoint(bytes, "bad.bin"); }, ErrorCode::bad_file, c.needle);
  }
}

TEST(Checkpoint, NonFiniteWeightIsRefused) {
  auto bytes = encode_llama_checkpoint(random_llama_weights(tiny_config(), 1));
  const float nan = std::nanf("");
  std::memcpy(bytes.data() + 28 + 4 * 10, &nan, 4);  // in the embedding [7][8]
  expect_error([&] { (void)parse_llama_checkpoint(bytes, "nan.bin"); }, ErrorCode::bad_file, "token_embedding");
}

TEST(Checkpoint, MissingFileIsAnIoError) {
  expect_error([] { (void)load_llama_checkpoint("/nonexistent/sparq/model.bin"); }, ErrorCode::io_error,
               "/nonexistent/sparq/model.bin");
}

TEST(Checkpoint, RandomCorruptionNeverCrashes) {
  const auto good = encode_llama_checkpoint(random_llama_weights(tiny_config(), 3));
  std::mt19937 gen(42);
  for (int trial = 0; trial < 300; ++trial) {
    auto bytes = good;
    const int flips = 1 + int(gen() % 4);
    for (int f = 0; f < flips; ++f) {
      const std::size_t at = trial % 2 ? gen() % 28 : gen() % bytes.size();  // half in the header
      bytes[at] = std::byte(gen() & 0xff);
    }
    if (trial % 7 == 0) bytes.resize(gen() % bytes.size());
    try {
      const LlamaWeights w = parse_llama_checkpoint(bytes, "fuzz.bin");
      EXPECT_EQ(w.layers.size(), w.config.n_layers);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::bad_file) << e.what();
    }
  }
}

// ---- Version 2 (SPQLM, f16/bf16) -------------------------------------------------------

std::vector<float> rounded(const std::vector<float>& t, DType dtype) {
  std::vector<float> r;
  for (float x : t)
    r.push_back(dtype == DType::bf16 ? half::bf16_to_f32(half::f32_to_bf16(x)) : half::f16_to_f32(half::f32_to_f16(x)));
  return r;
}

TEST(CheckpointV2, HalfConversionsRoundToNearestEven) {
  EXPECT_EQ(half::f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(half::f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(half::f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(half::f32_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(half::f32_to_f16(65520.0f), 0x7c00);  // the first value that rounds to infinity
  EXPECT_EQ(half::f32_to_f16(0.1f), 0x2e66);
  EXPECT_EQ(half::f32_to_f16(5.9604644775390625e-8f), 0x0001);   // 2^-24, the smallest subnormal
  EXPECT_EQ(half::f32_to_f16(2.98023223876953125e-8f), 0x0000);  // 2^-25: a tie, to even (0)
  EXPECT_EQ(half::f32_to_f16(8.940696716308594e-8f), 0x0002);    // 1.5 * 2^-24: a tie, to even (2)
  EXPECT_EQ(half::f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);       // halfway between 1 and its successor: to even
  EXPECT_EQ(half::f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);
  EXPECT_FLOAT_EQ(half::f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_FLOAT_EQ(half::f16_to_f32(0x0001), 5.9604644775390625e-8f);
  EXPECT_TRUE(std::isinf(half::f16_to_f32(0x7c00)));
  EXPECT_TRUE(std::isnan(half::f16_to_f32(0x7e00)));
  EXPECT_EQ(half::f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(half::f32_to_bf16(1.00390625f), 0x3f80);  // tie to even
  EXPECT_EQ(half::f32_to_bf16(1.01171875f), 0x3f82);  // tie to even (up)
  EXPECT_EQ(half::bf16_to_f32(0xc040), -3.0f);
  EXPECT_TRUE(std::isnan(half::bf16_to_f32(half::f32_to_bf16(std::nanf("")))));
  for (std::uint32_t u = 0; u < 0x7c00; u += 7) EXPECT_EQ(half::f32_to_f16(half::f16_to_f32(std::uint16_t(u))), u) << u;
}

TEST(CheckpointV2, RoundTripBf16AndF16WithHeaderFields) {
  LlamaConfig c = tiny_config();
  c.rope_theta = 500000.0f;
  c.norm_eps = 1e-6f;
  const LlamaWeights w = random_llama_weights(c, 9);
  for (DType dtype : {DType::bf16, DType::f16}) {
    SCOPED_TRACE(std::string(to_string(dtype)));
    const auto bytes = encode_spqlm_checkpoint(w, dtype);
    // header 52 bytes, then 2 bytes per element, classifier always stored
    const std::size_t d = 8, kv = 4, h = 12, L = 2, V = 7;
    EXPECT_EQ(bytes.size(), 52 + 2 * (2 * V * d + L * (2 * d + 2 * d * d + 2 * kv * d + 3 * h * d) + d));
    const LlamaWeights r = parse_llama_checkpoint(bytes, "v2.bin");
    EXPECT_EQ(r.info.version, 2);
    EXPECT_EQ(r.info.dtype, dtype);
    EXPECT_EQ(r.config.rope_theta, 500000.0f);
    EXPECT_EQ(r.config.norm_eps, 1e-6f);
    EXPECT_FALSE(r.config.shared_classifier);
    EXPECT_EQ(r.config.n_kv_heads, 1u);
    EXPECT_EQ(r.token_embedding, rounded(w.token_embedding, dtype));
    EXPECT_EQ(r.layers[1].wv, rounded(w.layers[1].wv, dtype));
    EXPECT_EQ(r.layers[0].w2, rounded(w.layers[0].w2, dtype));
    EXPECT_EQ(r.final_norm, rounded(w.final_norm, dtype));
    EXPECT_EQ(r.classifier, rounded(w.classifier, dtype));
  }
  // A shared classifier is written out in full.
  const LlamaWeights shared = random_llama_weights(tiny_config(true), 2);
  EXPECT_EQ(parse_llama_checkpoint(encode_spqlm_checkpoint(shared, DType::bf16), "s.bin").classifier,
            rounded(shared.token_embedding, DType::bf16));
  EXPECT_THROW((void)encode_spqlm_checkpoint(w, DType::f32), Error);
}

TEST(CheckpointV2, CorruptHeadersSizesAndWeightsAreRefused) {
  const auto good = encode_spqlm_checkpoint(random_llama_weights(tiny_config(), 4), DType::bf16);
  struct Case {
    std::size_t offset;
    std::uint32_t value;
    const char* needle;
  };
  const float nan = std::nanf(""), zero = 0.0f;
  std::uint32_t nan_bits, zero_bits;
  std::memcpy(&nan_bits, &nan, 4);
  std::memcpy(&zero_bits, &zero, 4);
  for (const Case& c :
       {Case{8, 3, "version 3 is not supported"}, Case{12, 0, "dtype code 0"}, Case{12, 3, "dtype code 3"},
        Case{16, 0xffffffffu, "dim=-1"}, Case{36, 0x80000000u, "vocab_size=-2147483648"}, Case{28, 3, "not a multiple"},
        Case{44, nan_bits, "rope_theta"}, Case{48, zero_bits, "norm_eps=0"}, Case{20, 13, "truncated"},
        Case{20, 11, "trailing bytes"}}) {
    auto bytes = good;
    std::memcpy(bytes.data() + c.offset, &c.value, 4);
    SCOPED_TRACE(c.needle);
    expect_error([&] { (void)parse_llama_checkpoint(bytes, "bad.bin"); }, ErrorCode::bad_file, c.needle);
  }
  for (std::size_t keep : {std::size_t{8}, std::size_t{51}, good.size() - 1}) {
    const std::vector<std::byte> cut(good.begin(), good.begin() + std::ptrdiff_t(keep));
    expect_error([&] { (void)parse_llama_checkpoint(cut, "cut.bin"); }, ErrorCode::bad_file,
                 keep < 52 ? "SPQLM header" : "truncated");
  }
  auto inf = good;
  const std::uint16_t inf_bf16 = 0x7f80;
  std::memcpy(inf.data() + 52 + 2 * 60, &inf_bf16, 2);  // inside attn_norm (the embedding is 7 x 8)
  expect_error([&] { (void)parse_llama_checkpoint(inf, "inf.bin"); }, ErrorCode::bad_file, "attn_norm");
}

TEST(CheckpointV2, RandomCorruptionNeverCrashes) {
  const auto good = encode_spqlm_checkpoint(random_llama_weights(tiny_config(), 3), DType::f16);
  std::mt19937 gen(43);
  for (int trial = 0; trial < 300; ++trial) {
    auto bytes = good;
    const int flips = 1 + int(gen() % 4);
    for (int f = 0; f < flips; ++f) bytes[trial % 2 ? gen() % 52 : gen() % bytes.size()] = std::byte(gen() & 0xff);
    if (trial % 7 == 0) bytes.resize(gen() % bytes.size());
    try {
      const LlamaWeights w = parse_llama_checkpoint(bytes, "fuzz.bin");
      EXPECT_EQ(w.layers.size(), w.config.n_layers);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::bad_file) << e.what();
    }
  }
}

// ---- Files and SHA-256 sidecars ---------------------------------------------------------

TEST(CheckpointFile, Sha256OfKnownVectors) {
  const std::string abc = "abc";
  EXPECT_EQ(sha256_hex(std::as_bytes(std::span(abc))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex({}), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(CheckpointFile, SidecarIsVerifiedAndAMismatchNamesBothHashes) {
  const auto dir = std::filesystem::temp_directory_path() / ("sparq_model_sha_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / "m.bin";
  const auto bytes = encode_spqlm_checkpoint(random_llama_weights(tiny_config(), 5), DType::bf16);
  write_checkpoint_file(path, bytes);
  const std::string hash = sha256_hex(bytes);
  {
    std::ifstream side(path.string() + ".sha256");
    std::string line;
    std::getline(side, line);
    EXPECT_EQ(line, hash + "  m.bin");
  }
  const LlamaWeights w = load_llama_checkpoint(path, {.require_hash = true});
  EXPECT_TRUE(w.info.hash_verified);
  EXPECT_EQ(w.info.sha256, hash);
  EXPECT_EQ(w.info.version, 2);

  // One flipped weight byte (same size): the hash catches it.
  auto corrupt = bytes;
  corrupt[200] ^= std::byte{1};
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(corrupt.data()), std::streamsize(corrupt.size()));
  }
  expect_error([&] { (void)load_llama_checkpoint(path); }, ErrorCode::bad_file,
               "SHA-256 mismatch: the file hashes to " + sha256_hex(corrupt));
  expect_error([&] { (void)load_llama_checkpoint(path); }, ErrorCode::bad_file, "says " + hash);

  // Sidecars that are not one: malformed, another file's, too long.
  for (const std::string& side :
       {std::string("nothex  m.bin\n"), hash + "  other.bin\n", hash + "m.bin\n", std::string(5000, 'a')}) {
    std::ofstream(path.string() + ".sha256", std::ios::trunc) << side;
    try {
      (void)load_llama_checkpoint(path);
      ADD_FAILURE() << "sidecar accepted: " << side.substr(0, 80);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::bad_file) << e.what();
    }
  }
  // sha256sum's binary-mode marker and upper-case hex are accepted.
  std::string upper = sha256_hex(corrupt);
  for (char& ch : upper) ch = char(std::toupper(static_cast<unsigned char>(ch)));
  std::ofstream(path.string() + ".sha256", std::ios::trunc) << upper << " *m.bin\n";
  EXPECT_TRUE(load_llama_checkpoint(path).info.hash_verified);

  // Without a sidecar: loads unless one is required.
  std::filesystem::remove(path.string() + ".sha256");
  EXPECT_FALSE(load_llama_checkpoint(path).info.hash_verified);
  expect_error([&] { (void)load_llama_checkpoint(path, {.require_hash = true}); }, ErrorCode::bad_file, "no hash file");
  std::filesystem::remove_all(dir);
}

TEST(CheckpointFile, Version1FilesStillLoadWithDefaults) {
  const auto path = temp_file("v1.bin", encode_llama_checkpoint(random_llama_weights(tiny_config(), 6)));
  const LlamaWeights w = load_llama_checkpoint(path);
  EXPECT_EQ(w.info.version, 1);
  EXPECT_EQ(w.info.dtype, DType::f32);
  EXPECT_EQ(w.config.rope_theta, 10000.0f);
  EXPECT_EQ(w.config.norm_eps, 1e-5f);
  EXPECT_EQ(w.info.sha256.size(), 64u);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace sparq::model
