// Fuzz target of the KV cache API: the bytes choose a tiny cache (dtype, layouts, block
// size, heads, head_dim 1..16, layers, a pool of a few blocks) and then a sequence of
// operations on it: add, append (one layer or all), fork, truncate, remove, decode
// batches (dense or SparQ with any r, k, window), and calls that must be refused
// (wrong sizes, a wrapping n_tokens, a bad layer, unknown sequences). Values include
// NaN, inf and finite values the storage type cannot hold. A model of what each
// sequence should hold (the f32 inputs it was given) checks, after every operation:
//  - a call succeeds or fails exactly as the contract says, and a failed one changes
//    nothing (a refused append for lack of blocks is allowed, and must change nothing);
//  - every layer's length is what was appended; the distinct blocks the sequences
//    reference are the blocks in use;
// and at checkpoints and at the end: every stored key (both copies) and value is the
// rounding of its input, the value mean matches, a decode equals a replay of the same
// batch on a private cache built from the model, and once every sequence is removed no
// block is in use and memory is the pool's own (the soak's invariants, single-threaded).
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "cache/element.hpp"
#include "fuzz_check.hpp"
#include "sparq/decode.hpp"
#include "sparq/error.hpp"
#include "sparq/kv_cache.hpp"

namespace sparq::fuzz {

class FuzzBytes {
 public:
  FuzzBytes(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
  [[nodiscard]] bool done() const noexcept { return at_ >= n_; }
  std::uint8_t u8() noexcept { return at_ < n_ ? d_[at_++] : 0; }
  std::size_t below(std::size_t n) noexcept { return n ? u8() % n : 0; }

 private:
  const std::uint8_t* d_;
  std::size_t n_, at_ = 0;
};

class CacheOpsFuzz {
 public:
  explicit CacheOpsFuzz(FuzzBytes& in) : in_(in) {
    static constexpr std::size_t kBlock[] = {1, 2, 3, 4, 8}, kDim[] = {1, 2, 4, 8, 16};
    cfg_.dtype = DType(in.below(3));
    cfg_.layouts = KeyLayout(in.below(3));
    cfg_.block_tokens = kBlock[in.below(5)];
    cfg_.kv_heads = 1 + in.below(2);
    cfg_.head_dim = kDim[in.below(5)];
    cfg_.layers = 1 + in.below(3);
    cfg_.capacity_tokens = 1 + in.below(12);
    q_heads_ = cfg_.kv_heads * (1 + in.below(3));
    cache_ = std::make_unique<KVCache>(cfg_);
  }

  void run() {
    for (int ops = 0; ops < 64 && !in_.done(); ++ops) {
      switch (in_.below(9)) {
        case 0:
          add();
          break;
        case 1:
          append(false);
          break;
        case 2:
          append(true);
          break;
        case 3:
          fork();
          break;
        case 4:
          truncate();
          break;
        case 5:
          remove();
          break;
        case 6:
          decode_batch();
          break;
        case 7:
          refused_calls();
          break;
        default:
          check_contents();
          break;
      }
      check_lengths_and_blocks();
    }
    check_contents();
    drain();
  }

 private:
  struct Seq {
    SeqId id;
    std::vector<std::vector<float>> k, v;  // per layer: [S][kv_heads][d] inputs
  };
  [[nodiscard]] std::size_t row() const { return cfg_.kv_heads * cfg_.head_dim; }
  [[nodiscard]] std::size_t len(const Seq& s, std::size_t l) const { return s.k[l].size() / row(); }
  Seq* pick() { return seqs_.empty() ? nullptr : &seqs_[in_.below(seqs_.size())]; }

  // The storage limit of the contract (kv_cache.hpp): NaN, inf, and |x| >= 65520 in
  // f16 or >= 3.3961775e38 in bf16 are refused.
  [[nodiscard]] bool storable(float x) const {
    const float limit = cfg_.dtype == DType::f16    ? 65520.0f
                        : cfg_.dtype == DType::bf16 ? std::bit_cast<float>(0x7f7f8000u)
                                                    : std::numeric_limits<float>::infinity();
    return std::fabs(x) < limit;
  }

