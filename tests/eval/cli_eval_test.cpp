// `sparq eval` end to end: a synthetic trace written by the binary itself, the JSON
// fields docs/eval-traces.md documents, CSV, and exit code 2 for bad usage.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../cli/run_process.hpp"

namespace sparq::test {
namespace {

namespace fs = std::filesystem;

class EvalCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("sparq-eval-cli-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const ProcessResult r = run({"eval", "--make-synthetic", trace(), "--positions", "96", "--shape", "2,4,2,16"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static std::string trace() { return (dir_ / "trace").string(); }
  static ProcessResult run(const std::vector<std::string>& args) { return run_process(SPARQ_CLI_PATH, args, dir_); }

  static fs::path dir_;
};
fs::path EvalCli::dir_;

TEST_F(EvalCli, JsonHasTheDocumentedFields) {
  const ProcessResult r = run({"eval", trace(), "--json", "--ratios", "2,8", "--steps", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["manifest"]["layers"], 2);
  EXPECT_EQ(j["manifest"]["q_heads"], 4);
  EXPECT_EQ(j["manifest"]["kv_heads"], 2);
  EXPECT_EQ(j["manifest"]["head_dim"], 16);
  EXPECT_EQ(j["manifest"]["positions"], 96);
  EXPECT_EQ(j["layers"].size(), 2u);
  EXPECT_EQ(j["steps"].size(), 4u);
  EXPECT_GT(j["dense"]["bytes_per_step"].get<double>(), 0);
  EXPECT_TRUE(j["isa"].is_string());
  ASSERT_EQ(j["results"].size(), 7u * 2);  // every method at both ratios
  for (const auto& row : j["results"]) {
    ASSERT_TRUE(row["method"].is_string());
    ASSERT_TRUE(row["ratio"].is_number());
    for (const char* key : {"k", "bytes_per_step", "transfer", "rel_l2", "median_rel_l2", "max_rel_l2", "cosine",
                            "recall", "alpha_true", "samples"})
      EXPECT_TRUE(row["overall"][key].is_number()) << row["method"] << " " << key;
    const bool sparq = row["method"].get<std::string>().rfind("sparq", 0) == 0;
    EXPECT_EQ(row["overall"]["alpha_est"].is_number(), sparq) << row["method"];
    EXPECT_EQ(row["per_layer"].size(), 2u);
    EXPECT_TRUE(row["per_layer"][0]["layer"].is_number());
    const double cos = row["overall"]["cosine"];
    EXPECT_GT(cos, -1.0001);
    EXPECT_LT(cos, 1.0001);
  }
}

TEST_F(EvalCli, TextAndCsv) {
  ProcessResult r = run({"eval", trace(), "--methods", "sparq,h2o", "--ratios", "4", "--steps", "2", "--per-layer"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rel_l2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("h2o"), std::string::npos) << r.out;
  r = run({"eval", trace(), "--methods", "oracle", "--ratios", "4", "--layers", "1", "--csv"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("method,ratio,layer,k,bytes_per_step,transfer,rel_l2,", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("oracle,4,all,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("oracle,4,1,"), std::string::npos) << r.out;
}

TEST_F(EvalCli, BadUsageExits2) {
  const std::vector<std::vector<std::string>> cases = {
      {"eval"},
      {"eval", (dir_ / "nowhere").string()},
      {"eval", trace(), "--ratios", "0.5"},
      {"eval", trace(), "--methods", "sparq,magic"},
      {"eval", trace(), "--layers", "7"},
      {"eval", trace(), "--json", "--csv"},
      {"eval", trace(), "--steps", "-1"},
      {"eval", trace(), "--make-synthetic", (dir_ / "other").string()},
      {"eval", trace(), "--positions", "64"},
      {"eval", "--make-synthetic", (dir_ / "bad").string(), "--shape", "1,3,2,16"},
  };
  for (const auto& args : cases) {
    const ProcessResult r = run(args);
    std::string cmd;
    for (const auto& a : args) cmd += a + " ";
    EXPECT_EQ(r.exit_code, 2) << cmd << "\n" << r.err;
    EXPECT_NE(r.err.find("error"), std::string::npos) << cmd << "\n" << r.err;
  }
}

TEST_F(EvalCli, PlotWithoutGnuplotIsAUsageError) {
  const char* old = std::getenv("PATH");
  const std::string saved = old ? old : "";
  ::setenv("PATH", "/nonexistent", 1);
  const ProcessResult r = run({"eval", trace(), "--plot", (dir_ / "p.svg").string()});
  ::setenv("PATH", saved.c_str(), 1);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("gnuplot"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "p.svg"));
}

}  // namespace
}  // namespace sparq::test
