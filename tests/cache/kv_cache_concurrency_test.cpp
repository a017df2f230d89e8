// The cache under concurrent use: an all-layer append is all or nothing even while
// another thread drains the pool. Stress tests run a fixed number of rounds and assert
// only outcomes, never timings; they are also the ThreadSanitizer job's subjects
// (docs/reliability.md).
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

#include "cache_test_util.hpp"
#include "sparq/error.hpp"

namespace sparq {
namespace {

using test::random_floats;

// A barrier that spins, so that both threads leave it within a few hundred
// nanoseconds of each other (a sleeping barrier's wake-up takes longer than an append).
class SpinBarrier {
 public:
  void arrive_and_wait() {
    const int gen = generation_.load();
    if (arrived_.fetch_add(1) == 1) {
      arrived_.store(0);
      generation_.fetch_add(1);
      return;
    }
    while (generation_.load() == gen) std::this_thread::yield();
  }

 private:
  std::atomic<int> arrived_{0}, generation_{0};
};

// Two threads append all layers of their own sequence at the same moment; the pool has
// room for 1.5 such appends, and many layers with 1-token blocks make each append take
// its blocks in many steps. Whatever wins, a sequence's layers keep one length. (Before
// the blocks of all layers were taken in one step, 113 of its 800 appends tore.)
TEST(CacheConcurrencyTest, AllLayerAppendIsAllOrNothingUnderConcurrency) {
  // Appends of about a millisecond, so that they overlap even when the two threads share
  // a core with other work.
  constexpr std::size_t L = 32, H = 1, d = 128, n = 32;
  // Pool: 48 tokens per (layer, head) = 1536 blocks; one append takes 32 * 32 = 1024.
  KVCache cache(
      {.layers = L, .kv_heads = H, .head_dim = d, .dtype = DType::f32, .block_tokens = 1, .capacity_tokens = 48});
  const std::vector<float> kv = random_floats(L * n * H * d, 11);
  SeqId seqs[2] = {cache.add_sequence(), cache.add_sequence()};
  constexpr int kRounds = 400;
  SpinBarrier sync;
  std::atomic<int> failures{0}, torn{0};
  auto worker = [&](int t) {
    for (int round = 0; round < kRounds; ++round) {
      sync.arrive_and_wait();
      bool failed = false;
      try {
        cache.append_all_layers(seqs[t], kv, kv, n);
      } catch (const Error& e) {
        if (e.code() != ErrorCode::capacity_exhausted) ADD_FAILURE() << e.what();
        failed = true;
      }
      const std::size_t want = failed ? 0 : n;
      for (std::size_t l = 0; l < L; ++l)
        if (cache.length(seqs[t], l) != want) {
          if (torn.fetch_add(1) < 5) {
            ADD_FAILURE() << "round " << round << " thread " << t << (failed ? " (failed)" : " (succeeded)")
                          << ": layer " << l << " has " << cache.length(seqs[t], l) << " tokens, expected " << want;
          }
          break;
        }
      failures.fetch_add(failed);
      sync.arrive_and_wait();
      // Back to empty; a torn sequence is dropped and replaced, so later rounds start clean.
      if (cache.length(seqs[t], 0) == cache.length(seqs[t], L - 1)) {
        cache.truncate(seqs[t], cache.length(seqs[t], 0));
      } else {
        cache.remove_sequence(seqs[t]);
        seqs[t] = cache.add_sequence();
      }
      sync.arrive_and_wait();
      if (t == 0 && torn.load() == 0) {
        EXPECT_EQ(cache.memory_usage().blocks_in_use, 0u) << "round " << round;
      }
      sync.arrive_and_wait();
    }
  };
  std::thread other(worker, 1);
  worker(0);
  other.join();
  EXPECT_EQ(torn.load(), 0) << "of " << 2 * kRounds << " appends";
  // Exactly one of each pair fits, so with all-or-nothing appends every round has one
  // failure.
  if (torn.load() == 0) {
    EXPECT_EQ(failures.load(), kRounds);
  }
}

}  // namespace
}  // namespace sparq