  // Whether any |x| >= limit.
  static bool extreme(const std::vector<float>& x, float limit) {
    for (float v : x)
      if (std::fabs(v) >= limit) return true;
    return false;
  }

  std::vector<float> values(std::size_t n) {
    static constexpr float kOdd[] = {0.0f,
                                     -0.0f,
                                     1e-40f,
                                     65504.0f,
                                     65519.0f,
                                     65520.0f,
                                     70000.f,
                                     3.38e38f,
                                     3.4e38f,
                                     std::numeric_limits<float>::max(),
                                     1e30f,
                                     -7.0f,
                                     std::numeric_limits<float>::infinity(),
                                     -std::numeric_limits<float>::infinity(),
                                     std::numeric_limits<float>::quiet_NaN()};
    std::mt19937 rng(in_.u8());
    std::normal_distribution<float> normal(0.0f, 2.0f);
    std::vector<float> x(n);
    for (float& f : x) f = normal(rng);
    if (n > 0 && in_.below(4) == 0) x[in_.below(n)] = kOdd[in_.below(std::size(kOdd))];
    return x;
  }

  template <class F>
  std::optional<ErrorCode> attempt(F&& f) {
    try {
      f();
      return std::nullopt;
    } catch (const Error& e) {
      return e.code();
    }
  }
  static const char* name(std::optional<ErrorCode> c) {
    return c ? to_string(*c).data() : "success";  // to_string views a string literal
  }

  void add() {
    if (seqs_.size() >= 8) return;
    Seq s{cache_->add_sequence(), std::vector<std::vector<float>>(cfg_.layers),
          std::vector<std::vector<float>>(cfg_.layers)};
    seqs_.push_back(std::move(s));
  }

  void append(bool all_layers) {
    Seq* s = pick();
    if (!s) return;
    const std::size_t n = in_.below(5), layer = in_.below(cfg_.layers);
    const std::size_t layers = all_layers ? cfg_.layers : 1;
    const std::vector<float> k = values(layers * n * row()), v = values(layers * n * row());
    bool ok_values = true;
    for (float x : k) ok_values &= storable(x);
    for (float x : v) ok_values &= storable(x);
    const std::size_t in_use = cache_->memory_usage().blocks_in_use;
    const auto got = attempt(
        [&] { all_layers ? cache_->append_all_layers(s->id, k, v, n) : cache_->append(s->id, layer, k, v, n); });
    if (!ok_values) {
      SPARQ_FUZZ_CHECK(got == ErrorCode::non_finite_input, "append of unstorable values gave %s", name(got));
    } else if (got) {
      SPARQ_FUZZ_CHECK(*got == ErrorCode::capacity_exhausted, "append gave %s", name(got));
    }
    if (got) {
      SPARQ_FUZZ_CHECK(cache_->memory_usage().blocks_in_use == in_use, "a failed append took blocks");
      return;  // lengths (checked after every op) must be unchanged
    }
    for (std::size_t l = 0; l < layers; ++l) {
      const std::size_t dst = all_layers ? l : layer, at = l * n * row();
      s->k[dst].insert(s->k[dst].end(), k.begin() + std::ptrdiff_t(at), k.begin() + std::ptrdiff_t(at + n * row()));
      s->v[dst].insert(s->v[dst].end(), v.begin() + std::ptrdiff_t(at), v.begin() + std::ptrdiff_t(at + n * row()));
    }
  }

  void fork() {
    Seq* s = pick();
    if (!s || seqs_.size() >= 8) return;
    Seq copy = *s;
    copy.id = cache_->fork(s->id);
    seqs_.push_back(std::move(copy));
  }

