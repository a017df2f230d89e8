// Evaluation prompts of the long-context tasks, byte for byte as tools/train/tasks.py
// writes them (passkey_prompts, copy_prompts) for the same held-out text and seed: the
// same NumPy random draws (lib/eval/numpy_random.hpp), filler windows, needle depths and
// split points.
//
// Passkey (Mohtashami & Jaggi, 2023): INTRO "\n", filler from the held-out text with the
// needle " The pass key is NNNNN. Remember it. NNNNN is the pass key. " inserted at the
// depth (moved back to just after a space or newline), then the question
// "\nWhat is the pass key? The pass key is"; the answer is " NNNNN" and prompt + answer
// is exactly `length` bytes. Copy (the repetition task): filler with
// "\nRemember this passage:\n" + 64 bytes + "\nEnd of passage.\n" inserted in its first
// 90%, then "\nRepeat the passage:\n"; the answer is the passage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sparq::eval {

inline constexpr std::string_view kPasskeyIntro =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz you "
    "about the important information there.";
inline constexpr std::string_view kPasskeyQuestion = "\nWhat is the pass key? The pass key is";
inline constexpr std::string_view kCopyQuestion = "\nRepeat the passage:\n";

struct TaskPrompt {
  std::string task;             // "passkey" or "copy"
  std::size_t length = 0;       // prompt + answer bytes
  std::optional<double> depth;  // passkey: the needle's depth in the filler (0..1)
  std::string key;              // passkey: the five digits
  std::string prompt, answer;
  // The prompt's last bytes that ask for the answer (kPasskeyQuestion, kCopyQuestion):
  // what a method under test must read token by token.
  [[nodiscard]] std::size_t question_bytes() const noexcept {
    return task == "passkey" ? kPasskeyQuestion.size() : kCopyQuestion.size();
  }
};

// tasks.passkey_prompts(text, lengths, depths, per_cell, seed): for each length, each
// depth, per_cell prompts. Throws sparq::Error(invalid_argument) for a text shorter than
// 4096 bytes, a length too short for the task, a seed >= 2^63.
[[nodiscard]] std::vector<TaskPrompt> passkey_prompts(std::string_view text, std::span<const std::size_t> lengths,
                                                      std::span<const double> depths, std::size_t per_cell,
                                                      std::uint64_t seed);
// tasks.copy_prompts(text, lengths, per_cell, seed, passage_len).
[[nodiscard]] std::vector<TaskPrompt> copy_prompts(std::string_view text, std::span<const std::size_t> lengths,
                                                   std::size_t per_cell, std::uint64_t seed,
                                                   std::size_t passage_len = 64);

}  // namespace sparq::eval
