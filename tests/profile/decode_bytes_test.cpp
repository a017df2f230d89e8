// The profiler's byte counts from real decode calls equal the transfer model of
// DESIGN §1 (dense 2·S·d·b per KV head; SparQ S·r·b + 2·k·d·b + 4·d with reallocation)
// up to cache-line rounding.
//
// The bound. The profile counts every contiguous run it touches rounded out to whole
// 64-byte lines, so a run of n bytes counts at least n and at most n + 126 bytes (a
// partial line at each end). Hence, per call:
//   model <= counted <= model + 126 · runs,
// with runs per KV head = 2·ceil(S/B) for dense (K and V of each block) and
// r·ceil(S/B) + 2·k + 1 for SparQ (r d-major rows per block, k K and V rows, v̄).
// With k >= S SparQ fetches every row and α = 1 exactly, so it moves what dense moves.
// When every run starts and ends on a line (S a multiple of B, B·b and d·b multiples of
// 64, 4·d a multiple of 64) the count equals the model exactly.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "sparq/decode.hpp"
#include "sparq/kv_cache.hpp"
#include "sparq/tools/roofline.hpp"

namespace sparq {
namespace {

struct Shape {
  std::size_t q_heads, kv_heads, d, S, B;
  DType dtype;
};

std::string describe(const Shape& s) {
  return "q_heads=" + std::to_string(s.q_heads) + " kv_heads=" + std::to_string(s.kv_heads) +
         " d=" + std::to_string(s.d) + " S=" + std::to_string(s.S) + " B=" + std::to_string(s.B) +
         " dtype=" + std::string(to_string(s.dtype));
}

struct Filled {
  KVCache cache;
  SeqId seq;
  std::vector<float> q, out;
  explicit Filled(const Shape& s)
      : cache({.layers = 1,
               .kv_heads = s.kv_heads,
               .head_dim = s.d,
               .dtype = s.dtype,
               .block_tokens = s.B,
               .capacity_tokens = (s.S + s.B - 1) / s.B * s.B}),
        seq(cache.add_sequence()),
        q(s.q_heads * s.d),
        out(s.q_heads * s.d) {
    std::mt19937 rng(unsigned(s.S * 31 + s.d));
    std::normal_distribution<float> normal;
    std::vector<float> k(s.S * s.kv_heads * s.d), v(k.size());
    for (auto& x : k) x = normal(rng);
    for (auto& x : v) x = normal(rng);
    for (auto& x : q) x = normal(rng);
    cache.append(seq, 0, k, v, s.S);
  }
  Profile run(const Method& m) {
    Profile p;
    const DecodeItem item{.seq = seq, .q = q, .out = out};
    decode(cache, 0, m, std::span(&item, 1), {.profile = &p});
    return p;
  }
};

bool aligned(const Shape& s) {
  const std::size_t b = size_of(s.dtype);
  return s.S % s.B == 0 && (s.B * b) % 64 == 0 && (s.d * b) % 64 == 0 && (4 * s.d) % 64 == 0;
}

const Shape kShapes[] = {
    {8, 2, 128, 4096, 256, DType::bf16},  // GQA, aligned
    {4, 4, 64, 1024, 64, DType::f32},     // MHA, aligned
    {2, 1, 128, 2048, 256, DType::f16},   // MQA
    {6, 2, 80, 1000, 256, DType::bf16},   // odd S, d·b = 160 (rows straddle lines)
    {3, 3, 96, 333, 64, DType::f32},      // S not a multiple of B
    {4, 2, 64, 100, 256, DType::bf16},    // S smaller than one block
};

TEST(DecodeBytes, DenseEqualsTheModel) {
  for (const Shape& s : kShapes) {
    Filled f(s);
    const Profile p = f.run(Dense{});
    const std::uint64_t counted = p.total().bytes_read;
    const std::uint64_t model = dense_model_bytes(s.S, s.d, s.dtype) * s.kv_heads;
    const std::uint64_t runs = 2 * ((s.S + s.B - 1) / s.B) * s.kv_heads;
    EXPECT_GE(counted, model) << describe(s);
    EXPECT_LE(counted, model + 126 * runs) << describe(s);
    if (aligned(s)) {
      EXPECT_EQ(counted, model) << describe(s);
    }
    EXPECT_EQ(p[Phase::dense].calls > 0, true) << describe(s);
    EXPECT_EQ(p[Phase::dense].flops, 4ull * s.q_heads * s.S * s.d) << describe(s);
  }
}

void expect_sparq_model(const Shape& s, const SparQ& method) {
  Filled f(s);
  const std::size_t g = s.q_heads / s.kv_heads;
  const SparQResolved r = method.resolve(s.d, s.S, g);
  const Profile p = f.run(method);
  const std::uint64_t counted = p.total().bytes_read;
  const std::uint64_t model = sparq_model_bytes(s.S, s.d, s.dtype, r, g) * s.kv_heads;
  const std::uint64_t k_eff = std::min(r.k, s.S);
  const std::uint64_t runs = (r.r * ((s.S + s.B - 1) / s.B) + 2 * k_eff + 1) * s.kv_heads;
  const std::string ctx = describe(s) + " r=" + std::to_string(r.r) + " k=" + std::to_string(r.k) +
                          " window=" + std::to_string(r.window) + " realloc=" + std::to_string(r.reallocation);
  EXPECT_GE(counted, model) << ctx;
  EXPECT_LE(counted, model + 126 * runs) << ctx;
  if (aligned(s)) {
    EXPECT_EQ(counted, model) << ctx;
  }
  if (r.k >= s.S) {
    // Every row fetched, α = 1: what must move is dense's 2·S·d·b.
    EXPECT_EQ(model, dense_model_bytes(s.S, s.d, s.dtype) * s.kv_heads) << ctx;
    return;
  }
  EXPECT_GT(p[Phase::stage1].bytes_read, 0u) << ctx;
  EXPECT_GT(p[Phase::stage2].bytes_read, 0u) << ctx;
  if (r.reallocation) {
    EXPECT_GE(p[Phase::reallocation].bytes_read, 4u * s.d * s.kv_heads) << ctx;
  }
}

TEST(DecodeBytes, SparQEqualsTheModel) {
  for (const Shape& s : kShapes) {
    expect_sparq_model(s, SparQ::for_ratio(8));  // defaults (reallocation iff g = 1)
    SparQ explicit_params;
    explicit_params.r = 8;
    explicit_params.k = 50;
    explicit_params.window = 10;
    explicit_params.reallocation = true;  // + 4·d per KV head
    expect_sparq_model(s, explicit_params);
    SparQ everything;  // k >= S: every row fetched once
    everything.r = s.d;
    everything.k = s.S + 5;
    expect_sparq_model(s, everything);
  }
}

// Per-head selection reads the union of what the g heads choose: at least one head's
// share (the shared-selection model), at most the union bound, plus rounding.
TEST(DecodeBytes, PerHeadSelectionIsWithinItsBounds) {
  for (const Shape& s : kShapes) {
    const std::size_t g = s.q_heads / s.kv_heads;
    SparQ method = SparQ::for_ratio(8);
    method.gqa = GqaSelection::per_head;
    const SparQResolved r = method.resolve(s.d, s.S, g);
    if (r.k >= s.S) continue;
    SparQResolved shared = r;
    shared.gqa = GqaSelection::shared;
    Filled f(s);
    const std::uint64_t counted = f.run(method).total().bytes_read;
    const std::uint64_t lower = sparq_model_bytes(s.S, s.d, s.dtype, shared, g) * s.kv_heads;
    const std::uint64_t upper = sparq_model_bytes(s.S, s.d, s.dtype, r, g) * s.kv_heads;
    const std::uint64_t runs =
        (std::min(g * r.r, s.d) * ((s.S + s.B - 1) / s.B) + 2 * std::min(g * r.k, s.S) + 1) * s.kv_heads;
    EXPECT_GE(counted, lower) << describe(s);
    EXPECT_LE(counted, upper + 126 * runs) << describe(s);
  }
}

TEST(DecodeBytes, SparQMovesAboutAnEighthOfDenseAtRatio8) {
  const Shape s{8, 2, 128, 8192, 256, DType::bf16};
  Filled f(s);
  const double dense = double(f.run(Dense{}).total().bytes_read);
  const double sparq = double(f.run(SparQ::for_ratio(8)).total().bytes_read);
  EXPECT_NEAR(dense / sparq, 8.0, 0.05) << describe(s);
}

TEST(DecodeBytes, ProfilesAccumulateOverCalls) {
  const Shape s{4, 2, 64, 512, 64, DType::f32};
  Filled f(s);
  Profile acc;
  const DecodeItem item{.seq = f.seq, .q = f.q, .out = f.out};
  for (int i = 0; i < 3; ++i) decode(f.cache, 0, SparQ::for_ratio(4), std::span(&item, 1), {.profile = &acc});
  const Profile one = f.run(SparQ::for_ratio(4));
  EXPECT_EQ(acc.total().bytes_read, 3 * one.total().bytes_read);
  EXPECT_EQ(acc.total().calls, 3u);
}

}  // namespace
}  // namespace sparq
