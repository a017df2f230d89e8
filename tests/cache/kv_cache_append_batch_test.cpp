// KVCache::append_batch: one token for each of many sequences in one call stores exactly
// what one append per sequence stores, and is all or nothing across the batch: a bad id,
// a repeated id, a sequence in use, bad values or a full pool change no sequence.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cache/element.hpp"
#include "cache_test_util.hpp"
#include "sparq/error.hpp"

namespace sparq {
namespace {

using test::random_floats;
using test::storage_difference;

constexpr std::size_t L = 2, H = 2, d = 8, B = 4;

CacheConfig config(KeyLayout layout = KeyLayout::both, DMajorType m = DMajorType::same, DType t = DType::bf16,
                   std::size_t capacity = 64) {
  return {.layers = L,
          .kv_heads = H,
          .head_dim = d,
          .dtype = t,
          .block_tokens = B,
          .capacity_tokens = capacity,
          .layouts = layout,
          .d_major_type = m};
}

// Sequences of lengths 0, 3 (next token opens no block), 4 (next token opens one) and a
// fork of the 3-token one (its next token copies the shared last block).
std::vector<SeqId> populate(KVCache& c) {
  std::vector<SeqId> seqs;
  std::uint32_t seed = 10;
  for (std::size_t n : {0, 3, 4}) {
    seqs.push_back(c.add_sequence());
    if (n) c.append(seqs.back(), 1, random_floats(n * H * d, seed), random_floats(n * H * d, seed + 1), n);
    seed += 2;
  }
  seqs.push_back(c.fork(seqs[1]));
  return seqs;
}

TEST(CacheAppendBatchTest, EqualsOneAppendPerSequenceInEveryConfiguration) {
  for (KeyLayout layout : {KeyLayout::both, KeyLayout::s_major, KeyLayout::d_major, KeyLayout::fused})
    for (DMajorType m : {DMajorType::same, DMajorType::int8})
      for (DType t : {DType::f32, DType::f16, DType::bf16}) {
        if (m == DMajorType::int8 && !(layout == KeyLayout::both || layout == KeyLayout::fused)) continue;
        const std::string name =
            std::string(to_string(layout)) + "/" + std::string(to_string(m)) + "/" + std::string(to_string(t));
        KVCache batched(config(layout, m, t)), single(config(layout, m, t));
        const std::vector<SeqId> a = populate(batched), b = populate(single);
        for (std::uint32_t step = 0; step < 3; ++step) {
          const auto k = random_floats(a.size() * H * d, 100 + step, 2.0f);
          const auto v = random_floats(a.size() * H * d, 200 + step);
          batched.append_batch(a, 1, k, v);
          for (std::size_t i = 0; i < b.size(); ++i)
            single.append(b[i], 1, std::span(k).subspan(i * H * d, H * d), std::span(v).subspan(i * H * d, H * d), 1);
        }
        for (std::size_t i = 0; i < a.size(); ++i) {
          EXPECT_EQ(batched.length(a[i], 0), 0u) << name;
          EXPECT_EQ(storage_difference(batched, a[i], single, b[i], 1), "") << name << " seq " << i;
        }
        EXPECT_EQ(batched.memory_usage().blocks_in_use, single.memory_usage().blocks_in_use) << name;
      }
}

TEST(CacheAppendBatchTest, SixteenBitRowsAreStoredAsTheirF32Values) {
  KVCache half(config()), f32(config());
  const std::vector<SeqId> a = populate(half), b = populate(f32);
  const auto x = random_floats(a.size() * H * d, 3);
  std::vector<std::uint16_t> bits(x.size());
  std::vector<float> wide(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    bits[i] = element::f32_to_f16(x[i]);
    wide[i] = element::f16_to_f32(bits[i]);
  }
  half.append_batch(a, 0, Rows::f16(bits), Rows::f16(bits));
  f32.append_batch(b, 0, wide, wide);
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(storage_difference(half, a[i], f32, b[i], 0), "") << i;
}

// Lengths, stored rows and blocks of every sequence, for before/after comparisons.
struct State {
  std::vector<std::size_t> lengths;
  std::vector<std::vector<float>> keys, values;
  std::size_t in_use = 0;
  bool operator==(const State&) const = default;
};
State state_of(const KVCache& c) {
  State s;
  s.in_use = c.memory_usage().blocks_in_use;
  for (SeqId id : c.sequences())
    for (std::size_t l = 0; l < L; ++l) {
      s.lengths.push_back(c.length(id, l));
      const test::LayerDump dump = test::dump_layer(c, id, l);
      s.keys.push_back(dump.keys);
      s.values.push_back(dump.values);
    }
  return s;
}

template <class F>
void expect_refused(F f, ErrorCode code, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no error; expected " << part;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(CacheAppendBatchTest, BadInputIsRefusedAndNoSequenceChanges) {
  KVCache cache(config());
  const std::vector<SeqId> seqs = populate(cache);
  const State before = state_of(cache);
  const std::size_t n = seqs.size();
  const auto k = random_floats(n * H * d, 1), v = random_floats(n * H * d, 2);
  auto bad = v;
  bad[3 * H * d + 1 * d + 2] = 3.4e38f;  // finite, but beyond bf16 storage
  expect_refused([&] { cache.append_batch(seqs, 1, k, bad); }, ErrorCode::non_finite_input,
                 "values[batch row 3, head 1, component 2]");
  std::vector<SeqId> dup = seqs;
  dup[2] = seqs[0];
  expect_refused([&] { cache.append_batch(dup, 1, k, v); }, ErrorCode::invalid_argument,
                 "seqs[2]=" + std::to_string(seqs[0]) + " repeats seqs[0]");
  std::vector<SeqId> unknown = seqs;
  unknown[3] = 999;
  expect_refused([&] { cache.append_batch(unknown, 1, k, v); }, ErrorCode::unknown_sequence, "sequence 999");
  expect_refused([&] { cache.append_batch(std::span(seqs).first(3), 1, k, v); }, ErrorCode::shape_mismatch,
                 "keys has 64 floats, expected n_seqs*kv_heads*head_dim = 48");
  expect_refused([&] { cache.append_batch(seqs, L, k, v); }, ErrorCode::invalid_argument, "layer=2");
  {
    // A reader of the last sequence: the batch claims the others first, then gives them back.
    const auto reading = cache.lock_for_read(seqs[3]);
    expect_refused([&] { cache.append_batch(seqs, 1, k, v); }, ErrorCode::concurrent_use,
                   "sequence " + std::to_string(seqs[3]) + " is being read");
  }
  EXPECT_TRUE(state_of(cache) == before);
  // Nothing stayed claimed: the same batch now succeeds.
  cache.append_batch(seqs, 1, k, v);
  EXPECT_EQ(cache.length(seqs[3], 1), 4u);
  cache.append_batch({}, 1, std::span<const float>{}, std::span<const float>{});  // an empty batch does nothing
}

TEST(CacheAppendBatchTest, AFullPoolChangesNoSequence) {
  // 8 blocks; 4 in use (sequences 1 and 2, one per head each; the fork shares 1's). The
  // batch needs 8: a first block for the empty sequence and the full one, and a private
  // copy of the shared block for sequence 1 and its fork.
  KVCache cache(config(KeyLayout::both, DMajorType::same, DType::bf16, 8));
  const std::vector<SeqId> seqs = populate(cache);
  const State before = state_of(cache);
  const auto k = random_floats(seqs.size() * H * d, 1);
  expect_refused([&] { cache.append_batch(seqs, 1, k, k); }, ErrorCode::capacity_exhausted,
                 "append of one token to each of 4 sequences at layer 1 needs 8 more blocks but only 4");
  EXPECT_TRUE(state_of(cache) == before);
  // Without the empty and the full sequence it needs 4 blocks, and fits.
  const std::vector<SeqId> fits{seqs[1], seqs[3]};
  cache.append_batch(fits, 1, std::span(k).first(2 * H * d), std::span(k).first(2 * H * d));
  EXPECT_EQ(cache.length(seqs[1], 1), 4u);
  EXPECT_EQ(cache.length(seqs[3], 1), 4u);
}

}  // namespace
}  // namespace sparq
