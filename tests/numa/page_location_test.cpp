// On this machine: the pages of cache blocks are really where each policy puts them,
// checked with the kernel's own answer (get_mempolicy and move_pages from libnuma).
#include <gtest/gtest.h>
#include <numaif.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>

#include "numa/context.hpp"
#include "numa/memory_binder.hpp"
#include "sparq/error.hpp"
#include "sparq/kv_cache.hpp"
#include "sparq/tools/residency.hpp"
#include "sparq/topology.hpp"

#ifndef MPOL_PREFERRED_MANY
#define MPOL_PREFERRED_MANY 5  // Linux 5.15; numaif.h of libnuma < 2.0.15 lacks it
#endif

namespace sparq {
namespace {

class PageLocation : public ::testing::TestWithParam<Placement> {};

TEST_P(PageLocation, BlocksAreOnTheNodesThePolicySays) {
  const Placement policy = GetParam();
  const Topology& topo = Topology::this_system();
  if (topo.source != Topology::Source::this_system) GTEST_SKIP() << "hwloc cannot read this machine";
  numa::reset_placement_status();
  const CacheConfig cfg{.layers = 1,
                        .kv_heads = 4,
                        .head_dim = 128,
                        .dtype = DType::bf16,
                        .block_tokens = 64,
                        .capacity_tokens = 512,
                        .placement = policy};
  KVCache cache(cfg);
  const SeqId s = cache.add_sequence();
  const std::size_t n = 3 * 64;  // 3 full blocks per head: every page of each is written
  std::vector<float> k(n * cfg.kv_heads * cfg.head_dim, 0.5f), v(k.size(), -0.25f);
  cache.append(s, 0, k, v, n);  // the first write to every block
  const PlacementStatus st = placement_status();
  const bool bound = st.bind_failures == 0;
  EXPECT_GT(st.bind_requests, 0u);
  if (!bound)
    std::printf("note: binding refused here (%s); checking first-touch placement\n", st.first_failure.c_str());

  std::vector<unsigned> node_of_head(cfg.kv_heads, topo.nodes[0].os_index);
  for (const HeadRange& r : assign_heads(topo, cfg.kv_heads))
    for (std::size_t h = r.begin; h < r.end; ++h) node_of_head[h] = topo.nodes[r.node].os_index;
  std::set<unsigned> all_nodes;
  for (const auto& node : topo.nodes) all_nodes.insert(node.os_index);

  const long page = sysconf(_SC_PAGESIZE);
  const LayerView view = cache.view(s, 0);
  for (std::size_t h = 0; h < cfg.kv_heads; ++h)
    for (std::size_t b = 0; b < view.blocks_per_head; ++b) {
      // The block (from its first byte to the end of its last region) and the rows of its
      // d-major key copy, which live in the slab's d-major area.
      std::vector<std::pair<std::byte*, std::size_t>> regions{
          {const_cast<std::byte*>(view.block(h, b)), view.block_data_bytes}};
      for (std::size_t i = 0; i < cfg.head_dim; ++i)
        regions.emplace_back(
            const_cast<std::byte*>(view.key_block_d_major(h, b)) + i * view.d_major_stride * size_of(cfg.dtype),
            cfg.block_tokens * size_of(cfg.dtype));
      for (const auto& [block, bytes] : regions) {
        const std::string ctx = std::string("policy=") + std::string(to_string(policy)) + " head=" + std::to_string(h) +
                                " block=" + std::to_string(b) + (block == regions[0].first ? "" : " (a d-major row)");
        int mode = -1;
        ASSERT_EQ(get_mempolicy(&mode, nullptr, 0, block, MPOL_F_ADDR), 0) << ctx << ": " << std::strerror(errno);
        // First touch (local, and every policy on one node): the heap's default policy, or
        // MPOL_LOCAL where a recycled block carried a binding and was reset.
        if (!bound || policy == Placement::local || topo.nodes.size() == 1)
          EXPECT_TRUE(mode == MPOL_DEFAULT || mode == MPOL_LOCAL) << ctx << " mode=" << mode;
        else if (policy == Placement::interleave)
          EXPECT_EQ(mode, MPOL_INTERLEAVE) << ctx;
        else  // hwloc's non-strict BIND: MPOL_PREFERRED_MANY on Linux >= 5.15, else BIND or PREFERRED
          EXPECT_TRUE(mode == MPOL_PREFERRED_MANY || mode == MPOL_BIND || mode == MPOL_PREFERRED)
              << ctx << " mode=" << mode;

        // Every page of the region.
        std::vector<void*> pages;
        const auto first = reinterpret_cast<std::uintptr_t>(block) / std::size_t(page) * std::size_t(page);
        for (std::uintptr_t at = first; at < reinterpret_cast<std::uintptr_t>(block) + bytes; at += std::size_t(page))
          pages.push_back(reinterpret_cast<void*>(at));
        std::vector<int> status(pages.size(), -1);
        ASSERT_EQ(move_pages(0, pages.size(), pages.data(), nullptr, status.data(), 0), 0)
            << ctx << ": " << std::strerror(errno);
        for (std::size_t p = 0; p < pages.size(); ++p) {
          ASSERT_GE(status[p], 0) << ctx << " page=" << p << ": not resident (" << std::strerror(-status[p]) << ")";
          if (policy == Placement::by_head && bound)
            EXPECT_EQ(unsigned(status[p]), node_of_head[h]) << ctx << " page=" << p;
          else
            EXPECT_TRUE(all_nodes.count(unsigned(status[p]))) << ctx << " page=" << p << " on node " << status[p];
        }
        int node = -1;
        ASSERT_EQ(get_mempolicy(&node, nullptr, 0, block, MPOL_F_NODE | MPOL_F_ADDR), 0) << ctx;
        EXPECT_EQ(node, status[0]) << ctx << ": get_mempolicy and move_pages disagree";
        if (topo.nodes.size() == 1) {
          EXPECT_EQ(unsigned(node), topo.nodes[0].os_index) << ctx << ": one node";
        }
      }
    }
  numa::reset_placement_status();
}

// The hwloc binder itself, on this machine: each mode sets the policy it promises and the
// pages land on the node asked for (the first node here).
TEST(PageLocation, HwlocBinderSetsThePolicyAndThePagesFollow) {
  const Topology& topo = Topology::this_system();
  if (topo.source != Topology::Source::this_system) GTEST_SKIP() << "hwloc cannot read this machine";
  const auto binder = numa::make_hwloc_binder();
  const long page = sysconf(_SC_PAGESIZE);
  const std::size_t n_pages = 16, bytes = n_pages * std::size_t(page);
  std::vector<unsigned> all;
  for (const auto& n : topo.nodes) all.push_back(n.os_index);
  const unsigned first = all[0];
  struct Case {
    numa::BindMode mode;
    std::vector<unsigned> nodes;
  };
  for (const Case& c : {Case{numa::BindMode::bind, {first}}, Case{numa::BindMode::interleave, all},
                        Case{numa::BindMode::first_touch, all}}) {
    const std::string ctx = numa::to_string(c.mode);
    void* buf = std::aligned_alloc(std::size_t(page), bytes);
    ASSERT_NE(buf, nullptr);
    std::memset(buf, 1, bytes);  // already faulted in: bind and interleave must migrate
    const int err = binder->bind(buf, bytes, c.nodes, numa::BindMode::bind);
    if (err != 0) {
      std::free(buf);
      GTEST_SKIP() << "binding refused here: " << std::strerror(err);
    }
    ASSERT_EQ(binder->bind(buf, bytes, c.nodes, c.mode), 0) << ctx;
    int mode = -1;
    ASSERT_EQ(get_mempolicy(&mode, nullptr, 0, buf, MPOL_F_ADDR), 0) << ctx;
    if (c.mode == numa::BindMode::bind)
      EXPECT_TRUE(mode == MPOL_PREFERRED_MANY || mode == MPOL_BIND || mode == MPOL_PREFERRED) << ctx << " " << mode;
    else if (c.mode == numa::BindMode::interleave)
      EXPECT_EQ(mode, MPOL_INTERLEAVE) << ctx;
    else
      EXPECT_EQ(mode, MPOL_LOCAL) << ctx << ": reset from the binding set just before";
    std::vector<void*> pages;
    for (std::size_t p = 0; p < n_pages; ++p) pages.push_back(static_cast<char*>(buf) + p * std::size_t(page));
    std::vector<int> status(n_pages, -1);
    ASSERT_EQ(move_pages(0, n_pages, pages.data(), nullptr, status.data(), 0), 0) << ctx;
    for (std::size_t p = 0; p < n_pages; ++p) {
      if (c.mode == numa::BindMode::bind) {
        EXPECT_EQ(status[p], int(first)) << ctx << " page " << p;
      }
      EXPECT_TRUE(std::count(all.begin(), all.end(), unsigned(status[p]))) << ctx << " page " << p;
    }
    std::free(buf);
  }
}

// Binding splits the kernel's memory mappings; a cache of many blocks must not use up
// vm.max_map_count (65530) when nothing needs binding (local, or any policy on one node).
TEST(PageLocation, FirstTouchBlocksCostNoMappings) {
  const Topology& topo = Topology::this_system();
  auto mappings = [] {
    std::ifstream maps("/proc/self/maps");
    std::size_t n = 0;
    for (std::string line; std::getline(maps, line);) ++n;
    return n;
  };
  std::vector<Placement> policies = {Placement::local};
  if (topo.nodes.size() == 1) policies = {Placement::local, Placement::interleave, Placement::by_head};
  for (Placement p : policies) {
    const std::size_t before = mappings();
    const CacheConfig cfg{.layers = 4,
                          .kv_heads = 8,
                          .head_dim = 64,
                          .dtype = DType::bf16,
                          .block_tokens = 16,
                          .capacity_tokens = 2048,
                          .placement = p};
    KVCache cache(cfg);
    const SeqId s = cache.add_sequence();
    std::vector<float> kv(2048 * 8 * 64, 0.1f);
    for (std::size_t layer = 0; layer < 4; ++layer) cache.append(s, layer, kv, kv, 2048);
    const std::size_t blocks = cache.memory_usage().blocks_allocated;
    ASSERT_EQ(blocks, 4u * 8 * 128);
    EXPECT_LT(mappings(), before + blocks / 16) << to_string(p) << ": " << blocks << " blocks";
  }
}

// Freed blocks go back to the heap with their binding attached; a local cache that gets
// those pages again must not inherit it. (One real node can only show this with binding
// on: a two-node plan whose single KV head lives on node 0, bound by the real binder.)
TEST(PageLocation, LocalCacheDoesNotInheritAFreedCachesBinding) {
  if (Topology::this_system().source != Topology::Source::this_system) GTEST_SKIP() << "no hwloc";
  auto ctx = std::make_shared<numa::NumaContext>(Topology::from_synthetic("node:2 core:1 pu:1"),
                                                 numa::make_hwloc_binder(), numa::make_tbb_arena_factory());
  numa::ScopedContext scope(ctx);
  numa::reset_placement_status();
  const CacheConfig cfg{.layers = 1,
                        .kv_heads = 1,
                        .head_dim = 128,
                        .dtype = DType::f32,
                        .block_tokens = 32,
                        .capacity_tokens = 256,
                        .placement = Placement::by_head};
  std::vector<float> kv(256 * 128, 1.0f);
  std::set<const std::byte*> bound_blocks;
  {
    KVCache bound(cfg);
    const SeqId s = bound.add_sequence();
    bound.append(s, 0, kv, kv, 256);
    for (std::size_t b = 0; b < 8; ++b) {
      const std::byte* block = bound.view(s, 0).block(0, b);
      bound_blocks.insert(block);
      int mode = -1;
      ASSERT_EQ(get_mempolicy(&mode, nullptr, 0, const_cast<std::byte*>(block), MPOL_F_ADDR), 0);
      if (mode == MPOL_DEFAULT) GTEST_SKIP() << "binding refused here: " << placement_status().first_failure;
    }
  }
  CacheConfig local_cfg = cfg;
  local_cfg.placement = Placement::local;
  KVCache local(local_cfg);
  const SeqId s = local.add_sequence();
  local.append(s, 0, kv, kv, 256);
  std::size_t reused = 0;
  for (std::size_t b = 0; b < 8; ++b) {
    auto* block = const_cast<std::byte*>(local.view(s, 0).block(0, b));
    reused += bound_blocks.count(block);
    int mode = -1;
    ASSERT_EQ(get_mempolicy(&mode, nullptr, 0, block, MPOL_F_ADDR), 0);
    EXPECT_TRUE(mode == MPOL_LOCAL || mode == MPOL_DEFAULT) << "block " << b << " mode=" << mode;
  }
  EXPECT_EQ(placement_status().bind_failures, 0u) << placement_status().first_failure;
  std::printf("note: %zu of 8 blocks reused the freed cache's memory\n", reused);
  numa::reset_placement_status();
}

// The measured bytes per node agree with the model for each policy (on one node: all
// of it on node 0), and count exactly the bytes of every block and of its d-major copy.
TEST(PageLocation, ResidentBytesByNodeMatchTheModel) {
  const Topology& topo = Topology::this_system();
  if (topo.source != Topology::Source::this_system) GTEST_SKIP() << "hwloc cannot read this machine";
  for (Placement policy : {Placement::local, Placement::interleave, Placement::by_head}) {
    const CacheConfig cfg{.layers = 1,
                          .kv_heads = 4,
                          .head_dim = 128,
                          .dtype = DType::bf16,
                          .block_tokens = 64,
                          .capacity_tokens = 512,
                          .placement = policy};
    KVCache cache(cfg);
    const SeqId s = cache.add_sequence();
    std::vector<float> kv(128 * 4 * 128, 0.5f);
    cache.append(s, 0, kv, kv, 128);  // 2 full blocks per head
    const std::vector<std::uint64_t> got = resident_bytes_by_node(cache, s, 0);
    ASSERT_EQ(got.size(), topo.nodes.size());
    std::uint64_t total = 0;
    for (auto b : got) total += b;
    const LayerView v = cache.view(s, 0);
    const std::uint64_t block_bytes = v.block_data_bytes + 128 * 64 * 2;  // and the d-major copy's rows
    EXPECT_EQ(total, 4 * 2 * block_bytes) << to_string(policy);
    const auto model = node_byte_shares(topo, policy, 4, 0, 4);
    if (policy == Placement::by_head || topo.nodes.size() == 1) {
      for (std::size_t n = 0; n < got.size(); ++n)
        EXPECT_NEAR(double(got[n]) / double(total), model[n], 1e-12) << to_string(policy) << " node " << n;
    }
    const auto two = resident_bytes_by_node(cache, s, 0, 1, 3);
    std::uint64_t t2 = 0;
    for (auto b : two) t2 += b;
    EXPECT_EQ(t2, 2 * 2 * block_bytes) << "heads [1, 3) only";
  }
  EXPECT_THROW((void)resident_bytes_by_node(KVCache({.kv_heads = 1, .head_dim = 8}), 42, 0), Error);
}

INSTANTIATE_TEST_SUITE_P(ThisMachine, PageLocation,
                         ::testing::Values(Placement::local, Placement::interleave, Placement::by_head),
                         [](const auto& info) {
                           std::string s(to_string(info.param));
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

}  // namespace
}  // namespace sparq