  void truncate() {
    Seq* s = pick();
    if (!s) return;
    std::size_t shortest = ~std::size_t{0};
    for (std::size_t l = 0; l < cfg_.layers; ++l) shortest = std::min(shortest, len(*s, l));
    const std::size_t n = in_.below(shortest + 2);
    const auto got = attempt([&] { cache_->truncate(s->id, n); });
    if (n > shortest) {
      SPARQ_FUZZ_CHECK(got == ErrorCode::invalid_argument, "truncate beyond the shortest layer gave %s", name(got));
      return;
    }
    SPARQ_FUZZ_CHECK(!got, "truncate gave %s", name(got));
    for (std::size_t l = 0; l < cfg_.layers; ++l) {
      s->k[l].resize(s->k[l].size() - n * row());
      s->v[l].resize(s->v[l].size() - n * row());
    }
  }

  void remove() {
    if (seqs_.empty()) return;
    const std::size_t i = in_.below(seqs_.size());
    cache_->remove_sequence(seqs_[i].id);
    seqs_.erase(seqs_.begin() + std::ptrdiff_t(i));
  }

  Method method() {
    if (in_.below(3) == 0) return Dense{};
    SparQ m;
    m.r = in_.below(cfg_.head_dim + 2);  // 0 and d + 1 are invalid
    m.k = in_.below(12);                 // 0 is invalid
    if (in_.below(2)) m.window = in_.below(8);
    // Off: with reallocation the output depends on the value mean, whose double sum may
    // round differently after a truncate than in the replay's single append (checked
    // with a tolerance in check_contents instead).
    m.reallocation = false;
    m.gqa = in_.below(2) ? GqaSelection::per_head : GqaSelection::shared;
    return m;
  }

  void decode_batch() {
    if (seqs_.empty()) return;
    const std::size_t layer = in_.below(cfg_.layers), d = cfg_.head_dim;
    const Method m = method();
    std::vector<const Seq*> batch;
    for (const Seq& s : seqs_)
      if (in_.below(2)) batch.push_back(&s);
    if (batch.empty()) return;
    // What the contract says the call gives: items are checked in order.
    std::optional<ErrorCode> want;
    for (const Seq* s : batch) {
      if (len(*s, layer) == 0) {
        want = ErrorCode::empty_sequence;
        break;
      }
      if (const SparQ* sq = std::get_if<SparQ>(&m); sq && (*sq->r == 0 || *sq->r > d || *sq->k == 0)) {
        want = ErrorCode::invalid_argument;
        break;
      }
    }
    set_queries(values(q_heads_ * d));
    std::vector<std::vector<float>> outs(batch.size(), std::vector<float>(q_heads_ * d));
    std::vector<DecodeItem> items;
    for (std::size_t i = 0; i < batch.size(); ++i) items.push_back({.seq = batch[i]->id, .q = q_, .out = outs[i]});
    const auto got = attempt([&] { decode(*cache_, layer, m, items); });
    // Finite inputs near f32's limit may overflow the attention arithmetic; decode then
    // reports non_finite_input rather than return NaN (decode.hpp). Allowed only then.
    const bool may_overflow = !want && (extreme(q_, 1e18f) || [&] {
      for (const Seq* s : batch)
        if (extreme(s->k[layer], 1e18f) || extreme(s->v[layer], 1e18f)) return true;
      return false;
    }());
    if (may_overflow && got == ErrorCode::non_finite_input) return;
    SPARQ_FUZZ_CHECK(got == want, "decode gave %s, expected %s", name(got), name(want));
    if (got) return;
    // The same batch on a private cache built from the model, bit for bit.
    CacheConfig own = cfg_;
    own.layers = 1;
    own.capacity_tokens = 1;
    for (const Seq* s : batch) own.capacity_tokens += len(*s, layer) + cfg_.block_tokens;
    own.capacity_tokens *= batch.size();
    KVCache replay(own);
    std::vector<std::vector<float>> routs(batch.size(), std::vector<float>(q_heads_ * d));
    std::vector<DecodeItem> ritems;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const SeqId id = replay.add_sequence();
      replay.append(id, 0, batch[i]->k[layer], batch[i]->v[layer], len(*batch[i], layer));
      ritems.push_back({.seq = id, .q = q_, .out = routs[i]});
    }
    decode(replay, 0, m, ritems);
    for (std::size_t i = 0; i < batch.size(); ++i)
      SPARQ_FUZZ_CHECK(std::memcmp(outs[i].data(), routs[i].data(), outs[i].size() * sizeof(float)) == 0,
                       "decode of item %zu differs from its replay on a private cache", i);
  }
  // Queries must be finite (decode refuses others, a rule of decode, not of the cache).
  void set_queries(std::vector<float> q) {
    q_ = std::move(q);
    for (float& x : q_)
      if (!std::isfinite(x)) x = 1.0f;
  }

