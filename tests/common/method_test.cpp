// SparQ parameter defaults and overrides (DESIGN §1 "Defaults").
#include "sparq/method.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "sparq/error.hpp"

namespace sparq {
namespace {

TEST(SparQResolveTest, RatioDerivesRKWindowAndReallocation) {
  // d = 128, S = 16384, c = 8: r = 16, k = 1024, l = 256; reallocation on for MHA.
  SparQResolved p = SparQ::for_ratio(8).resolve(128, 16384, 1);
  EXPECT_EQ(p.r, 16u);
  EXPECT_EQ(p.k, 1024u);
  EXPECT_EQ(p.window, 256u);
  EXPECT_TRUE(p.reallocation);
  EXPECT_EQ(p.gqa, GqaSelection::shared);
  // GQA: reallocation off by default.
  EXPECT_FALSE(SparQ::for_ratio(8).resolve(128, 16384, 4).reallocation);
}

TEST(SparQResolveTest, RoundsHalfUpAndClamps) {
  // d / c = 80 / 32 = 2.5 -> 3 (half up); S / 2c = 100 / 16 = 6.25 -> 6; l = 1.
  SparQResolved p = SparQ::for_ratio(8).resolve(80, 100, 1);
  EXPECT_EQ(SparQ::for_ratio(32).resolve(80, 100, 1).r, 3u);
  EXPECT_EQ(p.k, 6u);
  EXPECT_EQ(p.window, 1u);
  // S / 2c = 24 / 16 = 1.5 -> 2 (half up).
  EXPECT_EQ(SparQ::for_ratio(8).resolve(64, 24, 1).k, 2u);
  // Tiny S and huge ratio: r and k never drop below 1.
  SparQResolved tiny = SparQ::for_ratio(1000).resolve(64, 1, 1);
  EXPECT_EQ(tiny.r, 1u);
  EXPECT_EQ(tiny.k, 1u);
  EXPECT_EQ(tiny.window, 0u);
  // c = 1: r = d.
  EXPECT_EQ(SparQ::for_ratio(1).resolve(96, 10, 1).r, 96u);
  EXPECT_EQ(SparQ::for_ratio(1).resolve(96, 10, 1).k, 5u);
}

TEST(SparQResolveTest, ExplicitValuesOverrideOneByOne) {
  SparQ m = SparQ::for_ratio(8);
  m.k = 100;
  SparQResolved p = m.resolve(128, 16384, 1);
  EXPECT_EQ(p.r, 16u);       // still from the ratio
  EXPECT_EQ(p.k, 100u);      // given
  EXPECT_EQ(p.window, 25u);  // derived from the final k
  m.window = 0;
  m.r = 128;
  m.reallocation = false;
  m.gqa = GqaSelection::per_head;
  p = m.resolve(128, 16384, 1);
  EXPECT_EQ(p.r, 128u);
  EXPECT_EQ(p.window, 0u);
  EXPECT_FALSE(p.reallocation);
  EXPECT_EQ(p.gqa, GqaSelection::per_head);
  m.reallocation = true;
  EXPECT_TRUE(m.resolve(128, 16384, 8).reallocation);  // explicit on, even for GQA
}

TEST(SparQResolveTest, RejectsOutOfRangeWithNamedMessages) {
  auto expect = [](const SparQ& m, std::size_t d, std::size_t S, ErrorCode code, const std::string& fragment) {
    try {
      (void)m.resolve(d, S, 1);
      FAIL() << "expected an error containing '" << fragment << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  SparQ m;
  m.r = 200;
  expect(m, 128, 10, ErrorCode::invalid_argument, "r=200 exceeds head_dim=128: r must be in [1, head_dim]");
  m.r = 0;
  expect(m, 128, 10, ErrorCode::invalid_argument, "r must be in [1, head_dim]");
  m = SparQ{};
  m.k = 0;
  expect(m, 128, 10, ErrorCode::invalid_argument, "k=0");
  expect(SparQ::for_ratio(0.5), 128, 10, ErrorCode::invalid_argument, "ratio=");
  expect(SparQ::for_ratio(std::numeric_limits<double>::quiet_NaN()), 128, 10, ErrorCode::invalid_argument, "ratio=");
  expect(SparQ{}, 128, 0, ErrorCode::empty_sequence, "S=0");
  // An enum value outside GqaSelection (a cast, or an int from a binding) is refused,
  // not run as per-head selection.
  m = SparQ{};
  m.gqa = static_cast<GqaSelection>(7);
  expect(m, 128, 10, ErrorCode::invalid_argument, "gqa=7 is invalid: must be shared (0) or per_head (1)");
}

}  // namespace
}  // namespace sparq
