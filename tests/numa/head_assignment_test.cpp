// The by-head assignment: balanced, proportional to cores, contiguous, stable.
#include <gtest/gtest.h>

#include <cmath>

#include "numa_fakes.hpp"
#include "sparq/error.hpp"
#include "sparq/topology.hpp"

namespace sparq {
namespace {

// Ranges are one per node, in node order, contiguous and covering [0, H).
void expect_partition(const std::vector<HeadRange>& r, std::size_t nodes, std::size_t H, const std::string& ctx) {
  ASSERT_EQ(r.size(), nodes) << ctx;
  std::size_t at = 0;
  for (std::size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(r[i].node, i) << ctx;
    EXPECT_EQ(r[i].begin, at) << ctx << " node=" << i;
    EXPECT_LE(r[i].begin, r[i].end) << ctx << " node=" << i;
    at = r[i].end;
  }
  EXPECT_EQ(at, H) << ctx;
}

class EqualNodes : public ::testing::TestWithParam<std::size_t> {};

TEST_P(EqualNodes, SizesDifferByAtMostOne) {
  const std::size_t n = GetParam();
  const Topology t = Topology::from_synthetic("node:" + std::to_string(n) + " core:4 pu:1");
  for (std::size_t H : {1, 2, 3, 5, 7, 8, 12, 16, 31, 32, 64, 96}) {
    const std::string ctx = "nodes=" + std::to_string(n) + " H=" + std::to_string(H);
    const auto r = assign_heads(t, H);
    expect_partition(r, n, H, ctx);
    std::size_t lo = H, hi = 0;
    for (const auto& x : r) lo = std::min(lo, x.size()), hi = std::max(hi, x.size());
    EXPECT_LE(hi - lo, 1u) << ctx;
    // Extra heads go to the lower nodes (ties broken by node index).
    for (std::size_t i = 1; i < n; ++i) EXPECT_GE(r[i - 1].size(), r[i].size()) << ctx << " node=" << i;
    EXPECT_EQ(assign_heads(t, H).size(), r.size());
    for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(assign_heads(t, H)[i].begin, r[i].begin) << "stable: " << ctx;
  }
}

INSTANTIATE_TEST_SUITE_P(HeadAssignment, EqualNodes, ::testing::Values(1, 2, 4, 8));

TEST(HeadAssignment, ProportionalToCoresOnUnevenNodes) {
  const Topology t = Topology::from_xml_file(test::numa_data("uneven_6_2.xml"));  // 6 and 2 cores
  for (std::size_t H = 1; H <= 64; ++H) {
    const auto r = assign_heads(t, H);
    expect_partition(r, 2, H, "H=" + std::to_string(H));
    const double ideal0 = double(H) * 6.0 / 8.0;
    EXPECT_LT(std::abs(double(r[0].size()) - ideal0), 1.0) << "H=" << H << " got " << r[0].size();
  }
  EXPECT_EQ(assign_heads(t, 8)[0].size(), 6u);
  EXPECT_EQ(assign_heads(t, 8)[1].size(), 2u);
  EXPECT_EQ(assign_heads(t, 7)[0].size(), 5u);  // 5.25 / 1.75: the larger remainder wins
  EXPECT_EQ(assign_heads(t, 2)[1].size(), 0u);  // 1.5 / 0.5: equal remainders, the tie goes to node 0
}

TEST(HeadAssignment, NodeWithoutCoresGetsNoHeads) {
  const Topology t = Topology::from_xml_file(test::numa_data("cpuless_node.xml"));
  const std::size_t cxl = t.node_by_os_index(2);
  for (std::size_t H = 1; H <= 40; ++H) {
    const auto r = assign_heads(t, H);
    expect_partition(r, 3, H, "H=" + std::to_string(H));
    EXPECT_EQ(r[cxl].size(), 0u) << "H=" << H;
  }
}

TEST(HeadAssignment, OneNodeTakesEverything) {
  const Topology& t = Topology::this_system();
  if (t.nodes.size() != 1) GTEST_SKIP() << "this machine has " << t.nodes.size() << " nodes";
  const auto r = assign_heads(t, 8);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].begin, 0u);
  EXPECT_EQ(r[0].end, 8u);
}

TEST(HeadAssignment, ZeroHeadsIsAnError) {
  try {
    (void)assign_heads(Topology::from_synthetic("node:2 core:1 pu:1"), 0);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("kv_heads=0"), std::string::npos) << e.what();
  }
}

TEST(NodeByteShares, FollowThePolicy) {
  const Topology t = Topology::from_synthetic("node:4 core:2 pu:1");
  const auto local = node_byte_shares(t, Placement::local, 8, 0, 8, 2);
  EXPECT_EQ(local, (std::vector<double>{0, 0, 1, 0}));
  const auto inter = node_byte_shares(t, Placement::interleave, 8, 0, 8);
  for (double s : inter) EXPECT_DOUBLE_EQ(s, 0.25);
  const auto all = node_byte_shares(t, Placement::by_head, 8, 0, 8);
  for (double s : all) EXPECT_DOUBLE_EQ(s, 0.25);
  // Heads [1, 4): head 1 on node 0, heads 2-3 on node 1.
  const auto part = node_byte_shares(t, Placement::by_head, 8, 1, 4);
  EXPECT_DOUBLE_EQ(part[0], 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(part[1], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(part[2] + part[3], 0.0);
  EXPECT_THROW((void)node_byte_shares(t, Placement::by_head, 8, 4, 4), Error);
  EXPECT_THROW((void)node_byte_shares(t, Placement::local, 8, 0, 8, 4), Error);
}

}  // namespace
}  // namespace sparq
