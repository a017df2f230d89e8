// Sources followed: numpy/random/bit_generator.pyx (SeedSequence: hashmix, mix,
// mix_entropy, generate_state), numpy/random/src/pcg64/pcg64.h (pcg64_set_seed,
// pcg_setseq_128_xsl_rr_64_random_r, pcg64_next32), numpy/random/src/distributions/
// distributions.c (random_bounded_uint64_fill, buffered_bounded_lemire_uint32) and
// numpy/random/_common.pxd (next_double).
#include "eval/numpy_random.hpp"

#include <string>
#include <vector>

#include "sparq/error.hpp"

namespace sparq::eval {

namespace {

using u128 = NumpyU128;

constexpr std::uint32_t kInitA = 0x43b0d7e5, kMultA = 0x931e8875, kInitB = 0x8b51f9dd, kMultB = 0x58f38ded;
constexpr std::uint32_t kMixMultL = 0xca01f9dd, kMixMultR = 0x4973f715;
constexpr int kXShift = 16;
constexpr std::size_t kPoolSize = 4;

std::uint32_t hashmix(std::uint32_t value, std::uint32_t& hash_const) {
  value ^= hash_const;
  hash_const *= kMultA;
  value *= hash_const;
  value ^= value >> kXShift;
  return value;
}

std::uint32_t mix(std::uint32_t x, std::uint32_t y) {
  std::uint32_t result = kMixMultL * x - kMixMultR * y;
  result ^= result >> kXShift;
  return result;
}

// SeedSequence(entropy).generate_state(4, np.uint64), no spawn key.
void seed_words(std::span<const std::uint32_t> entropy, std::uint64_t (&out)[4]) {
  std::uint32_t pool[kPoolSize];
  std::uint32_t hash_const = kInitA;
  for (std::size_t i = 0; i < kPoolSize; ++i) pool[i] = hashmix(i < entropy.size() ? entropy[i] : 0u, hash_const);
  for (std::size_t src = 0; src < kPoolSize; ++src)
    for (std::size_t dst = 0; dst < kPoolSize; ++dst)
      if (src != dst) pool[dst] = mix(pool[dst], hashmix(pool[src], hash_const));
  for (std::size_t src = kPoolSize; src < entropy.size(); ++src)
    for (std::size_t dst = 0; dst < kPoolSize; ++dst) pool[dst] = mix(pool[dst], hashmix(entropy[src], hash_const));
  std::uint32_t words[8];
  std::uint32_t hb = kInitB;
  for (std::size_t i = 0; i < 8; ++i) {
    std::uint32_t v = pool[i % kPoolSize];
    v ^= hb;
    hb *= kMultB;
    v *= hb;
    v ^= v >> kXShift;
    words[i] = v;
  }
  for (std::size_t i = 0; i < 4; ++i) out[i] = std::uint64_t{words[2 * i]} | (std::uint64_t{words[2 * i + 1]} << 32);
}

constexpr u128 kPcgMult = (u128{2549297995355413924ULL} << 64) | u128{4865540595714422341ULL};

}  // namespace

NumpyRandom::NumpyRandom(std::span<const std::uint32_t> entropy) {
  if (entropy.empty()) throw Error(ErrorCode::invalid_argument, "NumpyRandom: give at least one entropy word");
  std::uint64_t w[4];
  seed_words(entropy, w);
  const u128 initstate = (u128{w[0]} << 64) | w[1], initseq = (u128{w[2]} << 64) | w[3];
  state_ = 0;
  inc_ = (initseq << 1) | 1;
  state_ = state_ * kPcgMult + inc_;
  state_ += initstate;
  state_ = state_ * kPcgMult + inc_;
}

std::uint64_t NumpyRandom::next_u64() {
  state_ = state_ * kPcgMult + inc_;
  const std::uint64_t x = std::uint64_t(state_ >> 64) ^ std::uint64_t(state_);
  const unsigned rot = unsigned(state_ >> 122);
  return (x >> rot) | (x << ((64u - rot) & 63u));
}

std::uint32_t NumpyRandom::next_u32() {
  if (has_u32_) {
    has_u32_ = false;
    return u32_;
  }
  const std::uint64_t next = next_u64();
  has_u32_ = true;
  u32_ = std::uint32_t(next >> 32);
  return std::uint32_t(next);
}

std::int64_t NumpyRandom::integers(std::int64_t low, std::int64_t high) {
  if (low >= high)
    throw Error(ErrorCode::invalid_argument,
                "NumpyRandom::integers: low=" + std::to_string(low) + " must be below high=" + std::to_string(high));
  const std::uint64_t rng = std::uint64_t(high - 1) - std::uint64_t(low);
  if (rng == 0) return low;  // NumPy draws nothing
  if (rng > 0xffffffffULL)
    throw Error(ErrorCode::unsupported, "NumpyRandom::integers: ranges beyond 2^32 are not implemented");
  if (rng == 0xffffffffULL) return low + std::int64_t(next_u32());
  const std::uint32_t rng_excl = std::uint32_t(rng) + 1;
  std::uint64_t m = std::uint64_t(next_u32()) * rng_excl;
  std::uint32_t leftover = std::uint32_t(m);
  if (leftover < rng_excl) {
    const std::uint32_t threshold = (0xffffffffu - std::uint32_t(rng)) % rng_excl;
    while (leftover < threshold) {
      m = std::uint64_t(next_u32()) * rng_excl;
      leftover = std::uint32_t(m);
    }
  }
  return low + std::int64_t(m >> 32);
}

double NumpyRandom::random() {
  return double(next_u64() >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace sparq::eval
