// Every allocation the cache makes may fail: this binary replaces the global operator
// new with one that throws std::bad_alloc at the n-th allocation of the calling thread,
// and runs each writer (add_sequence, append, append_all_layers, append_batch, fork,
// truncate) with the failure at n = 0, 1, 2, ... until it succeeds. Each failure must leave the cache
// exactly as it was: sequences, lengths, data, block accounting, and no block kept
// alive by a failed fork. Its own binary, since the replaced operator new applies to
// the whole process.
#include <gtest/gtest.h>

#include <cstdlib>
#include <new>
#include <string>

#include "cache_test_util.hpp"
#include "sparq/error.hpp"

namespace {
// The calling thread's allocations left before one fails; < 0: never fail.
thread_local long allocations_left = -1;

void* allocate(std::size_t n) {
  if (allocations_left == 0) {
    allocations_left = -1;  // fail once: the handlers that follow may allocate
    throw std::bad_alloc();
  }
  if (allocations_left > 0) --allocations_left;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) {
  return allocate(n);
}
void* operator new[](std::size_t n) {
  return allocate(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

namespace sparq {
namespace {

using test::random_floats;

constexpr std::size_t L = 2, H = 2, d = 4, B = 2;
const std::vector<float> kKv = random_floats(L * 8 * H * d, 7);

std::span<const float> tokens(std::size_t n, std::size_t layers = 1) {
  return std::span(kKv).first(layers * n * H * d);
}

struct State {
  std::vector<SeqId> seqs;
  std::vector<std::size_t> lengths;
  std::vector<std::vector<float>> keys, values;
  std::size_t in_use = 0;
  bool operator==(const State&) const = default;

  static State of(const KVCache& c) {
    State s;
    s.seqs = c.sequences();
    s.in_use = c.memory_usage().blocks_in_use;
    for (SeqId id : s.seqs)
      for (std::size_t l = 0; l < L; ++l) {
        s.lengths.push_back(c.length(id, l));
        const auto dump = test::dump_layer(c, id, l);
        s.keys.push_back(dump.keys);
        s.values.push_back(dump.values);
      }
    return s;
  }
};

// A cache with a forked pair sharing a half-full block, so appends copy on write.
std::unique_ptr<KVCache> make(SeqId& a, SeqId& b) {
  auto c = std::make_unique<KVCache>(CacheConfig{
      .layers = L, .kv_heads = H, .head_dim = d, .dtype = DType::f16, .block_tokens = B, .capacity_tokens = 32});
  a = c->add_sequence();
  c->append_all_layers(a, tokens(3, L), tokens(3, L), 3);
  b = c->fork(a);
  return c;
}

template <class Op>
void fail_each_allocation(Op op, const std::string& name) {
  for (long n = 0;; ++n) {
    SeqId a = 0, b = 0;
    auto cache = make(a, b);
    const State before = State::of(*cache);
    bool failed = false;
    allocations_left = n;
    try {
      op(*cache, a, b);
    } catch (const std::bad_alloc&) {
      failed = true;
    } catch (const Error& e) {
      failed = true;  // the pool reports a refused block as capacity_exhausted
      EXPECT_EQ(e.code(), ErrorCode::capacity_exhausted) << name << " n=" << n << ": " << e.what();
    }
    allocations_left = -1;
    if (!failed) return;
    const State after = State::of(*cache);
    EXPECT_TRUE(after == before) << name << ": allocation " << n << " failed and changed the cache";
    // Dropping every sequence returns every block: a failed call kept none alive.
    for (SeqId s : cache->sequences()) cache->remove_sequence(s);
    EXPECT_EQ(cache->memory_usage().blocks_in_use, 0u) << name << " n=" << n;
    ASSERT_LT(n, 10000) << name;
  }
}

TEST(CacheBadAllocTest, EveryWriterLeavesTheCacheAsItWas) {
  fail_each_allocation([](KVCache& c, SeqId, SeqId) { (void)c.add_sequence(); }, "add_sequence");
  fail_each_allocation([](KVCache& c, SeqId a, SeqId) { c.append(a, 1, tokens(4), tokens(4), 4); }, "append");
  fail_each_allocation([](KVCache& c, SeqId, SeqId b) { c.append_all_layers(b, tokens(4, L), tokens(4, L), 4); },
                       "append_all_layers after fork");
  fail_each_allocation(
      [](KVCache& c, SeqId a, SeqId b) {
        const SeqId seqs[] = {a, b};  // both copy their shared block
        c.append_batch(seqs, 1, tokens(2), tokens(2));
      },
      "append_batch after fork");
  fail_each_allocation([](KVCache& c, SeqId a, SeqId) { (void)c.fork(a); }, "fork");
  fail_each_allocation([](KVCache& c, SeqId a, SeqId) { c.truncate(a, 2); }, "truncate");
  fail_each_allocation([](KVCache& c, SeqId, SeqId b) { c.remove_sequence(b); }, "remove_sequence");
}

}  // namespace
}  // namespace sparq
