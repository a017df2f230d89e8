// Per-node arenas: built with the right constraints, each node's heads run in its arena.
#include "numa/node_arenas.hpp"

#include <gtest/gtest.h>
#include <oneapi/tbb/info.h>

#include <atomic>
#include <mutex>
#include <stdexcept>

#include "numa_fakes.hpp"
#include "sparq/kv_cache.hpp"

namespace sparq {
namespace {

class ArenasOnSynthetic : public ::testing::TestWithParam<std::size_t> {};

TEST_P(ArenasOnSynthetic, OneArenaPerNodeConstrainedToIt) {
  const std::size_t n = GetParam();
  const Topology t = Topology::from_synthetic("node:" + std::to_string(n) + " core:2 pu:2");
  test::RecordingArenaFactory factory;
  const numa::NodeArenas arenas(t, factory);
  const auto specs = factory.specs();
  ASSERT_EQ(specs.size(), n);
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(specs[i].node, i);
    EXPECT_EQ(specs[i].os_index, t.nodes[i].os_index);
    EXPECT_EQ(specs[i].numa_id, int(t.nodes[i].logical_index)) << "oneTBB numa ids are hwloc logical indices";
    EXPECT_EQ(specs[i].max_concurrency, int{tbb::task_arena::automatic}) << "oneTBB sizes it to the node";
    EXPECT_NE(arenas.arena(i), nullptr);
  }
}

INSTANTIATE_TEST_SUITE_P(NodeArenas, ArenasOnSynthetic, ::testing::Values(1, 2, 4, 8));

TEST(NodeArenas, NoArenaForAMemoryOnlyNode) {
  const Topology t = Topology::from_xml_file(test::numa_data("cpuless_node.xml"));
  test::RecordingArenaFactory factory;
  const numa::NodeArenas arenas(t, factory);
  const auto specs = factory.specs();
  ASSERT_EQ(specs.size(), 2u);
  for (const auto& s : specs) {
    EXPECT_NE(s.os_index, 2u);
    EXPECT_EQ(s.numa_id, int(t.nodes[s.node].logical_index));
  }
  EXPECT_EQ(arenas.arena(t.node_by_os_index(2)), nullptr);
}

TEST(NodeArenas, EachRangeRunsOnceInsideItsNodesArena) {
  const Topology t = Topology::from_synthetic("node:4 core:1 pu:1");
  test::RecordingArenaFactory factory;  // arena of node i has concurrency i + 1
  const numa::NodeArenas arenas(t, factory);
  const auto ranges = assign_heads(t, 10);
  std::mutex m;
  std::vector<int> seen_concurrency(4, -1);
  std::vector<int> runs(4, 0);
  arenas.run(ranges, [&](const HeadRange& r) {
    std::lock_guard lock(m);
    ++runs[r.node];
    seen_concurrency[r.node] = tbb::this_task_arena::max_concurrency();
  });
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(runs[i], 1) << "node " << i;
    EXPECT_EQ(seen_concurrency[i], int(i) + 1) << "node " << i << " ran outside its arena";
  }
}

TEST(NodeArenas, AnExceptionSurfacesAfterEveryNodeFinished) {
  const Topology t = Topology::from_synthetic("node:3 core:1 pu:1");
  test::RecordingArenaFactory factory;
  const numa::NodeArenas arenas(t, factory);
  std::atomic<int> finished{0};
  EXPECT_THROW(arenas.run(assign_heads(t, 3),
                          [&](const HeadRange& r) {
                            if (r.node == 1) throw std::runtime_error("node 1 failed");
                            ++finished;
                          }),
               std::runtime_error);
  EXPECT_EQ(finished.load(), 2);
}

TEST(NodeArenas, ForEachNodeHeadsSplitsOnlyByHeadCaches) {
  test::FakeNuma fake(Topology::from_synthetic("node:4 core:1 pu:1"));
  CacheConfig cfg{.layers = 1,
                  .kv_heads = 8,
                  .head_dim = 16,
                  .dtype = DType::f32,
                  .block_tokens = 16,
                  .capacity_tokens = 64,
                  .placement = Placement::by_head};
  const KVCache by_head(cfg);
  std::mutex m;
  std::vector<HeadRange> got;
  auto record = [&](const HeadRange& r) {
    std::lock_guard lock(m);
    got.push_back(r);
  };
  numa::for_each_node_heads(by_head, 1, 6, record);  // heads 0-1 | 2-3 | 4-5 | 6-7
  std::sort(got.begin(), got.end(), [](const HeadRange& a, const HeadRange& b) { return a.node < b.node; });
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ((std::vector<std::size_t>{got[0].node, got[0].begin, got[0].end}), (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ((std::vector<std::size_t>{got[1].node, got[1].begin, got[1].end}), (std::vector<std::size_t>{1, 2, 4}));
  EXPECT_EQ((std::vector<std::size_t>{got[2].node, got[2].begin, got[2].end}), (std::vector<std::size_t>{2, 4, 6}));
  EXPECT_EQ(fake.factory->specs().size(), 4u) << "arenas built once, for every node";

  got.clear();
  cfg.placement = Placement::interleave;
  const KVCache interleaved(cfg);
  numa::for_each_node_heads(interleaved, 0, 99, record);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].node, numa::kNoNode);
  EXPECT_EQ(got[0].begin, 0u);
  EXPECT_EQ(got[0].end, 8u);
}

// The real factory on this machine: with tbbbind, the node's arena is pinned.
TEST(NodeArenas, RealFactoryPinsToKnownNodes) {
  const std::vector<tbb::numa_node_id> known = tbb::info::numa_nodes();
  if (known.size() == 1 && known[0] < 0)
    GTEST_SKIP() << "oneTBB reports no NUMA nodes: libtbbbind is not loaded, arenas cannot be pinned";
  numa::reset_placement_status();
  const Topology& t = Topology::this_system();
  const auto factory = numa::make_tbb_arena_factory();
  const numa::NodeArenas arenas(t, *factory);
  for (std::size_t i = 0; i < t.nodes.size(); ++i) {
    if (t.nodes[i].cores == 0) continue;
    tbb::task_arena* a = arenas.arena(i);
    ASSERT_NE(a, nullptr);
    int conc = 0;
    a->execute([&] { conc = tbb::this_task_arena::max_concurrency(); });
    EXPECT_EQ(conc, tbb::info::default_concurrency(int(t.nodes[i].logical_index))) << "node " << i;
  }
  const PlacementStatus st = placement_status();
  EXPECT_GE(st.arenas_built, 1u);
  EXPECT_EQ(st.arenas_unpinned, 0u) << st.arena_note;
  numa::reset_placement_status();
}

}  // namespace
}  // namespace sparq
