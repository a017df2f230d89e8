// decode() and decode_causal() reject bad input with the documented ErrorCode, a message
// naming the argument, and without writing any output.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "kernel_test_util.hpp"
#include "sparq/decode.hpp"
#include "sparq/error.hpp"

namespace sparq {
namespace {

class DecodeErrors : public ::testing::Test {
 protected:
  static constexpr std::size_t kD = 64, kKv = 2, kQ = 8;
  void SetUp() override {
    f_ = test::make_cache({.layers = 2, .kv_heads = kKv, .head_dim = kD, .dtype = DType::bf16, .block_tokens = 16},
                          {50, 0});
    q_ = test::normal_floats(kQ * kD, 1);
    out_.assign(kQ * kD, 42.0f);
    lse_.assign(kQ, 42.0f);
  }
  DecodeItem item() { return {.seq = f_.seqs[0], .q = q_, .out = out_}; }
  // Expects `code` with every `fragment` in the message, and the outputs untouched.
  void expect_error(ErrorCode code, const std::function<void()>& call, std::vector<std::string> fragments) {
    try {
      call();
      ADD_FAILURE() << "no error, expected " << to_string(code);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      for (const auto& frag : fragments) EXPECT_NE(std::string(e.what()).find(frag), std::string::npos) << e.what();
    }
    for (float v : out_) ASSERT_EQ(v, 42.0f) << "output written on error";
    for (float v : lse_) ASSERT_EQ(v, 42.0f) << "lse written on error";
  }
  void run(const DecodeItem& it, const DecodeOptions& o = {}, Method m = Dense{}, std::size_t layer = 0) {
    decode(*f_.cache, layer, m, {&it, 1}, o);
  }
  test::FilledCache f_;
  std::vector<float> q_, out_, lse_;
};

TEST_F(DecodeErrors, UnknownSequence) {
  auto it = item();
  it.seq = 12345;
  expect_error(ErrorCode::unknown_sequence, [&] { run(it); }, {});
}

TEST_F(DecodeErrors, EmptySequence) {
  auto it = item();
  it.seq = f_.seqs[1];
  expect_error(ErrorCode::empty_sequence, [&] { run(it); }, {"batch[0]", "S >= 1"});
}

TEST_F(DecodeErrors, LayerOutOfRange) {
  expect_error(ErrorCode::invalid_argument, [&] { run(item(), {}, Dense{}, 2); }, {"layer=2", "[0, 2)"});
}

TEST_F(DecodeErrors, QSizeNotAMultipleOfHeads) {
  std::vector<float> q(100, 0.0f);
  auto it = item();
  it.q = q;
  expect_error(ErrorCode::shape_mismatch, [&] { run(it); }, {"batch[0].q has 100 floats", "128"});
}

TEST_F(DecodeErrors, ItemsDisagreeOnQueryHeads) {
  std::vector<float> q(4 * kD, 0.0f);
  DecodeItem batch[] = {item(), item()};
  batch[1].q = q;
  expect_error(ErrorCode::shape_mismatch, [&] { decode(*f_.cache, 0, Dense{}, batch); },
               {"batch[1].q has 256 floats", "expected q_heads*head_dim = 512 (8*64)"});
}

TEST_F(DecodeErrors, OutLseAlphaSizes) {
  std::vector<float> small(3, 42.0f);
  auto it = item();
  it.out = std::span(out_).first(kD);
  expect_error(ErrorCode::shape_mismatch, [&] { run(it); }, {"batch[0].out has 64 floats", "512"});
  it = item();
  it.lse = small;
  expect_error(ErrorCode::shape_mismatch, [&] { run(it); }, {"batch[0].lse has 3 floats"});
  it = item();
  it.alpha = small;
  expect_error(ErrorCode::shape_mismatch, [&] { run(it); }, {"batch[0].alpha has 3 floats"});
}

TEST_F(DecodeErrors, NonFiniteQuery) {
  for (float bad : {std::nanf(""), std::numeric_limits<float>::infinity()}) {
    q_[17] = bad;
    auto it = item();
    it.lse = lse_;
    expect_error(ErrorCode::non_finite_input, [&] { run(it); }, {"batch[0].q[17]"});
  }
}

TEST_F(DecodeErrors, KvHeadRange) {
  expect_error(ErrorCode::invalid_argument, [&] { run(item(), {.kv_head_begin = 2}); },
               {"kv_head_begin=2", "kv_heads=2"});
  expect_error(ErrorCode::invalid_argument, [&] { run(item(), {.kv_head_begin = 1, .kv_head_end = 1}); },
               {"kv_head_end=1"});
  // Past the cache's heads is an error, not clamped to them; ~0 (the default) means all.
  expect_error(ErrorCode::invalid_argument, [&] { run(item(), {.kv_head_end = 3}); }, {"kv_head_end=3", "kv_heads=2"});
}

TEST_F(DecodeErrors, Scale) {
  expect_error(ErrorCode::invalid_argument, [&] { run(item(), {.scale = -1.0f}); }, {"scale"});
  expect_error(ErrorCode::invalid_argument, [&] { run(item(), {.scale = std::nanf("")}); }, {"scale"});
}

TEST_F(DecodeErrors, SparQParametersAreValidatedBeforeAnyWork) {
  SparQ m;
  m.r = 0;
  expect_error(ErrorCode::invalid_argument, [&] { run(item(), {}, m); }, {"r=0"});
  m.r = kD + 1;
  expect_error(ErrorCode::invalid_argument, [&] { run(item(), {}, m); }, {"r=65"});
  m.r.reset();
  m.k = 0;
  expect_error(ErrorCode::invalid_argument, [&] { run(item(), {}, m); }, {"k=0"});
}

TEST_F(DecodeErrors, LaterItemFailsBeforeEarlierOutputIsWritten) {
  std::vector<float> out0(kQ * kD, 42.0f);
  DecodeItem batch[] = {{.seq = f_.seqs[0], .q = q_, .out = out0}, item()};
  batch[1].seq = 999;
  expect_error(ErrorCode::unknown_sequence, [&] { decode(*f_.cache, 0, Dense{}, batch); }, {});
  for (float v : out0) ASSERT_EQ(v, 42.0f);
}

TEST_F(DecodeErrors, Causal) {
  auto call = [&](std::size_t n_new, std::span<const float> q) {
    decode_causal(*f_.cache, 0, f_.seqs[0], q, out_, n_new);
  };
  expect_error(ErrorCode::invalid_argument, [&] { call(0, q_); }, {"n_new=0", "[1, S=50]"});
  expect_error(ErrorCode::invalid_argument, [&] { call(51, q_); }, {"n_new=51"});
  const std::vector<float> q100(100, 0.0f);
  expect_error(ErrorCode::shape_mismatch, [&] { call(2, q100); }, {"q has 100 floats", "multiple of 256"});
  expect_error(ErrorCode::empty_sequence, [&] { decode_causal(*f_.cache, 0, f_.seqs[1], q_, out_, 1); }, {});
  q_[3] = std::nanf("");
  expect_error(ErrorCode::non_finite_input, [&] { call(1, q_); }, {"q[3]"});
}

}  // namespace
}  // namespace sparq
