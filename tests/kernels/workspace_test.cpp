// sparq::Workspace: decode and decode_causal give bit-identical outputs with and without
// one; its footprint stays within the bound its header documents as S grows, does not
// grow with repeated calls, and is freed by release(); one decode at a time.
#include <gtest/gtest.h>
#include <oneapi/tbb/task_arena.h>

#include <cstring>
#include <string>
#include <vector>

#include "kernel_test_util.hpp"
#include "kernels/scratch.hpp"
#include "sparq/decode.hpp"
#include "sparq/error.hpp"

namespace sparq {
namespace {

constexpr std::size_t kD = 64, kKv = 2, kQ = 8, kG = kQ / kKv;

struct Outputs {
  std::vector<float> out, lse, alpha;
  std::vector<std::vector<std::vector<std::uint32_t>>> selected;
  bool operator==(const Outputs&) const = default;
};

Outputs run(const KVCache& cache, const std::vector<SeqId>& seqs, const Method& m, const DecodeOptions& o) {
  Outputs r;
  r.out.assign(seqs.size() * kQ * kD, 0.0f);
  r.lse.assign(seqs.size() * kQ, 0.0f);
  r.alpha.assign(seqs.size() * kQ, 0.0f);
  r.selected.resize(seqs.size());
  const auto q = test::normal_floats(seqs.size() * kQ * kD, 77);
  std::vector<DecodeItem> batch;
  for (std::size_t b = 0; b < seqs.size(); ++b)
    batch.push_back({.seq = seqs[b],
                     .q = std::span(q).subspan(b * kQ * kD, kQ * kD),
                     .out = std::span(r.out).subspan(b * kQ * kD, kQ * kD),
                     .lse = std::span(r.lse).subspan(b * kQ, kQ),
                     .alpha = std::span(r.alpha).subspan(b * kQ, kQ),
                     .selected = &r.selected[b]});
  decode(cache, 0, m, batch, o);
  return r;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::vector<Method> methods() {
  SparQ per_head = SparQ::for_ratio(4);
  per_head.gqa = GqaSelection::per_head;
  return {Dense{}, SparQ::for_ratio(8), per_head};
}

TEST(WorkspaceTest, OutputsAreBitIdenticalWithAndWithoutOne) {
  const test::FilledCache f = test::make_cache(
      {.layers = 1, .kv_heads = kKv, .head_dim = kD, .dtype = DType::bf16, .block_tokens = 16}, {300, 5000, 17});
  tbb::task_arena two(2);
  for (tbb::task_arena* arena : {static_cast<tbb::task_arena*>(nullptr), &two})
    for (const Method& m : methods()) {
      Workspace ws;
      const Outputs plain = run(*f.cache, f.seqs, m, {.arena = arena});
      for (int call = 0; call < 2; ++call) {  // a fresh workspace, then a used one
        const Outputs with = run(*f.cache, f.seqs, m, {.arena = arena, .workspace = &ws});
        EXPECT_TRUE(same_bits(with.out, plain.out)) << "call " << call;
        EXPECT_TRUE(same_bits(with.lse, plain.lse)) << "call " << call;
        EXPECT_TRUE(same_bits(with.alpha, plain.alpha)) << "call " << call;
        EXPECT_EQ(with.selected, plain.selected) << "call " << call;
      }
      EXPECT_GT(ws.bytes(), 0u);
      EXPECT_GE(ws.slots(), 1u);
    }
  // decode_causal (a prefill chunk of the last 40 positions).
  const auto q = test::normal_floats(40 * kQ * kD, 5);
  std::vector<float> plain(q.size()), with(q.size());
  Workspace ws;
  decode_causal(*f.cache, 0, f.seqs[0], q, plain, 40);
  decode_causal(*f.cache, 0, f.seqs[0], q, with, 40, {.workspace = &ws});
  EXPECT_TRUE(same_bits(with, plain));
}

// The bound of sparq/workspace.hpp for calls up to S positions and k fetched.
std::size_t documented_bound(std::size_t slots, std::size_t S, std::size_t k) {
  return slots * (16 * (kG + 3) * S + 8 * (kG + 1) * k + 4096 * (kD + 32));
}

TEST(WorkspaceTest, FootprintStaysWithinItsBoundAsSGrowsAndIsReleased) {
  KVCache cache({.layers = 1,
                 .kv_heads = kKv,
                 .head_dim = kD,
                 .dtype = DType::bf16,
                 .block_tokens = 16,
                 .capacity_tokens = 40000});
  const SeqId s = cache.add_sequence();
  Workspace ws;
  std::size_t S = 0, appended_seed = 1, largest = 0;
  for (std::size_t target : {100, 1000, 4000, 12000, 32000}) {
    const std::size_t n = target - S;
    cache.append(s, 0, test::normal_floats(n * kKv * kD, appended_seed),
                 test::normal_floats(n * kKv * kD, appended_seed + 1), n);
    appended_seed += 2;
    S = target;
    const std::size_t k = SparQ::for_ratio(8).resolve(kD, S, kG).k;
    for (const Method& m : methods()) {
      const Outputs with = run(cache, {s}, m, {.workspace = &ws});
      const Outputs plain = run(cache, {s}, m, {});
      EXPECT_TRUE(same_bits(with.out, plain.out)) << "S=" << S;
    }
    const std::size_t kmax = SparQ::for_ratio(4).resolve(kD, S, kG).k;  // the per-head method fetches more
    EXPECT_LE(ws.bytes(), documented_bound(ws.slots(), S, std::max(k, kmax))) << "S=" << S << " slots=" << ws.slots();
    largest = S;
  }
  // More calls, at the largest S and at smaller ones, stay within the bound of the
  // largest call (slots only grow to what they serve).
  const std::size_t k_largest = SparQ::for_ratio(4).resolve(kD, largest, kG).k;
  for (int i = 0; i < 5; ++i) (void)run(cache, {s}, SparQ::for_ratio(8), {.workspace = &ws});
  const Outputs small = run(cache, {s}, Dense{}, {.workspace = &ws});
  EXPECT_LE(ws.bytes(), documented_bound(ws.slots(), largest, k_largest));
  ws.release();
  EXPECT_EQ(ws.bytes(), 0u);
  EXPECT_EQ(ws.slots(), 0u);
  // Usable again after release, with the same results.
  EXPECT_TRUE(same_bits(run(cache, {s}, Dense{}, {.workspace = &ws}).out, small.out));
}

TEST(WorkspaceTest, AWorkspaceInUseIsRefusedAndNothingIsWritten) {
  const test::FilledCache f =
      test::make_cache({.layers = 1, .kv_heads = kKv, .head_dim = kD, .dtype = DType::f32, .block_tokens = 16}, {40});
  Workspace ws;
  ws.impl().in_use = true;  // as if another thread's decode held it
  const auto q = test::normal_floats(kQ * kD, 3);
  std::vector<float> out(kQ * kD, 42.0f);
  const DecodeItem item{.seq = f.seqs[0], .q = q, .out = out};
  try {
    decode(*f.cache, 0, Dense{}, {&item, 1}, {.workspace = &ws});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::concurrent_use) << e.what();
    EXPECT_NE(std::string(e.what()).find("options.workspace is in use"), std::string::npos) << e.what();
  }
  for (float v : out) ASSERT_EQ(v, 42.0f);
  ws.impl().in_use = false;
  decode(*f.cache, 0, Dense{}, {&item, 1}, {.workspace = &ws});
  EXPECT_NE(out[0], 42.0f);
}

}  // namespace
}  // namespace sparq
