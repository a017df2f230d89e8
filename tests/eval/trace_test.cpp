// Trace reading and writing: round trip, the format `sparq generate` writes, and a clear
// error for every kind of broken trace.
#include "sparq/tools/eval/trace.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "sparq/error.hpp"
#include "sparq/tools/eval/synthetic_trace.hpp"
#include "sparq/tools/npy.hpp"

namespace sparq::eval {
namespace {

namespace fs = std::filesystem;

class TraceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sparq-trace-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A small valid trace: 2 layers, 4 q heads, 2 KV heads, d = 8, 12 positions.
  SyntheticTrace write_small() {
    SyntheticOptions o;
    o.shape = {.layers = 2, .q_heads = 4, .kv_heads = 2, .head_dim = 8};
    o.positions = 12;
    o.needles = 2;
    return write_synthetic_trace(dir_, o);
  }
  void write_text(const std::string& name, const std::string& text) {
    fs::create_directories(dir_);
    std::ofstream(dir_ / name) << text;
  }
  // Reads the whole trace; returns the error (code and message) it threw.
  std::pair<ErrorCode, std::string> read_error() {
    try {
      const TraceManifest m = read_trace_manifest(dir_);
      for (std::size_t l = 0; l < m.shape.layers; ++l) (void)read_trace_layer(dir_, m, l);
    } catch (const Error& e) {
      return {e.code(), e.what()};
    }
    ADD_FAILURE() << "no error";
    return {};
  }

  fs::path dir_;
};

TEST_F(TraceTest, RoundTrip) {
  const SyntheticTrace s = write_small();
  const TraceManifest m = read_trace_manifest(dir_);
  EXPECT_EQ(m.shape.layers, 2u);
  EXPECT_EQ(m.shape.q_heads, 4u);
  EXPECT_EQ(m.shape.kv_heads, 2u);
  EXPECT_EQ(m.shape.head_dim, 8u);
  EXPECT_EQ(m.positions, 12u);
  EXPECT_EQ(m.prefill, s.manifest.prefill);
  EXPECT_EQ(m.source, s.manifest.source);
  EXPECT_DOUBLE_EQ(m.softmax_scale(), 1.0 / std::sqrt(8.0));
  for (std::size_t l = 0; l < 2; ++l) {
    const TraceLayer t = read_trace_layer(dir_, m, l);
    EXPECT_EQ(t.q, s.layers[l].q);
    EXPECT_EQ(t.k, s.layers[l].k);
    EXPECT_EQ(t.v, s.layers[l].v);
  }
}

TEST_F(TraceTest, WriterCollectsPositionsAndWritesManifestLast) {
  TraceManifest m;
  m.shape = {.layers = 1, .q_heads = 2, .kv_heads = 1, .head_dim = 2};
  m.source = "test";
  TraceWriter w(dir_, m);
  const std::vector<float> q = {1, 2, 3, 4}, k = {5, 6}, v = {7, 8};
  w.append(0, q, k, v);
  w.append(0, q, k, v);
  EXPECT_EQ(w.positions(0), 2u);
  EXPECT_THROW(w.append(0, k, k, v), Error);  // q too short
  EXPECT_THROW(w.append(1, q, k, v), Error);  // no layer 1
  const std::vector<float> nan = {NAN, 1};
  EXPECT_THROW(w.append(0, q, nan, v), Error);
  EXPECT_THROW(w.finish(2), Error);  // prefill must leave a decode step
  w.finish(1);
  const TraceManifest r = read_trace_manifest(dir_);
  EXPECT_EQ(r.positions, 2u);
  EXPECT_EQ(r.prefill, 1u);
  const TraceLayer t = read_trace_layer(dir_, r, 0);
  EXPECT_EQ(t.q, (std::vector<float>{1, 2, 3, 4, 1, 2, 3, 4}));
  EXPECT_EQ(t.key(1, 0)[1], 6.0f);
}

// The manifest `sparq generate` writes (lib/model/model_trace.cpp): extra fields, no
// prefill, explicit file names.
TEST_F(TraceTest, ReadsTheModelRunnersManifest) {
  write_small();
  write_text("manifest.json", R"({"format": "sparq-decode-trace", "version": 1, "source": "tiny",
    "layers": 2, "q_heads": 4, "kv_heads": 2, "head_dim": 8, "positions": 12, "causal": true,
    "scale": 0.25, "dtype": "float32", "rope": {"base": 10000.0, "pairs": "adjacent", "applied": true},
    "model": {"dim": 32}, "tokens": "tokens.npy",
    "files": [{"q": "layer0_q.npy", "k": "layer0_k.npy", "v": "layer0_v.npy"},
              {"q": "layer1_q.npy", "k": "layer1_k.npy", "v": "layer1_v.npy"}]})");
  const TraceManifest m = read_trace_manifest(dir_);
  EXPECT_EQ(m.prefill, 0u);
  EXPECT_EQ(m.source, "tiny");
  EXPECT_DOUBLE_EQ(m.softmax_scale(), 0.25);
  ASSERT_TRUE(m.rope);
  EXPECT_DOUBLE_EQ(m.rope->base, 10000.0);
  EXPECT_EQ(read_trace_layer(dir_, m, 1).positions, 12u);
}

