// SparQ decode against the scalar reference (lib/reference) on every compiled ISA the CPU
// runs: f32/f16/bf16 storage (the reference reads the same stored values, so 1e-5 holds
// for all three), MHA / GQA g = 2, 4, 8 shared and per-head / MQA, d in {64, 80, 96, 128,
// 256}, S around the block width, k >= S (= dense), r = d, r = 1, l > k, l = 0,
// reallocation on and off, the three key layouts, batches of mixed lengths, KV-head
// ranges, a long sequence, profile accounting, 1 vs 2 threads bit-identical.
//
// Selections. Where the k-th and (k+1)-th approximate scores are closer than f32 can
// separate, kernel and reference may legitimately pick different positions. So each
// selection is checked by score (a valid top-k of the reference's ŝ up to a relative
// 1e-4), and outputs are compared with the reference evaluated on the kernel's own
// selection; the tests also require that the selection equals the reference's in the
// vast majority of cases (random data leaves a margin almost always).
#include <gtest/gtest.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernel_test_util.hpp"
#include "reference/reference.hpp"
#include "sparq/decode.hpp"

namespace sparq {
namespace {

using test::IsaTest;
class SparqDecode : public IsaTest {};

constexpr double kTol = 1e-5;
constexpr double kTieTol = 1e-4;

struct Tally {
  std::size_t exact = 0;     // selections equal to the reference's
  std::size_t near_tie = 0;  // valid but different (near-tied boundary)
};

std::string describe(const CacheConfig& c, std::size_t S, std::size_t q_heads, const SparQResolved& p,
                     const std::string& isa) {
  return " S=" + std::to_string(S) + " d=" + std::to_string(c.head_dim) + " B=" + std::to_string(c.block_tokens) +
         " heads=" + std::to_string(q_heads) + "/" + std::to_string(c.kv_heads) +
         " dtype=" + std::string(to_string(c.dtype)) + " layouts=" + std::string(to_string(c.layouts)) +
         " r=" + std::to_string(p.r) + " k=" + std::to_string(p.k) + " l=" + std::to_string(p.window) +
         " realloc=" + std::to_string(p.reallocation) + " gqa=" + std::string(to_string(p.gqa)) + " isa=" + isa;
}

// Runs SparQ decode on one sequence and checks every query head against the reference.
void expect_matches_reference(const KVCache& cache, SeqId seq, std::size_t q_heads, const SparQ& method,
                              const std::string& isa, std::uint32_t seed, Tally& tally, std::size_t kv_begin = 0,
                              std::size_t kv_end = ~std::size_t{0}, float q_sigma = 1.0f) {
  const CacheConfig& c = cache.config();
  const std::size_t d = c.head_dim;
  kv_end = std::min(kv_end, c.kv_heads);
  const std::size_t n_kv = kv_end - kv_begin;
  const std::size_t g = q_heads / c.kv_heads;
  const std::size_t n_q = n_kv * g;
  const auto q = test::normal_floats(n_q * d, seed, q_sigma);
  std::vector<float> out(n_q * d, -7.0f), lse(n_q, -7.0f), alpha(n_q, -7.0f);
  std::vector<std::vector<std::uint32_t>> selected;
  const DecodeItem item{.seq = seq, .q = q, .out = out, .lse = lse, .alpha = alpha, .selected = &selected};
  decode(cache, 0, method, {&item, 1}, {.kv_head_begin = kv_begin, .kv_head_end = kv_end});

  const LayerView v = cache.view(seq, 0);
  const std::size_t S = v.length;
  const SparQResolved p = method.resolve(d, S, g);
  const double scale = 1.0 / std::sqrt(double(d));
  const auto ref = reference::sparq_decode(v, q, kv_begin, kv_end, g, scale, p);
  const std::string ctx = describe(c, S, q_heads, p, isa);
  const std::size_t k_eff = std::min(p.k, S), w = std::min(p.window, k_eff);
  ASSERT_EQ(selected.size(), n_q) << ctx;

  const std::size_t sel_size = p.gqa == GqaSelection::shared ? g : 1;
  for (std::size_t first = 0; first < n_q; first += sel_size) {
    const std::vector<std::uint32_t>& sel = selected[first];
    // A valid top-k of the reference scores: size, order, window, and by score.
    ASSERT_EQ(sel.size(), k_eff) << "head " << first << ctx;
    ASSERT_TRUE(std::is_sorted(sel.begin(), sel.end()) && std::adjacent_find(sel.begin(), sel.end()) == sel.end())
        << ctx;
    std::vector<double> score(S, 0.0);
    for (std::size_t h = first; h < first + sel_size; ++h)
      for (std::size_t j = 0; j < S; ++j) score[j] += ref.approx_scores[h][j];
    std::vector<bool> in(S, false);
    for (std::uint32_t j : sel) in[j] = true;
    for (std::size_t j = S - w; j < S; ++j) ASSERT_TRUE(in[j]) << "window position " << j << " missing" << ctx;
    double min_in = 1e300, max_out = 0.0;
    for (std::size_t j = 0; j < S - w; ++j) {
      if (in[j])
        min_in = std::min(min_in, score[j]);
      else
        max_out = std::max(max_out, score[j]);
    }
    if (k_eff > w && k_eff < S) {
      EXPECT_GE(min_in, max_out * (1.0 - kTieTol)) << "not a top-k by score, head " << first << ctx;
    }

    const bool exact = sel == ref.selected[first];
    ++(exact ? tally.exact : tally.near_tie);
    for (std::size_t h = first; h < first + sel_size; ++h) {
      EXPECT_EQ(selected[h], sel) << "heads of one shared selection differ, head " << h << ctx;
      const std::size_t kv = kv_begin + h / g;
      std::vector<double> y_ref(ref.out.begin() + std::ptrdiff_t(h * d), ref.out.begin() + std::ptrdiff_t((h + 1) * d));
      double lse_ref = ref.lse[h], alpha_ref = ref.alpha[h];
      if (!exact) {  // the reference evaluated on the kernel's selection
        alpha_ref = 0.0;
        for (std::uint32_t j : sel) alpha_ref += ref.approx_scores[h][j];
        lse_ref = reference::attend(v, kv, std::span(q).subspan(h * d, d), sel, scale, y_ref);
        if (p.reallocation)
          for (std::size_t i = 0; i < d; ++i)
            y_ref[i] = alpha_ref * y_ref[i] + (1.0 - alpha_ref) * double(v.value_mean[kv * d + i]);
      }
      EXPECT_LE(test::rel_error(std::span(out).subspan(h * d, d), y_ref), kTol) << "head " << h << ctx;
      EXPECT_NEAR(lse[h], lse_ref, kTol * std::max(1.0, std::abs(lse_ref))) << "lse head " << h << ctx;
      if (k_eff == S) {
        EXPECT_EQ(alpha[h], 1.0f) << "alpha must be exactly 1 when k >= S, head " << h << ctx;
      } else {
        EXPECT_NEAR(alpha[h], alpha_ref, kTol) << "alpha head " << h << ctx;
      }
    }
  }
}

struct Shape {
  std::size_t q_heads, kv_heads;
  GqaSelection gqa;
};

// The methods every shape is checked with (S-dependent k comes from the ratio).
std::vector<SparQ> methods(std::size_t d) {
  std::vector<SparQ> m;
  m.push_back(SparQ::for_ratio(8));  // defaults: r = d/8, k = S/16, l = k/4
  SparQ a = SparQ::for_ratio(4);
  a.reallocation = true;
  m.push_back(a);
  SparQ b = SparQ::for_ratio(2);
  b.reallocation = false;
  b.window = 0;  // l = 0
  m.push_back(b);
  SparQ c;
  c.r = 1;
  c.k = 5;
  c.window = 9;  // l > k
  m.push_back(c);
  SparQ e;
  e.r = d;
  e.k = 40;
  e.reallocation = true;  // r = d
  m.push_back(e);
  SparQ f;
  f.k = 100000;  // k >= S: dense
  m.push_back(f);
  return m;
}

void check_shapes(const std::string& isa, std::size_t B, std::vector<std::size_t> ds, const std::vector<Shape>& shapes,
                  std::uint32_t seed, Tally& tally) {
  const std::vector<std::size_t> lengths = {1, 7, B - 1, B, B + 1, 1000};
  std::size_t combo = 0;
  for (DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (std::size_t d : ds)
      for (const Shape& sh : shapes) {
        // Every layout, and the int8 d-major copy with both S-major layouts, in turn.
        const KeyLayout layouts[] = {KeyLayout::both,  KeyLayout::s_major, KeyLayout::d_major,
                                     KeyLayout::fused, KeyLayout::both,    KeyLayout::fused};
        const std::size_t which = combo++ % 6;
        const CacheConfig cfg{.layers = 1,
                              .kv_heads = sh.kv_heads,
                              .head_dim = d,
                              .dtype = dtype,
                              .block_tokens = B,
                              .layouts = layouts[which],
                              .d_major_type = which >= 4 ? DMajorType::int8 : DMajorType::same};
        auto f = test::make_cache(cfg, lengths, seed);
        // Half of the methods per combination, alternating, so every method meets every
        // dtype, d and shape across the loop while the test stays fast.
        const std::vector<SparQ> all = methods(d);
        for (std::size_t i = combo % 2; i < all.size(); i += 2) {
          SparQ m = all[i];
          m.gqa = sh.gqa;
          for (SeqId s : f.seqs) expect_matches_reference(*f.cache, s, sh.q_heads, m, isa, seed++, tally);
          if (::testing::Test::HasFailure()) return;
        }
      }
}

TEST_P(SparqDecode, MatchesReferenceMhaAndShared) {
  Tally t;
  check_shapes(isa(), 32, {64, 80, 96, 128, 256},
               {{4, 4, GqaSelection::shared},
                {4, 2, GqaSelection::shared},
                {8, 2, GqaSelection::shared},
                {8, 1, GqaSelection::shared}},
               100, t);
  EXPECT_GE(t.exact, 9 * (t.exact + t.near_tie) / 10) << "exact " << t.exact << " near-tie " << t.near_tie;
}

TEST_P(SparqDecode, MatchesReferencePerHeadAndMqa) {
  Tally t;
  check_shapes(isa(), 32, {64, 80, 96, 128, 256},
               {{8, 4, GqaSelection::per_head},
                {8, 2, GqaSelection::per_head},
                {8, 1, GqaSelection::per_head},
                {3, 1, GqaSelection::shared}},
               200, t);
  EXPECT_GE(t.exact, 9 * (t.exact + t.near_tie) / 10) << "exact " << t.exact << " near-tie " << t.near_tie;
}

// Block sizes that are not multiples of the vector width, smaller than it, and large;
// every layout; head_dim not a multiple of any lane count; peaky scores (large q).
TEST_P(SparqDecode, MatchesReferenceOverBlockSizesAndLayouts) {
  Tally t;
  std::uint32_t seed = 500;
  for (std::size_t B : {1, 5, 13, 16, 17, 256})
    for (int layout_kind = 0; layout_kind < 6; ++layout_kind)
      for (std::size_t d : {72, 128}) {
        const KeyLayout layouts[] = {KeyLayout::both,  KeyLayout::s_major, KeyLayout::d_major,
                                     KeyLayout::fused, KeyLayout::both,    KeyLayout::fused};
        const CacheConfig cfg{.layers = 1,
                              .kv_heads = 2,
                              .head_dim = d,
                              .dtype = DType::bf16,
                              .block_tokens = B,
                              .layouts = layouts[layout_kind],
                              .d_major_type = layout_kind >= 4 ? DMajorType::int8 : DMajorType::same};
        auto f = test::make_cache(cfg, {1, 2 * B + 3, 600}, seed);
        for (GqaSelection gqa : {GqaSelection::shared, GqaSelection::per_head}) {
          SparQ m = SparQ::for_ratio(8);
          m.gqa = gqa;
          m.reallocation = true;
          for (SeqId s : f.seqs)
            expect_matches_reference(*f.cache, s, 8, m, isa(), seed++, t, 0, ~std::size_t{0}, 4.0f);
        }
        if (HasFailure()) return;
      }
}

TEST_P(SparqDecode, LongSequence) {
  Tally t;
  const std::size_t S = 70000;
  std::uint32_t seed = 7;
  // One combination per ISA (the reference is slow at this length): the fast layout with
  // shared selection on the best ISA, the slow layouts and per-head selection on the others.
  const int which = int(GetParam());
  const DType dtype = which == 1 ? DType::f16 : DType::bf16;
  const KeyLayout layout = which == 0 ? KeyLayout::both : which == 1 ? KeyLayout::s_major : KeyLayout::d_major;
  const CacheConfig cfg{
      .layers = 1, .kv_heads = 2, .head_dim = 128, .dtype = dtype, .block_tokens = 256, .layouts = layout};
  auto f = test::make_cache(cfg, {S}, seed++);
  SparQ m = SparQ::for_ratio(8);
  m.gqa = which == 0 ? GqaSelection::shared : GqaSelection::per_head;
  m.reallocation = which == 2;
  expect_matches_reference(*f.cache, f.seqs[0], 8, m, isa(), seed++, t, 0, ~std::size_t{0}, 2.0f);
}

TEST_P(SparqDecode, BatchOfDifferentLengthsAndKvHeadRange) {
  const CacheConfig cfg{.layers = 1, .kv_heads = 4, .head_dim = 64, .dtype = DType::f16, .block_tokens = 64};
  const std::vector<std::size_t> lengths = {1, 3000, 65, 129, 2048};
  auto f = test::make_cache(cfg, lengths, 11);
  const std::size_t g = 2, kv_begin = 1, kv_end = 3, n_q = (kv_end - kv_begin) * g, d = 64;
  for (GqaSelection gqa : {GqaSelection::shared, GqaSelection::per_head}) {
    SparQ m = SparQ::for_ratio(4);
    m.gqa = gqa;
    std::vector<std::vector<float>> q, out, alpha;
    std::vector<std::vector<std::vector<std::uint32_t>>> sel(lengths.size());
    std::vector<DecodeItem> batch;
    for (std::size_t i = 0; i < lengths.size(); ++i) {
      q.push_back(test::normal_floats(n_q * d, 20 + std::uint32_t(i)));
      out.emplace_back(n_q * d);
      alpha.emplace_back(n_q);
    }
    for (std::size_t i = 0; i < lengths.size(); ++i)
      batch.push_back({.seq = f.seqs[i], .q = q[i], .out = out[i], .alpha = alpha[i], .selected = &sel[i]});
    decode(*f.cache, 0, m, batch, {.kv_head_begin = kv_begin, .kv_head_end = kv_end});
    for (std::size_t i = 0; i < lengths.size(); ++i) {
      const LayerView v = f.cache->view(f.seqs[i], 0);
      const auto ref = reference::sparq_decode(v, q[i], kv_begin, kv_end, g, 0.125, m.resolve(d, lengths[i], g));
      for (std::size_t h = 0; h < n_q; ++h) {
        ASSERT_EQ(sel[i][h], ref.selected[h]) << "item " << i << " head " << h << " isa=" << isa();
        EXPECT_LE(test::rel_error(std::span(out[i]).subspan(h * d, d), std::span(ref.out).subspan(h * d, d)), kTol)
            << "item " << i << " S=" << lengths[i] << " head " << h << " isa=" << isa();
        EXPECT_NEAR(alpha[i][h], ref.alpha[h], kTol) << "item " << i << " isa=" << isa();
      }
    }
  }
}

TEST_P(SparqDecode, OneAndTwoThreadsAreBitIdentical) {
  const CacheConfig cfg{.layers = 1, .kv_heads = 2, .head_dim = 128, .dtype = DType::bf16, .block_tokens = 256};
  auto f = test::make_cache(cfg, {20000, 5000}, 5);
  const auto q0 = test::normal_floats(8 * 128, 6), q1 = test::normal_floats(8 * 128, 7);
  for (GqaSelection gqa : {GqaSelection::shared, GqaSelection::per_head}) {
    SparQ m = SparQ::for_ratio(8);
    m.gqa = gqa;
    m.reallocation = true;
    auto run = [&](tbb::task_arena* arena) {
      std::vector<float> out(2 * 8 * 128), lse(16), alpha(16);
      std::vector<std::vector<std::uint32_t>> s0, s1;
      const DecodeItem batch[] = {{.seq = f.seqs[0],
                                   .q = q0,
                                   .out = std::span(out).first(1024),
                                   .lse = std::span(lse).first(8),
                                   .alpha = std::span(alpha).first(8),
                                   .selected = &s0},
                                  {.seq = f.seqs[1],
                                   .q = q1,
                                   .out = std::span(out).last(1024),
                                   .lse = std::span(lse).last(8),
                                   .alpha = std::span(alpha).last(8),
                                   .selected = &s1}};
      decode(*f.cache, 0, m, batch, {.arena = arena});
      out.insert(out.end(), lse.begin(), lse.end());
      out.insert(out.end(), alpha.begin(), alpha.end());
      for (const auto& s : {s0, s1})
        for (const auto& l : s)
          for (std::uint32_t j : l) out.push_back(float(j));
      return out;
    };
    tbb::task_arena one(1), two(2);
    const auto a = run(&one), b = run(&two), c = run(nullptr);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << "1 vs 2 threads, isa=" << isa();
    ASSERT_EQ(a.size(), c.size());
    EXPECT_EQ(0, std::memcmp(a.data(), c.data(), a.size() * sizeof(float))) << "1 thread vs default, isa=" << isa();
  }
}

TEST_P(SparqDecode, ProfileCountsLinesTouched) {
  // d = 128 bf16, B = 64: a d-major row of a block is 128 bytes (2 lines), a K or V row
  // 256 bytes (4 lines). r = 16, k = 1024/16 = 64, reallocation on.
  const CacheConfig cfg{.layers = 1, .kv_heads = 2, .head_dim = 128, .dtype = DType::bf16, .block_tokens = 64};
  const std::size_t S = 1024;
  auto f = test::make_cache(cfg, {S}, 8);
  const auto q = test::normal_floats(8 * 128, 9);
  std::vector<float> out(8 * 128);
  const DecodeItem item{.seq = f.seqs[0], .q = q, .out = out};
  SparQ m = SparQ::for_ratio(8);
  m.reallocation = true;
  Profile p;
  tbb::task_arena two(2);
  decode(*f.cache, 0, m, {&item, 1}, {.profile = &p, .arena = &two});
  EXPECT_EQ(p[Phase::stage1].bytes_read, 2u * S * 16 * 2);     // per KV head S·r·b
  EXPECT_EQ(p[Phase::stage2].bytes_read, 2u * 64 * 2 * 256);   // per KV head 2·k·d·b
  EXPECT_EQ(p[Phase::reallocation].bytes_read, 2u * 4 * 128);  // per KV head 4·d
  EXPECT_EQ(p[Phase::topk].bytes_read, 0u);
  EXPECT_EQ(p[Phase::stage1].flops, 8u * S * (2 * 16 + 4));
  EXPECT_EQ(p[Phase::stage2].flops, 8u * 64 * (4 * 128 + 4));
  for (Phase ph : {Phase::stage1, Phase::topk, Phase::stage2, Phase::reallocation}) {
    EXPECT_EQ(p[ph].calls, 1u) << "phase " << int(ph);
    EXPECT_GT(p[ph].seconds, 0.0) << "phase " << int(ph);
  }
  EXPECT_EQ(p[Phase::dense].calls, 0u);
  EXPECT_EQ(p.isa, GetParam());
  // Without a profile nothing is measured and the output is the same.
  std::vector<float> out2(8 * 128);
  const DecodeItem item2{.seq = f.seqs[0], .q = q, .out = out2};
  decode(*f.cache, 0, m, {&item2, 1}, {.arena = &two});
  EXPECT_EQ(0, std::memcmp(out.data(), out2.data(), out.size() * sizeof(float)));
}

TEST_P(SparqDecode, ZeroQueryGivesUniformScores) {
  const CacheConfig cfg{.layers = 1, .kv_heads = 1, .head_dim = 64, .dtype = DType::f32, .block_tokens = 16};
  auto f = test::make_cache(cfg, {100}, 3);
  std::vector<float> q(2 * 64, 0.0f), out(2 * 64), alpha(2);
  std::vector<std::vector<std::uint32_t>> sel;
  SparQ m;
  m.k = 10;
  m.window = 2;
  m.reallocation = true;
  const DecodeItem item{.seq = f.seqs[0], .q = q, .out = out, .alpha = alpha, .selected = &sel};
  decode(*f.cache, 0, m, {&item, 1});
  // Uniform ŝ: ties everywhere, so the lowest 8 positions plus the window of 2.
  const std::vector<std::uint32_t> want = {0, 1, 2, 3, 4, 5, 6, 7, 98, 99};
  EXPECT_EQ(sel[0], want) << "isa=" << isa();
  EXPECT_NEAR(alpha[0], 0.1f, 1e-6) << "isa=" << isa();
  const auto ref = reference::sparq_decode(f.cache->view(f.seqs[0], 0), q, 0, 1, 2, 0.125, m.resolve(64, 100, 2));
  EXPECT_LE(test::rel_error(std::span(out).first(64), std::span(ref.out).first(64)), kTol) << "isa=" << isa();
}

TEST_P(SparqDecode, AllLogitsFarBelowZeroWithATail) {
  // Keys pushed by -32·sign(q_i) along each head's r selected components, so every
  // approximate logit is some 150 octaves below zero, where 2^z underflows: stage 1 must
  // shift by the true max of the scores. S = 2501 leaves a partial vector at the end of
  // the last block on every ISA, and its zero-padded lanes must not count towards that
  // max. (Only the r components move, so the exact logits stay near -60, where f32
  // still resolves them to the 1e-5 the comparison asks.)
  constexpr std::size_t kv = 2, d = 64, S = 2501;
  KVCache cache(CacheConfig{.kv_heads = kv, .head_dim = d, .dtype = DType::f32, .block_tokens = 64});
  const SeqId seq = cache.add_sequence();
  constexpr std::uint32_t kQuerySeed = 41;  // the q that expect_matches_reference draws
  const auto q = test::normal_floats(kv * d, kQuerySeed);
  const SparQ m = SparQ::for_ratio(8);
  const std::size_t r = m.resolve(d, S, 1).r;
  auto k = test::normal_floats(S * kv * d, 42);
  const auto v = test::normal_floats(S * kv * d, 43);
  for (std::size_t h = 0; h < kv; ++h) {
    std::vector<std::size_t> order(d);
    for (std::size_t i = 0; i < d; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return std::abs(q[h * d + a]) > std::abs(q[h * d + b]); });
    for (std::size_t u = 0; u < r; ++u) {
      const std::size_t i = order[u];
      for (std::size_t j = 0; j < S; ++j) k[(j * kv + h) * d + i] += q[h * d + i] > 0.0f ? -32.0f : 32.0f;
    }
  }
  cache.append(seq, 0, k, v, S);
  Tally tally;
  for (const bool realloc : {false, true}) {
    SparQ each = m;
    each.reallocation = realloc;
    expect_matches_reference(cache, seq, kv, each, isa(), kQuerySeed, tally);
  }
  EXPECT_GE(tally.exact, 1u) << "near-tie " << tally.near_tie;
}

SPARQ_INSTANTIATE_FOR_EACH_ISA(SparqDecode);

}  // namespace
}  // namespace sparq
