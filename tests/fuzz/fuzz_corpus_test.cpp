// Every committed fuzz input (tests/fuzz/corpus/<target>/) through its target, in the
// ordinary build, so an input that once broke a rule keeps being checked without clang
// or libFuzzer (the seeds reach both the accepting and the refusing paths); and seeded
// random operation sequences for the cache target.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "cache_ops_target.hpp"
#include "checkpoint_target.hpp"
#include "npy_target.hpp"
#include "trace_target.hpp"

namespace sparq {
namespace {

using Target = bool (*)(const std::uint8_t*, std::size_t);

// Runs every input of corpus/<name>; returns how many the target accepted.
std::size_t run_corpus(const std::string& name, Target target, bool some_refused = true) {
  const std::filesystem::path dir = std::filesystem::path(SPARQ_FUZZ_CORPUS) / name;
  std::size_t n = 0, accepted = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(entry.path().string());
    accepted += target(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    ++n;
  }
  if (some_refused) {
    EXPECT_GT(n, accepted) << name << ": the corpus should hold refused inputs too";
  }
  return accepted;
}

TEST(FuzzCorpus, Npy) {
  EXPECT_GT(run_corpus("npy", &fuzz::npy_one), 0u);
}
TEST(FuzzCorpus, Trace) {
  EXPECT_GT(run_corpus("trace", &fuzz::trace_one), 0u);
}
TEST(FuzzCorpus, Checkpoint) {
  EXPECT_GT(run_corpus("checkpoint", &fuzz::checkpoint_one), 0u);
}
TEST(FuzzCorpus, CacheOps) {
  EXPECT_GT(run_corpus("cache_ops", &fuzz::cache_ops_one, false), 0u);
}

TEST(FuzzCorpus, CacheOpsSeededRandomInputs) {
  std::mt19937 rng(18);
  for (int i = 0; i < 3000; ++i) {
    std::vector<std::uint8_t> bytes(16 + rng() % 240);
    for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
    fuzz::cache_ops_one(bytes.data(), bytes.size());
  }
}

}  // namespace
}  // namespace sparq
