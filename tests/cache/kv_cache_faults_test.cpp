// Fault injection: the system refuses memory for a new block (alloc_fault.hpp) at every
// point of an append, an all-layer append and the copy-on-write append after a fork.
// Each failure is capacity_exhausted saying the system refused memory, and leaves every
// sequence, the pool's accounting and the stored data exactly as they were; the same
// call succeeds once memory is available again.
#include <gtest/gtest.h>

#include <string>

#include "cache/alloc_fault.hpp"
#include "cache_test_util.hpp"
#include "sparq/error.hpp"

namespace sparq {
namespace {

using test::random_floats;

constexpr std::size_t L = 3, H = 3, d = 8, B = 2;

CacheConfig config() {
  return {.layers = L, .kv_heads = H, .head_dim = d, .dtype = DType::bf16, .block_tokens = B, .capacity_tokens = 64};
}

// Everything a failed call must leave alone: lengths, stored rows, value means, blocks.
struct Snapshot {
  std::vector<std::vector<std::size_t>> lengths;
  std::vector<std::vector<test::LayerDump>> dumps;
  std::vector<std::vector<std::vector<float>>> means;
  std::size_t in_use = 0, free = 0;

  static Snapshot of(const KVCache& c) {
    Snapshot s;
    s.in_use = c.memory_usage().blocks_in_use;
    s.free = c.free_blocks();
    for (SeqId id : c.sequences()) {
      auto& len = s.lengths.emplace_back();
      auto& dump = s.dumps.emplace_back();
      auto& mean = s.means.emplace_back();
      for (std::size_t l = 0; l < L; ++l) {
        len.push_back(c.length(id, l));
        dump.push_back(test::dump_layer(c, id, l));
        const LayerView v = c.view(id, l);
        mean.emplace_back(v.value_mean, v.value_mean + H * d);
      }
    }
    return s;
  }
  void expect_equal(const Snapshot& o, const std::string& where) const {
    EXPECT_EQ(in_use, o.in_use) << where;
    EXPECT_EQ(free, o.free) << where;
    ASSERT_EQ(lengths, o.lengths) << where;
    for (std::size_t i = 0; i < dumps.size(); ++i)
      for (std::size_t l = 0; l < L; ++l) {
        EXPECT_EQ(dumps[i][l].keys, o.dumps[i][l].keys) << where << " seq " << i << " layer " << l;
        EXPECT_EQ(dumps[i][l].values, o.dumps[i][l].values) << where << " seq " << i << " layer " << l;
        EXPECT_EQ(means[i][l], o.means[i][l]) << where << " seq " << i << " layer " << l;
      }
  }
};

// Runs `op` with the k-th new block refused, for k = 0, 1, ... until it needs no more
// than k new blocks and succeeds; checks each failure left the cache as it was. Returns
// how many failures it saw. `make` builds a fresh cache in the state before `op`, so
// each k starts from blocks that were never allocated.
template <class Make, class Op>
int refuse_each_block(Make make, Op op, const std::string& name) {
  for (std::size_t k = 0;; ++k) {
    auto [cache, seqs] = make();
    const Snapshot before = Snapshot::of(*cache);
    bool failed = false;
    {
      alloc_fault::Scope refuse(k);
      try {
        op(*cache, seqs);
      } catch (const Error& e) {
        failed = true;
        EXPECT_EQ(e.code(), ErrorCode::capacity_exhausted) << e.what();
        EXPECT_NE(std::string(e.what()).find("the system refused memory"), std::string::npos) << e.what();
        EXPECT_EQ(alloc_fault::failures(), 1u) << name << " k=" << k;
      }
    }
    if (!failed) {
      EXPECT_EQ(alloc_fault::failures(), 0u) << name << " k=" << k;
      return int(k);
    }
    Snapshot::of(*cache).expect_equal(before, name + " k=" + std::to_string(k));
    // With memory back, the same call succeeds and gives what an undisturbed run gives.
    op(*cache, seqs);
    auto [clean, clean_seqs] = make();
    op(*clean, clean_seqs);
    Snapshot::of(*cache).expect_equal(Snapshot::of(*clean), name + " retried after k=" + std::to_string(k));
    if (k > 100) {
      ADD_FAILURE() << name << " still failing after " << k << " blocks";
      return int(k);
    }
  }
}

struct Fresh {
  std::unique_ptr<KVCache> cache;
  std::vector<SeqId> seqs;
};

const std::vector<float> kKv = random_floats(L * 9 * H * d, 99);

std::span<const float> tokens(std::size_t n, std::size_t layers = 1) {
  return std::span(kKv).first(layers * n * H * d);
}

TEST(CacheFaultTest, RefusedBlockInAnAppendChangesNothing) {
  auto make = [] {
    Fresh f{std::make_unique<KVCache>(config()), {}};
    f.seqs.push_back(f.cache->add_sequence());
    f.cache->append(f.seqs[0], 1, tokens(3), tokens(3), 3);  // a partly filled last block
    return std::pair(std::move(f.cache), f.seqs);
  };
  // 5 more tokens: fills the last block, then 2 new blocks per head (6 new blocks).
  const int blocks = refuse_each_block(
      make, [](KVCache& c, const std::vector<SeqId>& s) { c.append(s[0], 1, tokens(5), tokens(5), 5); }, "append");
  EXPECT_EQ(blocks, 6);
}

TEST(CacheFaultTest, RefusedBlockInAnAllLayerAppendChangesNoLayer) {
  auto make = [] {
    Fresh f{std::make_unique<KVCache>(config()), {}};
    f.seqs.push_back(f.cache->add_sequence());
    f.cache->append_all_layers(f.seqs[0], tokens(1, L), tokens(1, L), 1);
    return std::pair(std::move(f.cache), f.seqs);
  };
  // 4 tokens more in each of 3 layers: 2 new blocks per head and layer (18 new blocks);
  // the refusal falls in every layer in turn.
  const int blocks = refuse_each_block(
      make, [](KVCache& c, const std::vector<SeqId>& s) { c.append_all_layers(s[0], tokens(4, L), tokens(4, L), 4); },
      "append_all_layers");
  EXPECT_EQ(blocks, int(2 * H * L));
}

TEST(CacheFaultTest, RefusedCopyOnWriteAfterAForkChangesNeitherSequence) {
  auto make = [] {
    Fresh f{std::make_unique<KVCache>(config()), {}};
    const SeqId a = f.cache->add_sequence();
    f.cache->append_all_layers(a, tokens(3, L), tokens(3, L), 3);  // last block half full, shared below
    const SeqId b = f.cache->fork(a);
    f.seqs = {a, b};
    return std::pair(std::move(f.cache), f.seqs);
  };
  // In each layer, the fork's first append copies its shared, half-full last block (one
  // block per head) and takes one more per head for its 5th token.
  const int blocks = refuse_each_block(
      make, [](KVCache& c, const std::vector<SeqId>& s) { c.append_all_layers(s[1], tokens(2, L), tokens(2, L), 2); },
      "append after fork");
  EXPECT_EQ(blocks, int(2 * H * L));
}

TEST(CacheFaultTest, RefusedBlockInABatchAppendChangesNoSequence) {
  auto make = [] {
    Fresh f{std::make_unique<KVCache>(config()), {}};
    const SeqId a = f.cache->add_sequence(), b = f.cache->add_sequence(), c = f.cache->add_sequence();
    f.cache->append(a, 0, tokens(1), tokens(1), 1);  // half full: no new block
    f.cache->append(b, 0, tokens(2), tokens(2), 2);  // full: a new block per head
    f.seqs = {a, b, c, f.cache->fork(a)};            // c empty: a first block; the fork copies a's
    return std::pair(std::move(f.cache), f.seqs);
  };
  // New blocks per head: b's next, c's first, and the private copies of a's shared block
  // for a and its fork; the refusal falls in every sequence's share in turn.
  const int blocks = refuse_each_block(
      make, [](KVCache& c, const std::vector<SeqId>& s) { c.append_batch(s, 0, tokens(4), tokens(4)); },
      "append_batch");
  EXPECT_EQ(blocks, int(4 * H));
}

TEST(CacheFaultTest, ForkTakesNoBlocksSoARefusingSystemCannotFailIt) {
  KVCache cache(config());
  const SeqId a = cache.add_sequence();
  cache.append_all_layers(a, tokens(3, L), tokens(3, L), 3);
  const std::size_t in_use = cache.memory_usage().blocks_in_use;
  alloc_fault::Scope refuse(0);
  const SeqId b = cache.fork(a);
  EXPECT_EQ(cache.memory_usage().blocks_in_use, in_use);
  EXPECT_EQ(cache.length(b, 2), 3u);
  EXPECT_EQ(alloc_fault::failures(), 0u);
}

// A refused block that would have been reused from the free list is no failure: only
// blocks taken from the system can be refused.
TEST(CacheFaultTest, ReusedBlocksAreNotTakenFromTheSystem) {
  KVCache cache(config());
  const SeqId a = cache.add_sequence();
  cache.append_all_layers(a, tokens(4, L), tokens(4, L), 4);
  cache.truncate(a, 4);
  alloc_fault::Scope refuse(0);
  cache.append_all_layers(a, tokens(4, L), tokens(4, L), 4);
  EXPECT_EQ(cache.length(a, 0), 4u);
  EXPECT_EQ(alloc_fault::failures(), 0u);
}

}  // namespace
}  // namespace sparq
