// A line-by-line port of tools/train/tasks.py's prompt builders (Text.window,
// _split_point, _insert, passkey_task, copy_task, passkey_prompts, copy_prompts). Keep
// the two in step: tests/python/test_task_prompts.py compares them.
#include "sparq/tools/eval/task_prompts.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cfenv>
#include <cmath>

#include "eval/numpy_random.hpp"
#include "sparq/error.hpp"

namespace sparq::eval {

namespace {

constexpr std::string_view kCopyOpen = "Remember this passage:\n", kCopyClose = "\nEnd of passage.",
                           kCopyAsk = "Repeat the passage:\n";

[[noreturn]] void invalid(const std::string& what) {
  throw Error(ErrorCode::invalid_argument, what);
}

// NumPy's seed-list entropy of [seed, tag]: each integer as its 32-bit words, low first.
NumpyRandom make_rng(std::uint64_t seed, std::uint32_t tag) {
  if (seed >> 63) invalid(fmt::format("seed={} is too large: must be below 2^63", seed));
  std::vector<std::uint32_t> words;
  for (std::uint64_t s = seed;;) {
    words.push_back(std::uint32_t(s));
    s >>= 32;
    if (s == 0) break;
  }
  words.push_back(tag);
  return NumpyRandom(words);
}

class Text {
 public:
  explicit Text(std::string_view data) : data_(data) {
    if (data_.size() < 4096)
      invalid(fmt::format("held-out text of {} bytes is too short (need >= 4096)", data_.size()));
  }

  // Text.window: n bytes from a random start moved to the next line (or word) start
  // within 200 bytes.
  [[nodiscard]] std::string window(NumpyRandom& rng, std::size_t n) const {
    if (n == 0) return {};
    const std::int64_t span = std::int64_t(data_.size()) - std::int64_t(n) - 256;
    const std::int64_t hi = std::max<std::int64_t>(1, span);
    std::size_t s = std::size_t(rng.integers(0, hi));
    const std::string_view look = data_.substr(s, 200);
    if (const std::size_t nl = look.find('\n'); nl != std::string_view::npos) {
      s += nl + 1;
    } else if (const std::size_t sp = look.find(' '); sp != std::string_view::npos) {
      s += sp + 1;
    }
    std::string out(data_.substr(std::min(s, data_.size()), n));
    if (out.size() < n) {  // np.resize: the text repeated from its start
      out.clear();
      while (out.size() < n) out += data_.substr(0, n - out.size());
    }
    return out;
  }

 private:
  std::string_view data_;
};

// _split_point: index near frac * len (Python's round: half to even), moved back up to
// 40 bytes to just after a space or newline.
std::size_t split_point(std::string_view filler, double frac) {
  const int old = std::fegetround();
  std::fesetround(FE_TONEAREST);
  const double r = std::nearbyint(frac * double(filler.size()));
  std::fesetround(old);
  const std::int64_t n = std::int64_t(filler.size());
  const std::int64_t i = std::min<std::int64_t>(std::max<std::int64_t>(std::int64_t(r), 0), n);
  for (std::int64_t j = i; j > std::max<std::int64_t>(i - 40, 0); --j)
    if (filler[std::size_t(j - 1)] == '\n' || filler[std::size_t(j - 1)] == ' ') return std::size_t(j);
  return std::size_t(i);
}

// _insert with a single item.
std::string insert_at(const std::string& filler, std::string_view item, double depth) {
  const std::size_t c = split_point(filler, depth);
  return filler.substr(0, c) + std::string(item) + filler.substr(c);
}

std::string digits(NumpyRandom& rng) {
  return std::to_string(rng.integers(10000, 100000));
}

}  // namespace

std::vector<TaskPrompt> passkey_prompts(std::string_view text_data, std::span<const std::size_t> lengths,
                                        std::span<const double> depths, std::size_t per_cell, std::uint64_t seed) {
  const Text text(text_data);
  NumpyRandom rng = make_rng(seed, 0x9A55);
  std::vector<TaskPrompt> out;
  for (std::size_t L : lengths)
    for (double depth : depths)
      for (std::size_t i = 0; i < per_cell; ++i) {
        const std::string key = digits(rng);
        const std::string head = std::string(kPasskeyIntro) + "\n";
        const std::string needle = fmt::format(" The pass key is {0}. Remember it. {0} is the pass key. ", key);
        const std::string answer = " " + key;
        const std::size_t fixed = head.size() + needle.size() + kPasskeyQuestion.size() + answer.size();
        if (L < fixed + 16) invalid(fmt::format("passkey length {} is too short (need >= {})", L, fixed + 16));
        const std::string body = insert_at(text.window(rng, L - fixed), needle, depth);
        out.push_back({.task = "passkey",
                       .length = L,
                       .depth = depth,
                       .key = key,
                       .prompt = head + body + std::string(kPasskeyQuestion),
                       .answer = answer});
      }
  return out;
}

std::vector<TaskPrompt> copy_prompts(std::string_view text_data, std::span<const std::size_t> lengths,
                                     std::size_t per_cell, std::uint64_t seed, std::size_t passage_len) {
  const Text text(text_data);
  NumpyRandom rng = make_rng(seed, 0xC0B1);
  std::vector<TaskPrompt> out;
  for (std::size_t L : lengths)
    for (std::size_t i = 0; i < per_cell; ++i) {
      const std::size_t length = L + kCopyClose.size();  // copy_task's sequence, before the final close is cut
      const std::string passage = text.window(rng, passage_len);
      const std::string block = "\n" + std::string(kCopyOpen) + passage + std::string(kCopyClose) + "\n";
      const std::string tail = "\n" + std::string(kCopyAsk) + passage + std::string(kCopyClose);
      if (length < block.size() + tail.size() + 16)
        invalid(fmt::format("copy length {} is too short for a passage of {}", L, passage_len));
      const std::string filler = text.window(rng, length - block.size() - tail.size());
      const std::string body = insert_at(filler, block, 0.9 * rng.random());
      const std::string s = (body + tail).substr(0, length - kCopyClose.size());
      out.push_back({.task = "copy",
                     .length = L,
                     .depth = std::nullopt,
                     .key = "",
                     .prompt = s.substr(0, s.size() - passage_len),
                     .answer = s.substr(s.size() - passage_len)});
    }
  return out;
}

}  // namespace sparq::eval
