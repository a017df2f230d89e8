// NumPy's default random generator, bit for bit: np.random.default_rng(seed_list) is a
// PCG64 (XSL-RR 128/64) seeded through SeedSequence. Enough of it to draw what
// tools/train/tasks.py draws for its evaluation prompts (Generator.integers with int64
// bounds whose range fits 32 bits, Generator.random), so that `sparq passkey` writes the
// same prompts as the Python tools for the same seed (NumPy 1.17+; checked against
// NumPy 1.24 in tests/eval/numpy_random_test.cpp).
#pragma once

#include <cstdint>
#include <span>

namespace sparq::eval {

__extension__ typedef unsigned __int128 NumpyU128;  // GCC and Clang; -Wpedantic-clean

class NumpyRandom {
 public:
  // np.random.default_rng(list(entropy)): every entry a non-negative integer < 2^32.
  explicit NumpyRandom(std::span<const std::uint32_t> entropy);

  [[nodiscard]] std::uint64_t next_u64();
  [[nodiscard]] std::uint32_t next_u32();  // PCG64's buffered half-words, as NumPy's
  // Generator.integers(low, high) for int64 bounds, high - low - 1 < 2^32 (Lemire's
  // method on 32-bit draws). Requires low < high.
  [[nodiscard]] std::int64_t integers(std::int64_t low, std::int64_t high);
  // Generator.random(): [0, 1) with 53 random bits.
  [[nodiscard]] double random();

 private:
  NumpyU128 state_ = 0, inc_ = 0;
  bool has_u32_ = false;
  std::uint32_t u32_ = 0;
};

}  // namespace sparq::eval
