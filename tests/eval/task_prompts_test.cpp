// NumPy's generator reproduced bit for bit (expected values printed by NumPy 1.24:
// np.random.default_rng([...]) as in each test), and the passkey / copy prompts built
// from it in tools/train/tasks.py's format. tests/python/test_task_prompts.py compares
// whole prompt sets with tasks.py itself.
#include "sparq/tools/eval/task_prompts.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "eval/numpy_random.hpp"
#include "sparq/error.hpp"

namespace sparq::eval {
namespace {

TEST(NumpyRandom, RawDrawsMatchNumpy) {
  const std::uint32_t seed[] = {20240519, 0x9A55};
  NumpyRandom r(seed);
  EXPECT_EQ(r.next_u64(), 16311424361112922453ULL);
  EXPECT_EQ(r.next_u64(), 3861720706200888414ULL);
  EXPECT_EQ(r.next_u64(), 4698753758575184574ULL);
}

TEST(NumpyRandom, IntegersAndRandomMatchNumpy) {
  const std::uint32_t seed[] = {20240519, 0x9A55};
  NumpyRandom r(seed);
  for (std::int64_t want : {91839, 89581, 67260, 28840, 98208}) EXPECT_EQ(r.integers(10000, 100000), want);
  for (std::int64_t want : {254720, 903492, 674836}) EXPECT_EQ(r.integers(0, 1000003), want);
  EXPECT_EQ(r.integers(0, 1), 0);  // a range of one draws nothing
  EXPECT_EQ(r.integers(5, 7), 6);
  EXPECT_DOUBLE_EQ(r.random(), 0.31962384913012853);
  EXPECT_EQ(r.integers(0, std::int64_t{1} << 32), 2478598724);  // the full 32-bit range
}

TEST(NumpyRandom, SeedsWiderThan32BitsAndZero) {
  const std::uint32_t big[] = {5, 1 << 8, 0xC0B1};  // (1 << 40 | 5) as NumPy splits it, low word first
  NumpyRandom r(big);
  for (std::int64_t want : {0, 2, 2, 2, 1, 1}) EXPECT_EQ(r.integers(0, 3), want);
  EXPECT_DOUBLE_EQ(r.random(), 0.4561990768198506);
  const std::uint32_t zero[] = {0, 7};
  NumpyRandom z(zero);
  EXPECT_EQ(z.integers(0, 100), 79);
}

std::string filler_text() {
  std::string t;
  for (int i = 0; t.size() < 20000; ++i) t += "Line " + std::to_string(i) + " of some held-out words here.\n";
  return t;
}

TEST(TaskPrompts, PasskeyPromptsHaveTheFormatLengthAndDepth) {
  const std::string text = filler_text();
  const std::size_t lengths[] = {1024, 2048};
  const double depths[] = {0.1, 0.5, 0.9};
  const auto prompts = passkey_prompts(text, lengths, depths, 3, 20240519);
  ASSERT_EQ(prompts.size(), 2u * 3u * 3u);
  // The first key is NumPy's first draw of integers(10000, 100000) for this seed.
  EXPECT_EQ(prompts[0].key, "91839");
  for (const TaskPrompt& p : prompts) {
    SCOPED_TRACE(p.prompt.substr(0, 40));
    EXPECT_EQ(p.prompt.size() + p.answer.size(), p.length);
    EXPECT_EQ(p.answer, " " + p.key);
    EXPECT_EQ(p.prompt.rfind(std::string(kPasskeyIntro) + "\n", 0), 0u);
    EXPECT_EQ(p.prompt.substr(p.prompt.size() - p.question_bytes()), kPasskeyQuestion);
    const std::string needle = " The pass key is " + p.key + ". Remember it. " + p.key + " is the pass key. ";
    const std::size_t at = p.prompt.find(needle);
    ASSERT_NE(at, std::string::npos);
    // Depth measured in the filler: within 40 bytes (the move back to a word start) plus rounding.
    const double filler = double(p.length - kPasskeyIntro.size() - 1 - needle.size() - kPasskeyQuestion.size() - 6);
    const double where = double(at - kPasskeyIntro.size() - 1);
    EXPECT_LE(where, *p.depth * filler + 1.0);
    EXPECT_GE(where, *p.depth * filler - 41.0);
  }
  // Deterministic for a seed, different for another.
  EXPECT_EQ(passkey_prompts(text, lengths, depths, 3, 20240519)[7].prompt, prompts[7].prompt);
  EXPECT_NE(passkey_prompts(text, lengths, depths, 3, 7)[7].prompt, prompts[7].prompt);
}

TEST(TaskPrompts, CopyPromptsEndWithTheRequestAndTheAnswerIsThePassage) {
  const std::string text = filler_text();
  const std::size_t lengths[] = {1024};
  const auto prompts = copy_prompts(text, lengths, 4, 5);
  ASSERT_EQ(prompts.size(), 4u);
  for (const TaskPrompt& p : prompts) {
    EXPECT_EQ(p.prompt.size() + p.answer.size(), 1024u);
    EXPECT_EQ(p.answer.size(), 64u);
    EXPECT_EQ(p.prompt.substr(p.prompt.size() - p.question_bytes()), kCopyQuestion);
    EXPECT_NE(p.prompt.find("\nRemember this passage:\n" + p.answer + "\nEnd of passage.\n"), std::string::npos);
  }
}

TEST(TaskPrompts, BadInputsAreRefused) {
  const std::string text = filler_text();
  const std::size_t short_len[] = {200};
  const double depth[] = {0.5};
  EXPECT_THROW((void)passkey_prompts(text, short_len, depth, 1, 1), Error);
  EXPECT_THROW((void)passkey_prompts(std::string(100, 'x'), std::vector<std::size_t>{1024}, depth, 1, 1), Error);
  EXPECT_THROW((void)copy_prompts(text, short_len, 1, 1), Error);
}

}  // namespace
}  // namespace sparq::eval