TEST_F(TraceTest, MissingDirectoryOrManifest) {
  auto [code, msg] = read_error();
  EXPECT_EQ(code, ErrorCode::io_error);
  EXPECT_NE(msg.find("not a directory"), std::string::npos) << msg;
  fs::create_directories(dir_);
  std::tie(code, msg) = read_error();
  EXPECT_EQ(code, ErrorCode::io_error);
  EXPECT_NE(msg.find("manifest.json"), std::string::npos) << msg;
}

TEST_F(TraceTest, MissingArray) {
  write_small();
  fs::remove(dir_ / "layer1_v.npy");
  const auto [code, msg] = read_error();
  EXPECT_EQ(code, ErrorCode::io_error);
  EXPECT_NE(msg.find("layer1_v.npy"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
}

TEST_F(TraceTest, ShapeDisagreesWithManifest) {
  write_small();
  const std::vector<float> data(12 * 3 * 8, 0.0f);
  const std::size_t shape[] = {12, 3, 8};
  write_npy(dir_ / "layer0_k.npy", data, shape);
  const auto [code, msg] = read_error();
  EXPECT_EQ(code, ErrorCode::shape_mismatch);
  EXPECT_NE(msg.find("layer0_k.npy"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[12, 3, 8]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[12, 2, 8]"), std::string::npos) << msg;
}

TEST_F(TraceTest, NaNIsRefusedWithItsIndex) {
  SyntheticTrace s = write_small();
  std::vector<float> q = s.layers[0].q;
  q[(5 * 4 + 1) * 8 + 3] = NAN;
  const std::size_t shape[] = {12, 4, 8};
  write_npy(dir_ / "layer0_q.npy", q, shape);
  const auto [code, msg] = read_error();
  EXPECT_EQ(code, ErrorCode::non_finite_input);
  EXPECT_NE(msg.find("[5, 1, 3]"), std::string::npos) << msg;
}

TEST_F(TraceTest, CorruptNpy) {
  write_small();
  write_text("layer0_q.npy", "not an npy file");
  const auto [code, msg] = read_error();
  EXPECT_EQ(code, ErrorCode::bad_file);
  EXPECT_NE(msg.find("layer0_q.npy"), std::string::npos) << msg;
}

TEST_F(TraceTest, BadManifests) {
  write_small();
  const std::string base =
      R"("format": "sparq-decode-trace", "version": 1, "layers": 2, "q_heads": 4, "kv_heads": 2, "head_dim": 8)";
  const std::pair<std::string, std::string> cases[] = {
      {"{", "not valid JSON"},
      {"[1, 2]", "JSON object"},
      {R"({"format": "other", "version": 1})", "\"format\""},
      {R"({"format": {"base": 1}, "version": 1})", "\"format\""},  // found by tests/fuzz
      {R"({"format": "sparq-decode-trace", "version": 7})", "\"version\""},
      {"{" + base + "}", "\"positions\""},
      {"{" + base + R"(, "positions": -3})", "non-negative integer"},
      {"{" + base + R"(, "positions": 12, "prefill": 12})", "prefill"},
      {"{" + base + R"(, "positions": 12, "dtype": "float16"})", "\"dtype\""},
      {"{" + base + R"(, "positions": 12, "files": [{"q": "/etc/passwd", "k": "a", "v": "b"}, {}]})", "files[0]"},
      {"{" + base + R"(, "positions": 12, "files": []})", "\"files\""},
      {"{" + base + R"(, "positions": 12, "files": [{"q": "a/../../x.npy", "k": "a", "v": "b"}, {}]})", "files[0]"},
      {R"({"format": "sparq-decode-trace", "version": 1, "layers": 2, "q_heads": 3, "kv_heads": 2, "head_dim": 8, "positions": 12})",
       "multiple"},
  };
  for (const auto& [text, expected] : cases) {
    write_text("manifest.json", text);
    const auto [code, msg] = read_error();
    EXPECT_NE(msg.find(expected), std::string::npos) << "manifest: " << text << "\nmessage: " << msg;
    EXPECT_NE(msg.find("manifest.json"), std::string::npos) << msg;
    EXPECT_NE(code, ErrorCode::io_error) << msg;
  }
}

}  // namespace
}  // namespace sparq::eval
