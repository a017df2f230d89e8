// Bad calls to the reference throw sparq::Error with the right code.
#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "reference/reference.hpp"
#include "sparq/error.hpp"
#include "test_layer.hpp"

namespace sparq::reference {
namespace {

using testing::LayerSpec;
using testing::random_floats;
using testing::TestLayer;

ErrorCode code_of(auto&& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "no sparq::Error thrown";
  return ErrorCode::unsupported;
}

TEST(ReferenceErrors, RejectsBadArguments) {
  const std::size_t H = 2, d = 4, S = 3;
  TestLayer layer(LayerSpec{.kv_heads = H, .head_dim = d}, random_floats(S * H * d, 40), random_floats(S * H * d, 41),
                  S);
  const LayerView& v = layer.view();
  const std::vector<float> q = random_floats(H * d, 42);
  const SparQResolved ok{.r = 2, .k = 2, .window = 1};
  EXPECT_EQ(code_of([&] { (void)sparq_decode(v, q, 0, H, 1, 0.5, SparQResolved{.r = 0, .k = 2}); }),
            ErrorCode::invalid_argument);
  EXPECT_EQ(code_of([&] { (void)sparq_decode(v, q, 0, H, 1, 0.5, SparQResolved{.r = d + 1, .k = 2}); }),
            ErrorCode::invalid_argument);
  EXPECT_EQ(code_of([&] { (void)sparq_decode(v, q, 0, H, 1, 0.5, SparQResolved{.r = 1, .k = 0}); }),
            ErrorCode::invalid_argument);
  EXPECT_EQ(code_of([&] { (void)sparq_decode(v, std::span(q).first(d + 1), 0, H, 1, 0.5, ok); }),
            ErrorCode::shape_mismatch);
  EXPECT_EQ(code_of([&] { (void)dense_decode(v, q, 1, 3, 1, 0.5); }), ErrorCode::invalid_argument);
  EXPECT_EQ(code_of([&] { (void)dense_decode(v, q, 1, 1, 1, 0.5); }), ErrorCode::invalid_argument);
  EXPECT_EQ(code_of([&] { (void)dense_decode(v, q, 0, H, 0, 0.5); }), ErrorCode::invalid_argument);
  EXPECT_EQ(code_of([&] { (void)dense_decode(v, q, 0, H, 1, std::numeric_limits<double>::infinity()); }),
            ErrorCode::non_finite_input);
  EXPECT_EQ(code_of([&] { (void)dense_causal(v, q, 0, 0, H, 1, 0.5); }), ErrorCode::invalid_argument);
  const std::vector<float> q4 = random_floats(4 * H * d, 43);
  EXPECT_EQ(code_of([&] { (void)dense_causal(v, q4, 4, 0, H, 1, 0.5); }), ErrorCode::invalid_argument);  // n_new > S
  LayerView empty = v;
  empty.length = 0;
  EXPECT_EQ(code_of([&] { (void)dense_decode(empty, q, 0, H, 1, 0.5); }), ErrorCode::empty_sequence);
  // The good call works.
  EXPECT_NO_THROW((void)sparq_decode(v, q, 0, H, 1, 0.5, ok));
}

}  // namespace
}  // namespace sparq::reference
