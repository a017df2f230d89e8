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

#include "sparq/tools/model/llama_checkpoint.hpp"
#include "sparq/error.hpp"

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

}  // namespace
}  // namespace sparq::model