  void refused_calls() {
    const std::size_t r = row(), L = cfg_.layers;
    const std::vector<float> one = values(r);
    bool storable_one = true;
    for (float x : one) storable_one &= storable(x);
    if (!storable_one) return;
    Seq* s = pick();
    const SeqId gone = 1000000;  // never added
    std::optional<ErrorCode> got, want;
    switch (in_.below(7)) {
      case 0:
        if (!s) return;
        got = attempt([&] { cache_->append(s->id, 0, std::span(one).first(r - 1), one, 1); });
        want = ErrorCode::shape_mismatch;
        break;
      case 1:
        if (!s) return;
        // n_tokens * kv_heads * head_dim overflows (or at least exceeds the empty spans).
        got = attempt([&] { cache_->append(s->id, 0, {}, {}, std::size_t{1} << 62); });
        want = ErrorCode::shape_mismatch;
        break;
      case 2:
        if (!s) return;
        got = attempt([&] { cache_->append(s->id, L, one, one, 1); });
        want = ErrorCode::invalid_argument;
        break;
      case 3:
        got = attempt([&] { cache_->append(gone, 0, one, one, 1); });
        want = ErrorCode::unknown_sequence;
        break;
      case 4:
        if (!s) return;
        got = attempt([&] { cache_->append_all_layers(s->id, one, one, 1); });
        want = L == 1 ? std::nullopt : std::optional(ErrorCode::shape_mismatch);
        if (!got && L == 1) {  // a valid one-layer append after all
          s->k[0].insert(s->k[0].end(), one.begin(), one.end());
          s->v[0].insert(s->v[0].end(), one.begin(), one.end());
          return;
        }
        if (got == ErrorCode::capacity_exhausted && L == 1) return;
        break;
      case 5:
        got = attempt([&] { cache_->truncate(gone, 0); });
        want = ErrorCode::unknown_sequence;
        break;
      default:
        got = attempt([&] { (void)cache_->fork(gone); });
        want = ErrorCode::unknown_sequence;
        break;
    }
    SPARQ_FUZZ_CHECK(got == want, "a call that must fail gave %s, expected %s", name(got), name(want));
  }

  void check_lengths_and_blocks() {
    std::unordered_set<const std::byte*> referenced;
    for (const Seq& s : seqs_)
      for (std::size_t l = 0; l < cfg_.layers; ++l) {
        SPARQ_FUZZ_CHECK(cache_->length(s.id, l) == len(s, l), "sequence %llu layer %zu has %zu tokens, expected %zu",
                         static_cast<unsigned long long>(s.id), l, cache_->length(s.id, l), len(s, l));
        const LayerView v = cache_->view(s.id, l);
        for (std::size_t i = 0; i < v.blocks_per_head * v.kv_heads; ++i) referenced.insert(v.blocks[i]);
      }
    const MemoryUsage m = cache_->memory_usage();
    SPARQ_FUZZ_CHECK(referenced.size() == m.blocks_in_use, "sequences reference %zu blocks, %zu in use",
                     referenced.size(), m.blocks_in_use);
    SPARQ_FUZZ_CHECK(m.blocks_in_use <= m.blocks_allocated && m.blocks_allocated <= m.blocks_capacity &&
                         cache_->free_blocks() == m.blocks_capacity - m.blocks_in_use,
                     "block counts disagree");
    SPARQ_FUZZ_CHECK(cache_->sequences().size() == seqs_.size(), "the cache holds %zu sequences, expected %zu",
                     cache_->sequences().size(), seqs_.size());
  }

