// Placement through the real KVCache with a recording binder: every block of a head is
// requested on its node, reused blocks keep it, failures degrade to first touch.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "numa_fakes.hpp"
#include "sparq/kv_cache.hpp"
#include "sparq/topology.hpp"

namespace sparq {
namespace {

CacheConfig small_config(Placement p, std::size_t kv_heads) {
  return {.layers = 2,
          .kv_heads = kv_heads,
          .head_dim = 64,
          .dtype = DType::f32,
          .block_tokens = 16,
          .capacity_tokens = 256,
          .layouts = KeyLayout::both,
          .placement = p};
}

// Placement requests under small_config: one per block, and one per slab for its d-major
// area (block_pool.hpp); each head's blocks fit one slab here.
std::size_t expected_requests(std::size_t blocks, std::size_t heads) {
  return blocks + heads;
}

void append_tokens(KVCache& cache, SeqId s, std::size_t n) {
  const auto& c = cache.config();
  std::vector<float> k(n * c.kv_heads * c.head_dim), v(k.size());
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = float(i % 97) * 0.01f, v[i] = float(i % 89) * 0.02f;
  for (std::size_t layer = 0; layer < c.layers; ++layer) cache.append(s, layer, k, v, n);
}

// OS node each KV head must be on under by-head.
std::vector<unsigned> expected_nodes(const Topology& t, std::size_t kv_heads) {
  std::vector<unsigned> node(kv_heads);
  for (const HeadRange& r : assign_heads(t, kv_heads))
    for (std::size_t h = r.begin; h < r.end; ++h) node[h] = t.nodes[r.node].os_index;
  return node;
}

// Every block of `s` was last requested as bound to its head's node, whole, and the rows
// of its d-major copy lie in an area requested on that node too.
void expect_blocks_on_their_nodes(const KVCache& cache, SeqId s, const test::RecordingBinder& binder,
                                  const std::vector<unsigned>& node_of_head, const std::string& ctx) {
  const auto& c = cache.config();
  for (std::size_t layer = 0; layer < c.layers; ++layer) {
    const LayerView v = cache.view(s, layer);
    for (std::size_t h = 0; h < c.kv_heads; ++h)
      for (std::size_t b = 0; b < v.blocks_per_head; ++b) {
        const auto* call = binder.last_for(v.block(h, b));
        ASSERT_NE(call, nullptr) << ctx << " layer=" << layer << " head=" << h << " block=" << b;
        EXPECT_EQ(call->mode, numa::BindMode::bind) << ctx;
        EXPECT_EQ(call->nodes, std::vector<unsigned>{node_of_head[h]}) << ctx << " head=" << h << " block=" << b;
        EXPECT_EQ(call->bytes % 4096, 0u) << ctx;
        EXPECT_GE(call->bytes, v.block_data_bytes) << "the whole block: " << ctx;
        // Every row of its d-major copy lies in an area bound to the same node.
        for (std::size_t i = 0; i < c.head_dim; ++i) {
          const std::byte* row = v.key_block_d_major(h, b) + i * v.d_major_stride * size_of(c.dtype);
          const auto* area = binder.last_covering(row, c.block_tokens * size_of(c.dtype));
          ASSERT_NE(area, nullptr) << "d-major row " << i << ": " << ctx << " layer=" << layer << " head=" << h;
          EXPECT_EQ(area->mode, numa::BindMode::bind) << ctx;
          ASSERT_EQ(area->nodes, std::vector<unsigned>{node_of_head[h]}) << ctx << " head=" << h << " block=" << b;
        }
      }
  }
}

class ByHeadOnSynthetic : public ::testing::TestWithParam<std::size_t> {};

TEST_P(ByHeadOnSynthetic, EveryBlockOfAHeadIsRequestedOnItsNode) {
  const std::size_t nodes = GetParam(), H = 8;
  const Topology topo = Topology::from_synthetic("node:" + std::to_string(nodes) + " core:2 pu:1");
  test::FakeNuma fake(topo);
  KVCache cache(small_config(Placement::by_head, H));
  const auto node_of_head = expected_nodes(topo, H);
  const std::string ctx = "nodes=" + std::to_string(nodes);

  const SeqId a = cache.add_sequence();
  append_tokens(cache, a, 40);  // 3 blocks per (layer, head)
  EXPECT_EQ(fake.binder->calls().size(), expected_requests(2 * H * 3, H)) << ctx;
  expect_blocks_on_their_nodes(cache, a, *fake.binder, node_of_head, ctx);

  // Stable: another sequence doesn't move anyone's heads; its blocks follow the same map.
  const auto before = fake.binder->calls();
  const SeqId b = cache.add_sequence();
  append_tokens(cache, b, 20);
  const auto after = fake.binder->calls();
  ASSERT_GE(after.size(), before.size());
  for (std::size_t i = 0; i < before.size(); ++i) EXPECT_EQ(after[i].addr, before[i].addr) << ctx;
  expect_blocks_on_their_nodes(cache, a, *fake.binder, node_of_head, ctx + " (a after b)");
  expect_blocks_on_their_nodes(cache, b, *fake.binder, node_of_head, ctx + " (b)");

  // Reuse: blocks freed by a come back (per-head free lists) still on their head's node.
  cache.remove_sequence(a);
  const SeqId c = cache.add_sequence();
  append_tokens(cache, c, 48);
  expect_blocks_on_their_nodes(cache, c, *fake.binder, node_of_head, ctx + " (c reuses a's blocks)");
}

INSTANTIATE_TEST_SUITE_P(Placement, ByHeadOnSynthetic, ::testing::Values(2, 4, 8));

// One node: every policy is first touch there; binding would only cost kernel mappings.
TEST(Placement, OneNodeTopologyMeansFirstTouchForEveryPolicy) {
  for (Placement p : {Placement::local, Placement::interleave, Placement::by_head}) {
    test::FakeNuma fake(Topology::from_synthetic("node:1 core:2 pu:1"));
    KVCache cache(small_config(p, 4));
    append_tokens(cache, cache.add_sequence(), 20);
    const auto calls = fake.binder->calls();
    EXPECT_EQ(calls.size(), expected_requests(2 * 4 * 2, 4)) << to_string(p);
    for (const auto& call : calls) {
      EXPECT_EQ(call.mode, numa::BindMode::first_touch) << to_string(p);
      EXPECT_EQ(call.nodes, std::vector<unsigned>{0}) << to_string(p);
    }
  }
}

TEST(Placement, ByHeadOnUnevenXmlFollowsCores) {
  const Topology topo = Topology::from_xml_file(test::numa_data("uneven_6_2.xml"));
  test::FakeNuma fake(topo);
  KVCache cache(small_config(Placement::by_head, 8));
  const SeqId s = cache.add_sequence();
  append_tokens(cache, s, 17);
  std::map<unsigned, std::set<std::size_t>> heads_on;
  const auto& c = cache.config();
  for (std::size_t layer = 0; layer < c.layers; ++layer) {
    const LayerView v = cache.view(s, layer);
    for (std::size_t h = 0; h < c.kv_heads; ++h)
      for (std::size_t b = 0; b < v.blocks_per_head; ++b)
        heads_on[fake.binder->last_for(v.block(h, b))->nodes[0]].insert(h);
  }
  EXPECT_EQ(heads_on[0], (std::set<std::size_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(heads_on[1], (std::set<std::size_t>{6, 7}));
}

TEST(Placement, ByHeadSkipsTheMemoryOnlyNode) {
  const Topology topo = Topology::from_xml_file(test::numa_data("cpuless_node.xml"));
  test::FakeNuma fake(topo);
  KVCache cache(small_config(Placement::by_head, 6));
  append_tokens(cache, cache.add_sequence(), 5);
  for (const auto& call : fake.binder->calls()) EXPECT_NE(call.nodes[0], 2u) << "no head on the CPU-less node";
}

TEST(Placement, InterleaveRequestsEveryNode) {
  test::FakeNuma fake(Topology::from_synthetic("node:4 core:1 pu:1"));
  KVCache cache(small_config(Placement::interleave, 4));
  append_tokens(cache, cache.add_sequence(), 20);
  const auto calls = fake.binder->calls();
  EXPECT_EQ(calls.size(), expected_requests(2 * 4 * 2, 4));
  for (const auto& call : calls) {
    EXPECT_EQ(call.mode, numa::BindMode::interleave);
    EXPECT_EQ(call.nodes, (std::vector<unsigned>{0, 1, 2, 3}));
  }
}

TEST(Placement, LocalResetsEveryBlockToFirstTouch) {
  test::FakeNuma fake(Topology::from_synthetic("node:2 core:1 pu:1"));
  KVCache cache(small_config(Placement::local, 4));
  append_tokens(cache, cache.add_sequence(), 20);
  const auto calls = fake.binder->calls();
  EXPECT_EQ(calls.size(), expected_requests(2 * 4 * 2, 4));
  for (const auto& call : calls) {
    EXPECT_EQ(call.mode, numa::BindMode::first_touch) << "no node is chosen, only the policy reset";
    EXPECT_EQ(call.nodes, (std::vector<unsigned>{0, 1}));
  }
}

TEST(Placement, RefusedBindingDegradesToFirstTouchAndIsReported) {
  numa::reset_placement_status();
  test::FakeNuma fake(Topology::from_synthetic("node:2 core:1 pu:1"), EPERM);
  KVCache cache(small_config(Placement::by_head, 2));
  const SeqId s = cache.add_sequence();
  append_tokens(cache, s, 3);  // the cache keeps working
  EXPECT_EQ(cache.length(s, 1), 3u);
  std::vector<float> row(64);
  cache.read_value(s, 1, 1, 2, row);
  EXPECT_NE(row[0] + row[1], 0.0f);
  const PlacementStatus st = placement_status();
  EXPECT_EQ(st.bind_requests, expected_requests(4, 2));
  EXPECT_EQ(st.bind_failures, expected_requests(4, 2));
  EXPECT_NE(st.first_failure.find("Operation not permitted"), std::string::npos) << st.first_failure;
  EXPECT_NE(st.first_failure.find("mbind(bind, nodes "), std::string::npos) << st.first_failure;
  numa::reset_placement_status();
}

}  // namespace
}  // namespace sparq
