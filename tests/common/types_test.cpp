#include "sparq/types.hpp"

#include <gtest/gtest.h>

#include "sparq/error.hpp"
#include "sparq/method.hpp"

namespace sparq {
namespace {

TEST(TypesTest, NamesRoundTrip) {
  for (DType t : {DType::f32, DType::f16, DType::bf16}) EXPECT_EQ(parse_dtype(to_string(t)), t);
  for (KeyLayout l : {KeyLayout::both, KeyLayout::s_major, KeyLayout::d_major, KeyLayout::fused})
    EXPECT_EQ(parse_key_layout(to_string(l)), l);
  for (DMajorType t : {DMajorType::same, DMajorType::int8}) EXPECT_EQ(parse_d_major_type(to_string(t)), t);
  EXPECT_EQ(parse_d_major_type("int4"), std::nullopt);
  for (Placement p : {Placement::local, Placement::interleave, Placement::by_head})
    EXPECT_EQ(parse_placement(to_string(p)), p);
  for (GqaSelection g : {GqaSelection::shared, GqaSelection::per_head}) EXPECT_EQ(parse_gqa_selection(to_string(g)), g);
  EXPECT_FALSE(parse_dtype("fp32"));
  EXPECT_FALSE(parse_key_layout("smajor"));
  EXPECT_FALSE(parse_placement(""));
  EXPECT_EQ(size_of(DType::bf16), 2u);
  EXPECT_EQ(size_of(DType::f32), 4u);
  EXPECT_EQ(to_string(ErrorCode::capacity_exhausted), "capacity_exhausted");
}

TEST(TypesTest, ModelShapeGroup) {
  ModelShape m{.layers = 32, .q_heads = 32, .kv_heads = 8, .head_dim = 128};
  EXPECT_NO_THROW(m.validate());
  EXPECT_EQ(m.group(), 4u);
  m.kv_heads = 0;
  EXPECT_THROW(m.validate(), Error);
}

}  // namespace
}  // namespace sparq