  [[nodiscard]] float stored(float x) const {
    std::byte b[4];
    element::store(b, 0, cfg_.dtype, x);
    return element::load(b, 0, cfg_.dtype);
  }
  static bool same(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

  void check_contents() {
    const std::size_t H = cfg_.kv_heads, d = cfg_.head_dim;
    std::vector<float> row_out(d);
    for (const Seq& s : seqs_)
      for (std::size_t l = 0; l < cfg_.layers; ++l) {
        const LayerView v = cache_->view(s.id, l);
        const std::size_t S = len(s, l);
        std::vector<double> sum(H * d, 0.0), mag(H * d, 0.0);
        for (std::size_t j = 0; j < S; ++j)
          for (std::size_t h = 0; h < H; ++h) {
            const float* k = s.k[l].data() + (j * H + h) * d;
            const float* val = s.v[l].data() + (j * H + h) * d;
            cache_->read_key(s.id, l, h, j, row_out);
            for (std::size_t i = 0; i < d; ++i) SPARQ_FUZZ_CHECK(same(row_out[i], stored(k[i])), "key differs");
            if (has_d_major(cfg_.layouts))
              for (std::size_t i = 0; i < d; ++i)
                SPARQ_FUZZ_CHECK(same(element::load(v.key_d_major(h, j, i), 0, cfg_.dtype), stored(k[i])),
                                 "d-major key copy differs");
            cache_->read_value(s.id, l, h, j, row_out);
            for (std::size_t i = 0; i < d; ++i) {
              SPARQ_FUZZ_CHECK(same(row_out[i], stored(val[i])), "value differs");
              sum[h * d + i] += stored(val[i]);
              mag[h * d + i] += std::fabs(stored(val[i]));
            }
          }
        for (std::size_t i = 0; S > 0 && i < H * d; ++i) {
          const double want = sum[i] / double(S), tol = 1e-6 * mag[i] / double(S) + 1e-37;
          SPARQ_FUZZ_CHECK(std::fabs(double(v.value_mean[i]) - want) <= tol, "value mean %g, expected %g",
                           double(v.value_mean[i]), want);
        }
      }
  }

  void drain() {
    for (const Seq& s : seqs_) cache_->remove_sequence(s.id);
    seqs_.clear();
    const MemoryUsage m = cache_->memory_usage();
    SPARQ_FUZZ_CHECK(m.blocks_in_use == 0 && cache_->sequences().empty(), "blocks in use after removing all");
    // The pool's own cost per allocated block, from a cache that allocated some and
    // holds no sequence.
    KVCache probe(cfg_);
    const SeqId id = probe.add_sequence();
    const std::vector<float> zeros(row(), 0.0f);
    probe.append(id, 0, zeros, zeros, 1);
    probe.remove_sequence(id);
    const MemoryUsage p = probe.memory_usage();
    SPARQ_FUZZ_CHECK(m.total() * p.blocks_allocated == p.total() * m.blocks_allocated,
                     "drained cache takes %zu bytes for %zu blocks; the pool's own cost is %zu for %zu", m.total(),
                     m.blocks_allocated, p.total(), p.blocks_allocated);
  }

  FuzzBytes& in_;
  CacheConfig cfg_;
  std::size_t q_heads_ = 1;
  std::unique_ptr<KVCache> cache_;
  std::vector<Seq> seqs_;
  std::vector<float> q_;
};

// Returns true (every input is a valid sequence of operations).
inline bool cache_ops_one(const std::uint8_t* data, std::size_t size) {
  FuzzBytes in(data, size);
  CacheOpsFuzz(in).run();
  return true;
}

}  // namespace sparq::fuzz
