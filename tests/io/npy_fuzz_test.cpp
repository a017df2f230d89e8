// Fuzz-style robustness of the .npy reader: valid files mutated at random (bytes
// flipped, cut, spliced, header tokens swapped, length fields rewritten) must each be
// parsed or refused with sparq::Error(bad_file), never crash, hang or over-allocate.
// Deterministic (fixed seeds), a few seconds; the same target runs under libFuzzer
// with -DSPARQ_FUZZ=ON (tests/fuzz/npy_fuzzer.cpp).
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "npy_fuzz_target.hpp"
#include "npy_test_util.hpp"

namespace sparq {
namespace {

using test::FuzzOutcome;

std::vector<std::vector<std::byte>> seeds() {
  const double d8[] = {1.5, -2.0, 3.0, 4.0};
  const float f4[] = {1, 2, 3, 4, 5, 6};
  std::vector<std::vector<std::byte>> s;
  for (int major : {1, 2, 3}) {
    s.push_back(test::make_npy(major, test::dict_for("<f4", "(2, 3)"), f4, sizeof f4));
    s.push_back(test::make_npy(major, test::dict_for("<f8", "(4,)"), d8, sizeof d8));
    s.push_back(test::make_npy(major, test::dict_for("<f4", "()"), f4, 4));
    s.push_back(test::make_npy(major, test::dict_for("<f4", "(0, 7)"), nullptr, 0));
  }
  return s;
}

// Tokens that steer mutations into the parser's interesting corners.
const std::string_view kTokens[] = {"(",
                                    ")",
                                    ",",
                                    "'",
                                    "\"",
                                    "{",
                                    "}",
                                    ":",
                                    "True",
                                    "False",
                                    "L",
                                    " ",
                                    "\n",
                                    "-",
                                    "0",
                                    "1",
                                    "18446744073709551615",
                                    "18446744073709551616",
                                    "4294967296",
                                    "99999999999999999999999999",
                                    "<f8",
                                    ">f4",
                                    "|O",
                                    "descr",
                                    "shape",
                                    "fortran_order",
                                    "[",
                                    "]",
                                    "\\",
                                    "\xff",
                                    std::string_view("\0", 1)};

class Mutator {
 public:
  explicit Mutator(unsigned seed) : rng_(seed) {}

  std::vector<std::byte> mutate(std::vector<std::byte> b) {
    const int rounds = 1 + pick(4);
    for (int r = 0; r < rounds; ++r) {
      switch (pick(7)) {
        case 0:  // flip a byte
          if (!b.empty()) b[pick(b.size())] = static_cast<std::byte>(pick(256));
          break;
        case 1:  // truncate
          b.resize(pick(b.size() + 1));
          break;
        case 2:  // insert a token somewhere (mostly in the header)
          insert(b, kTokens[pick(std::size(kTokens))]);
          break;
        case 3:  // delete a range
          if (!b.empty()) {
            const std::size_t at = pick(b.size());
            b.erase(b.begin() + static_cast<std::ptrdiff_t>(at),
                    b.begin() + static_cast<std::ptrdiff_t>(std::min(b.size(), at + 1 + pick(8))));
          }
          break;
        case 4:  // rewrite the header length with something plausible or absurd
          if (b.size() >= 12) {
            const std::uint32_t len =
                pick(2) ? static_cast<std::uint32_t>(rng_()) : static_cast<std::uint32_t>(pick(256));
            for (int i = 0; i < 4; ++i) b[8 + i] = static_cast<std::byte>(len >> (8 * i));
          }
          break;
        case 5:  // append junk
          for (std::size_t n = pick(16); n > 0; --n) b.push_back(static_cast<std::byte>(pick(256)));
          break;
        default:  // swap a dimension in the shape for a random number
          replace_shape(b);
          break;
      }
    }
    return b;
  }

  std::vector<std::byte> random_bytes() {
    std::vector<std::byte> b(pick(200));
    for (auto& x : b) x = static_cast<std::byte>(pick(256));
    if (pick(2) && b.size() >= 8) {  // a valid magic and version, so the header parser runs
      const unsigned char pre[] = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<unsigned char>(1 + pick(3)), 0};
      for (int i = 0; i < 8; ++i) b[i] = static_cast<std::byte>(pre[i]);
    }
    return b;
  }

 private:
  std::size_t pick(std::size_t n) { return n ? std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_) : 0; }
  void insert(std::vector<std::byte>& b, std::string_view tok) {
    const std::size_t at =
        b.size() > 10 && pick(4) ? 10 + pick(std::min<std::size_t>(b.size() - 10, 70)) : pick(b.size() + 1);
    b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), reinterpret_cast<const std::byte*>(tok.data()),
             reinterpret_cast<const std::byte*>(tok.data() + tok.size()));
  }
  void replace_shape(std::vector<std::byte>& b) {
    const std::string s(reinterpret_cast<const char*>(b.data()), std::min<std::size_t>(b.size(), 128));
    const auto open = s.find("'shape': (");
    if (open == std::string::npos) return;
    const auto close = s.find(')', open);
    if (close == std::string::npos) return;
    const std::string dims = std::to_string(rng_()) + ", " + std::to_string(rng_() % 5) + (pick(2) ? "," : "");
    b.erase(b.begin() + static_cast<std::ptrdiff_t>(open + 10), b.begin() + static_cast<std::ptrdiff_t>(close));
    b.insert(b.begin() + static_cast<std::ptrdiff_t>(open + 10), reinterpret_cast<const std::byte*>(dims.data()),
             reinterpret_cast<const std::byte*>(dims.data() + dims.size()));
  }
  std::mt19937_64 rng_;
};

std::string hex(const std::vector<std::byte>& b) {
  std::string out;
  for (std::size_t i = 0; i < std::min<std::size_t>(b.size(), 160); ++i) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned>(b[i]));
    out += buf;
  }
  return out;
}

void check(const std::vector<std::byte>& input, int& parsed, int& refused) {
  FuzzOutcome o = FuzzOutcome::wrong;
  try {
    o = test::npy_fuzz_one(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-sparq exception: " << e.what() << " input=" << hex(input);
    return;
  }
  ASSERT_NE(o, FuzzOutcome::wrong) << "input=" << hex(input);
  (o == FuzzOutcome::parsed ? parsed : refused)++;
}

TEST(NpyFuzz, MutatedFilesAreParsedOrRefused) {
  const auto base = seeds();
  Mutator m(20240601);
  int parsed = 0, refused = 0;
  for (int i = 0; i < 40000; ++i) check(m.mutate(base[static_cast<std::size_t>(i) % base.size()]), parsed, refused);
  // Both outcomes occur, so the mutations neither always break nor never touch the files.
  EXPECT_GT(parsed, 100);
  EXPECT_GT(refused, 10000);
}

TEST(NpyFuzz, RandomBytesAreRefused) {
  Mutator m(7);
  int parsed = 0, refused = 0;
  for (int i = 0; i < 20000; ++i) check(m.random_bytes(), parsed, refused);
  EXPECT_EQ(parsed, 0);
}

TEST(NpyFuzz, EveryPrefixOfAValidFileIsRefused) {
  for (const auto& file : seeds()) {
    int parsed = 0, refused = 0;
    for (std::size_t n = 0; n < file.size(); ++n)
      check({file.begin(), file.begin() + static_cast<std::ptrdiff_t>(n)}, parsed, refused);
    EXPECT_EQ(parsed, 0);
    check(file, parsed, refused);
    EXPECT_EQ(parsed, 1);
  }
}

}  // namespace
}  // namespace sparq
