// `sparq bench-model` end to end on the tiny shape: JSON fields, the speed-up baseline,
// and usage errors (exit 2, one line). No timed assertions.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "../cli/run_process.hpp"

namespace sparq::test {
namespace {

ProcessResult bench(std::vector<std::string> extra) {
  std::vector<std::string> args = {"bench-model", "--shape", "tiny",        "--threads", "1",
                                   "--repeats",   "2",       "--bw-buffer", "4M"};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_process(SPARQ_CLI_PATH, args, std::filesystem::temp_directory_path());
}

TEST(CliBenchModel, TinyShapeJson) {
  const ProcessResult r = bench({"--contexts", "64,300", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["tool"], "bench-model");
  EXPECT_EQ(j["config"]["shape"]["name"], "tiny");
  EXPECT_EQ(j["config"]["layers"], 2);
  EXPECT_EQ(j["interrupted"], false);
  ASSERT_EQ(j["results"].size(), 4u);  // 2 contexts x (dense, sparq:8)
  for (const auto& row : j["results"]) {
    EXPECT_EQ(row["threads"], 1);
    EXPECT_EQ(row["steps"], 2);
    EXPECT_GT(row["tokens_per_s"].get<double>(), 0.0);
    EXPECT_GT(row["matvec_gb_per_s"].get<double>(), 0.0);
    EXPECT_GT(row["attention_bytes"].get<double>(), 0.0);
    EXPECT_NEAR(row["token_seconds"].get<double>(),
                row["attention_seconds"].get<double>() + row["rest_seconds"].get<double>(), 1e-12);
    if (row["method"] == "dense") {
      EXPECT_EQ(row["speedup"], 1.0);
    }
  }
  EXPECT_EQ(j["results"][0]["context"], 64);
  EXPECT_EQ(j["results"][2]["context"], 300);
  EXPECT_EQ(j["results"][3]["method"], "sparq:8");
  // The byte model: SparQ moves fewer bytes at 300 positions than dense.
  ASSERT_EQ(j["byte_model"].size(), 4u);
  EXPECT_GT(j["byte_model"][3]["predicted_speedup"].get<double>(), 1.2);
  // Progress goes to stderr, one line per phase.
  EXPECT_NE(r.err.find("sparq bench-model: filling the KV cache"), std::string::npos) << r.err;
}

// The storage options reach the cache and the byte model: an int8 d-major copy moves
// fewer SparQ bytes than the default storage at the same context.
TEST(CliBenchModel, LayoutAndDMajorType) {
  const ProcessResult base = bench({"--contexts", "300", "--json"});
  const ProcessResult r = bench({"--contexts", "300", "--layout", "fused", "--d-major-type", "int8", "--json"});
  ASSERT_EQ(base.exit_code, 0) << base.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto jb = nlohmann::json::parse(base.out), j = nlohmann::json::parse(r.out);
  EXPECT_EQ(jb["config"]["layout"], "both");
  EXPECT_EQ(jb["config"]["d_major_type"], "same");
  EXPECT_EQ(j["config"]["layout"], "fused");
  EXPECT_EQ(j["config"]["d_major_type"], "int8");
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_GT(j["results"][1]["tokens_per_s"].get<double>(), 0.0);
  EXPECT_EQ(j["byte_model"][0]["attention_bytes"], jb["byte_model"][0]["attention_bytes"]);  // dense
  EXPECT_LT(j["byte_model"][1]["attention_bytes"].get<double>(), jb["byte_model"][1]["attention_bytes"].get<double>());
  EXPECT_LT(j["cache_bytes"].get<double>(), jb["cache_bytes"].get<double>());
  EXPECT_NE(r.err.find("sparq bench-model"), std::string::npos);
}

TEST(CliBenchModel, TextTable) {
  const ProcessResult r = bench({"--contexts", "100", "--method", "dense,sparq:4", "--weights", "bf16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("byte model"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sparq:4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bf16"), std::string::npos) << r.out;
}

TEST(CliBenchModel, UsageErrors) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"--method", "dense,h2o"},
                                                                {"--contexts", "0"},
                                                                {"--shape", "gpt5"},
                                                                {"--repeats", "0"},
                                                                {"--memory-fraction", "1.5"},
                                                                {"--layout", "s-major", "--d-major-type", "int8"},
                                                                {"--layout", "columns"}}) {
    const ProcessResult r = bench(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << " " << args[1] << ": " << r.err;
    EXPECT_NE(r.err.find("error"), std::string::npos) << r.err;
  }
}

TEST(CliBenchModel, Help) {
  const ProcessResult r =
      run_process(SPARQ_CLI_PATH, {"bench-model", "--help"}, std::filesystem::temp_directory_path());
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--contexts"), std::string::npos);
  EXPECT_NE(r.out.find("docs/e2e.md"), std::string::npos);
}

}  // namespace
}  // namespace sparq::test
