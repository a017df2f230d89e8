// By-head decode: split per node, each node's heads in its arena, results bit-identical
// to the same decode on a locally placed cache (kernels are per KV head, fixed chunking).
#include "api/node_decode.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "numa_fakes.hpp"
#include "sparq/decode.hpp"

namespace sparq {
namespace {

struct Outputs {
  std::vector<float> out, lse, alpha;
  std::vector<std::vector<std::uint32_t>> selected;
  Profile profile;
};

struct Shape {
  std::size_t kv_heads = 8, group = 2, d = 64, S = 300;
};

void fill(KVCache& cache, SeqId s, const Shape& su, std::uint32_t seed) {
  const std::size_t n = su.S * su.kv_heads * su.d;
  std::vector<float> k(n), v(n);
  std::uint32_t x = seed;
  auto next = [&] {
    x = x * 1664525u + 1013904223u;
    return float(int(x >> 9) % 2001 - 1000) * 1e-3f;
  };
  for (std::size_t i = 0; i < n; ++i) k[i] = next(), v[i] = next();
  cache.append(s, 0, k, v, su.S);
}

Outputs run(const KVCache& cache, SeqId s, const Method& m, std::size_t kv_begin, std::size_t kv_end,
            const std::vector<float>& q, std::size_t n_q, std::size_t d) {
  Outputs o;
  o.out.assign(n_q * d, 0.0f);
  o.lse.assign(n_q, 0.0f);
  o.alpha.assign(n_q, 0.0f);
  const DecodeItem item{.seq = s, .q = q, .out = o.out, .lse = o.lse, .alpha = o.alpha, .selected = &o.selected};
  decode(cache, 0, m, std::span(&item, 1), {.kv_head_begin = kv_begin, .kv_head_end = kv_end, .profile = &o.profile});
  return o;
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class ByHeadDecode : public ::testing::TestWithParam<std::size_t> {};

TEST_P(ByHeadDecode, SameResultsAsLocalPlacement) {
  const std::size_t nodes = GetParam();
  const Shape su;
  test::FakeNuma fake(Topology::from_synthetic("node:" + std::to_string(nodes) + " core:1 pu:1"), 0, 2);
  CacheConfig cfg{.layers = 1,
                  .kv_heads = su.kv_heads,
                  .head_dim = su.d,
                  .dtype = DType::f32,
                  .block_tokens = 32,
                  .capacity_tokens = 512,
                  .placement = Placement::by_head};
  KVCache by_head(cfg);
  cfg.placement = Placement::local;
  KVCache local(cfg);
  const SeqId a = by_head.add_sequence(), b = local.add_sequence();
  fill(by_head, a, su, 7);
  fill(local, b, su, 7);

  const std::pair<std::size_t, std::size_t> head_ranges[] = {{0, 8}, {1, 6}, {3, 4}};
  for (const Method& m : {Method{Dense{}}, Method{SparQ::for_ratio(4)}}) {
    for (auto [kb, ke] : head_ranges) {
      const std::size_t n_q = (ke - kb) * su.group;
      std::vector<float> q(n_q * su.d);
      for (std::size_t i = 0; i < q.size(); ++i) q[i] = float(int(i * 37 % 101) - 50) * 0.02f;
      const std::string ctx = "nodes=" + std::to_string(nodes) +
                              " method=" + (std::holds_alternative<Dense>(m) ? "dense" : "sparq") + " heads=[" +
                              std::to_string(kb) + "," + std::to_string(ke) + ")";
      const Outputs x = run(by_head, a, m, kb, ke, q, n_q, su.d);
      const Outputs y = run(local, b, m, kb, ke, q, n_q, su.d);
      EXPECT_TRUE(bit_equal(x.out, y.out)) << ctx;
      EXPECT_TRUE(bit_equal(x.lse, y.lse)) << ctx;
      EXPECT_TRUE(bit_equal(x.alpha, y.alpha)) << ctx;
      EXPECT_EQ(x.selected, y.selected) << ctx;
      EXPECT_EQ(x.profile.total().bytes_read, y.profile.total().bytes_read) << ctx;
      EXPECT_EQ(x.profile.total().flops, y.profile.total().flops) << ctx;
      EXPECT_EQ(x.profile.total().calls, y.profile.total().calls) << ctx << ": one decode is one call";
    }
  }
  EXPECT_EQ(fake.factory->specs().size(), nodes) << "one arena per node, built once";
}

INSTANTIATE_TEST_SUITE_P(NodeDecode, ByHeadDecode, ::testing::Values(1, 2, 4, 8));

TEST(NodeDecode, CallerArenaIsRespected) {
  const Shape su;
  test::FakeNuma fake(Topology::from_synthetic("node:2 core:1 pu:1"));
  const CacheConfig cfg{.layers = 1,
                        .kv_heads = su.kv_heads,
                        .head_dim = su.d,
                        .dtype = DType::f32,
                        .block_tokens = 32,
                        .capacity_tokens = 512,
                        .placement = Placement::by_head};
  KVCache cache(cfg);
  tbb::task_arena mine(1);
  EXPECT_FALSE(api::splits_by_node(cache, &mine));
  EXPECT_TRUE(api::splits_by_node(cache, nullptr));
  const SeqId s = cache.add_sequence();
  fill(cache, s, su, 3);
  std::vector<float> q(su.kv_heads * su.group * su.d, 0.1f), out(q.size());
  const DecodeItem item{.seq = s, .q = q, .out = out};
  decode(cache, 0, Dense{}, std::span(&item, 1), {.arena = &mine});
  EXPECT_TRUE(fake.factory->specs().empty()) << "no node arenas when the caller gives one";
}

// This machine, its real arenas (pinned through tbbbind): by-head equals local.
TEST(NodeDecode, ThisMachineByHeadEqualsLocal) {
  const Shape su;
  CacheConfig cfg{.layers = 1,
                  .kv_heads = su.kv_heads,
                  .head_dim = su.d,
                  .dtype = DType::bf16,
                  .block_tokens = 64,
                  .capacity_tokens = 512,
                  .placement = Placement::by_head};
  KVCache by_head(cfg);
  cfg.placement = Placement::local;
  KVCache local(cfg);
  const SeqId a = by_head.add_sequence(), b = local.add_sequence();
  fill(by_head, a, su, 11);
  fill(local, b, su, 11);
  const std::size_t n_q = su.kv_heads * su.group;
  std::vector<float> q(n_q * su.d, 0.05f);
  for (const Method& m : {Method{Dense{}}, Method{SparQ::for_ratio(8)}}) {
    const Outputs x = run(by_head, a, m, 0, su.kv_heads, q, n_q, su.d);
    const Outputs y = run(local, b, m, 0, su.kv_heads, q, n_q, su.d);
    EXPECT_TRUE(bit_equal(x.out, y.out));
    EXPECT_EQ(x.selected, y.selected);
  }
}

}  // namespace
}  // namespace sparq
