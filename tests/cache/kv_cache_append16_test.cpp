// Appends from f16 and bf16 bit patterns (sparq::Rows): for every key layout, cache dtype
// and d-major copy type, the stored bits equal those of an f32 append of the same
// (exactly widened) values; a source of the cache's own dtype is copied bit for bit; bad
// input is refused with the f32 path's errors and leaves the cache unchanged.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "cache/element.hpp"
#include "cache_test_util.hpp"
#include "sparq/error.hpp"

namespace sparq {
namespace {

using test::random_floats;
using test::storage_difference;

constexpr std::size_t H = 2, d = 8, B = 4;

// x rounded to `t` (f16 or bf16), as bit patterns.
std::vector<std::uint16_t> narrow(const std::vector<float>& x, DType t) {
  std::vector<std::uint16_t> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    out[i] = t == DType::f16 ? element::f32_to_f16(x[i]) : element::f32_to_bf16(x[i]);
  return out;
}

std::vector<float> widen(const std::vector<std::uint16_t>& x, DType t) {
  std::vector<float> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    out[i] = t == DType::f16 ? element::f16_to_f32(x[i]) : element::bf16_to_f32(x[i]);
  return out;
}

struct Case {
  KeyLayout layout;
  DMajorType d_major;
  DType cache;
  DType source;
  [[nodiscard]] std::string name() const {
    return std::string(to_string(layout)) + "/" + std::string(to_string(d_major)) +
           " cache=" + std::string(to_string(cache)) + " source=" + std::string(to_string(source));
  }
};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (KeyLayout l : {KeyLayout::both, KeyLayout::s_major, KeyLayout::d_major, KeyLayout::fused})
    for (DMajorType m : {DMajorType::same, DMajorType::int8}) {
      if (m == DMajorType::int8 && !(l == KeyLayout::both || l == KeyLayout::fused)) continue;
      for (DType c : {DType::f32, DType::f16, DType::bf16})
        for (DType s : {DType::f16, DType::bf16}) cases.push_back({l, m, c, s});
    }
  return cases;
}

CacheConfig config(const Case& c, std::size_t layers = 2) {
  return {.layers = layers,
          .kv_heads = H,
          .head_dim = d,
          .dtype = c.cache,
          .block_tokens = B,
          .capacity_tokens = 64,
          .layouts = c.layout,
          .d_major_type = c.d_major};
}

TEST(CacheAppend16Test, StoresTheBitsOfAnF32AppendOfTheSameValuesInEveryConfiguration) {
  for (const Case& c : all_cases()) {
    KVCache half(config(c)), f32(config(c));
    const SeqId a = half.add_sequence(), b = f32.add_sequence();
    // 3 tokens (a partial block), then 6 (fills it and spans two more), at scales that
    // round differently in f16 and bf16; then a fork's copy-on-write append.
    std::uint32_t seed = 1;
    for (std::size_t n : {3, 6}) {
      const auto kbits = narrow(random_floats(n * H * d, seed++, 3.0f), c.source);
      const auto vbits = narrow(random_floats(n * H * d, seed++, 0.01f), c.source);
      half.append(a, 1, Rows(kbits, c.source), Rows(vbits, c.source), n);
      f32.append(b, 1, widen(kbits, c.source), widen(vbits, c.source), n);
    }
    const SeqId af = half.fork(a), bf = f32.fork(b);
    const auto kbits = narrow(random_floats(2 * H * d, seed++, 100.0f), c.source);
    half.append(af, 1, Rows(kbits, c.source), Rows(kbits, c.source), 2);
    f32.append(bf, 1, widen(kbits, c.source), widen(kbits, c.source), 2);
    EXPECT_EQ(half.length(a, 1), 9u) << c.name();
    EXPECT_EQ(storage_difference(half, a, f32, b, 1), "") << c.name();
    EXPECT_EQ(storage_difference(half, af, f32, bf, 1), "") << c.name();
  }
}

TEST(CacheAppend16Test, AllLayersAndMixedSourceTypesMatchTheF32Path) {
  const Case c{KeyLayout::both, DMajorType::int8, DType::bf16, DType::f16};
  KVCache half(config(c)), f32(config(c));
  const SeqId a = half.add_sequence(), b = f32.add_sequence();
  const auto k16 = narrow(random_floats(2 * 5 * H * d, 7), DType::f16);
  const auto vb16 = narrow(random_floats(2 * 5 * H * d, 8), DType::bf16);
  half.append_all_layers(a, Rows::f16(k16), Rows::bf16(vb16), 5);
  f32.append_all_layers(b, widen(k16, DType::f16), widen(vb16, DType::bf16), 5);
  for (std::size_t l = 0; l < 2; ++l) EXPECT_EQ(storage_difference(half, a, f32, b, l), "") << "layer " << l;
}

TEST(CacheAppend16Test, SameTypeIsCopiedBitForBit) {
  for (DType t : {DType::f16, DType::bf16}) {
    // Bit patterns an f32 round trip would keep too, but here read back raw: a negative
    // zero, the smallest subnormal, the largest finite value, and ordinary numbers.
    const std::vector<std::uint16_t> bits =
        t == DType::f16 ? std::vector<std::uint16_t>{0x8000, 0x0001, 0x7bff, 0x3c00, 0xc0a0, 0x03ff, 0x1234, 0xabcd}
                        : std::vector<std::uint16_t>{0x8000, 0x0001, 0x7f7f, 0x3f80, 0xc0a0, 0x007f, 0x1234, 0xabcd};
    std::vector<std::uint16_t> k;
    for (std::size_t h = 0; h < H; ++h) k.insert(k.end(), bits.begin(), bits.end());
    KVCache cache(config({KeyLayout::both, DMajorType::same, t, t}));
    const SeqId s = cache.add_sequence();
    cache.append(s, 0, Rows(k, t), Rows(k, t), 1);
    const auto lock = cache.lock_for_read(s);
    const LayerView v = cache.view(s, 0);
    for (std::size_t h = 0; h < H; ++h) {
      EXPECT_EQ(std::memcmp(v.key_row(h, 0), bits.data(), 2 * d), 0) << to_string(t);
      EXPECT_EQ(std::memcmp(v.value_row(h, 0), bits.data(), 2 * d), 0) << to_string(t);
      for (std::size_t i = 0; i < d; ++i) EXPECT_EQ(std::memcmp(v.key_d_major(h, 0, i), &bits[i], 2), 0) << i;
    }
  }
}

// One token of H * d elements, all `x` (as bits).
std::vector<std::uint16_t> filled(std::uint16_t x) {
  return std::vector<std::uint16_t>(H * d, x);
}

std::uint16_t stored_key_bits(const KVCache& cache, SeqId s) {
  const auto lock = cache.lock_for_read(s);
  std::uint16_t out;
  std::memcpy(&out, cache.view(s, 0).key_row(0, cache.length(s, 0) - 1), 2);
  return out;
}

TEST(CacheAppend16Test, ConvertsBetween16BitTypesRoundingToNearestEven) {
  KVCache to_bf16(config({KeyLayout::both, DMajorType::same, DType::bf16, DType::f16}));
  const SeqId s = to_bf16.add_sequence();
  // f16 1 + 2^-8 lies halfway between bf16 1 and 1 + 2^-7: ties go to the even 1.0; 1 +
  // 3 * 2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: to the even 1 + 2^-6.
  for (const auto& [f16, bf16] : {std::pair<std::uint16_t, std::uint16_t>{0x3c04, 0x3f80},
                                  {0x3c0c, 0x3f82},
                                  {0x3c05, 0x3f81},
                                  {0x7bff, 0x4780},
                                  {0x0001, 0x3380}}) {
    to_bf16.append(s, 0, Rows::f16(filled(f16)), Rows::f16(filled(f16)), 1);
    EXPECT_EQ(stored_key_bits(to_bf16, s), bf16) << std::hex << f16;
  }
  KVCache to_f16(config({KeyLayout::both, DMajorType::same, DType::f16, DType::bf16}));
  const SeqId t = to_f16.add_sequence();
  // bf16 2^-25 is half of f16's smallest subnormal: the tie goes to the even +0; 1.5,
  // 59904 (0x476a) and -1 are exact in f16.
  for (const auto& [bf16, f16] : {std::pair<std::uint16_t, std::uint16_t>{0x3300, 0x0000},
                                  {0x3fc0, 0x3e00},
                                  {0x476a, 0x7b50},
                                  {0xbf80, 0xbc00}}) {
    to_f16.append(t, 0, Rows::bf16(filled(bf16)), Rows::bf16(filled(bf16)), 1);
    EXPECT_EQ(stored_key_bits(to_f16, t), f16) << std::hex << bf16;
  }
}

template <class F>
void expect_refused(F f, ErrorCode code, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no error; expected " << parts.front();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(CacheAppend16Test, BadInputIsRefusedAndChangesNothing) {
  KVCache cache(config({KeyLayout::both, DMajorType::int8, DType::f16, DType::bf16}));
  const SeqId s = cache.add_sequence();
  const auto ok = narrow(random_floats(3 * H * d, 5), DType::bf16);
  cache.append(s, 0, Rows::bf16(ok), Rows::bf16(ok), 3);
  const test::LayerDump before = test::dump_layer(cache, s, 0);
  const std::size_t in_use = cache.memory_usage().blocks_in_use;

  auto bad = ok;
  bad[1 * H * d + 1 * d + 5] = 0x7f80;  // bf16 +inf at token 1, head 1, component 5
  expect_refused([&] { cache.append(s, 0, Rows::bf16(bad), Rows::bf16(ok), 3); }, ErrorCode::non_finite_input,
                 {"keys[token 1, head 1, component 5] is infinite"});
  bad[1 * H * d + 1 * d + 5] = 0x7fc0;  // NaN
  expect_refused([&] { cache.append(s, 0, Rows::bf16(ok), Rows::bf16(bad), 3); }, ErrorCode::non_finite_input,
                 {"values[token 1, head 1, component 5] is NaN"});
  bad[1 * H * d + 1 * d + 5] = 0x47c8;  // bf16 102400: finite, but beyond f16 storage
  expect_refused([&] { cache.append(s, 0, Rows::bf16(bad), Rows::bf16(ok), 3); }, ErrorCode::non_finite_input,
                 {"= 102400 is beyond the range of f16 storage", "65504"});
  auto f16_inf = filled(0x7c00);
  expect_refused([&] { cache.append(s, 0, Rows::f16(f16_inf), Rows::f16(f16_inf), 1); }, ErrorCode::non_finite_input,
                 {"keys[token 0, head 0, component 0] is infinite"});
  expect_refused([&] { cache.append(s, 0, Rows::bf16(std::span(ok).first(7)), Rows::bf16(ok), 3); },
                 ErrorCode::shape_mismatch, {"keys has 7 bf16 elements, expected n_tokens*kv_heads*head_dim = 48"});
  expect_refused([&] { cache.append(s, 2, Rows::bf16(ok), Rows::bf16(ok), 3); }, ErrorCode::invalid_argument,
                 {"layer=2"});
  expect_refused([&] { cache.append_all_layers(s, Rows::bf16(ok), Rows::bf16(ok), 3); }, ErrorCode::shape_mismatch,
                 {"keys has 48 bf16 elements, expected layers*n_tokens*kv_heads*head_dim = 96"});
  expect_refused([&] { (void)Rows(std::span(ok), DType::f32); }, ErrorCode::invalid_argument, {"dtype=f32"});

  EXPECT_EQ(cache.length(s, 0), 3u);
  EXPECT_EQ(cache.memory_usage().blocks_in_use, in_use);
  const test::LayerDump after = test::dump_layer(cache, s, 0);
  EXPECT_EQ(after.keys, before.keys);
  EXPECT_EQ(after.values, before.values);
}

}  // namespace
}  // namespace sparq
