// sparq --version, --help, usage errors of the top level, and `sparq info`.
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "cli_fixture.hpp"
#include "sparq/isa.hpp"
#include "sparq/version.hpp"

namespace sparq::test {
namespace {

std::size_t lines(const std::string& s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

TEST_F(CliTest, Version) {
  const auto r = sparq({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, std::string("sparq ") + kVersion + "\n");
  EXPECT_EQ(r.out, std::string("sparq ") + SPARQ_VERSION_STRING + "\n");
}

TEST_F(CliTest, HelpListsEverySubcommandInOneLine) {
  const auto r = sparq({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const char* cmd : {"info", "attend"}) {
    const auto at = r.out.find(std::string("  ") + cmd + " ");
    ASSERT_NE(at, std::string::npos) << cmd << " missing from:\n" << r.out;
    const auto eol = r.out.find('\n', at);
    EXPECT_GT(eol - at, 20u) << "no one-line description for " << cmd << ":\n" << r.out;
  }
  const auto sub = sparq({"attend", "--help"});
  EXPECT_EQ(sub.exit_code, 0);
  for (const char* opt :
       {"--queries", "--keys", "--values", "--out", "--method", "--r", "--k", "--window", "--ratio",
        "--no-reallocation", "--reallocation", "--gqa", "--dtype", "--block-tokens", "--layout", "--json"})
    EXPECT_NE(sub.out.find(opt), std::string::npos) << opt << " missing from attend --help";
}

TEST_F(CliTest, NoSubcommandIsAUsageError) {
  const auto r = sparq({});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(r.out.empty());
  EXPECT_TRUE(r.err.starts_with("sparq: error: no command given: sparq <command>")) << r.err;
  EXPECT_EQ(lines(r.err), 1u) << r.err;
}

TEST_F(CliTest, UnknownSubcommandOrOptionIsAUsageError) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"frobnicate"}, {"--frobnicate"}}) {
    const auto r = sparq(args);
    EXPECT_EQ(r.exit_code, 2) << args[0];
    EXPECT_TRUE(r.err.starts_with("sparq: error: ")) << r.err;
    EXPECT_NE(r.err.find("frobnicate"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("(run 'sparq --help' for usage)"), std::string::npos) << r.err;
    EXPECT_EQ(lines(r.err), 1u) << r.err;
  }
  const auto r = sparq({"info", "--bogus"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(r.err.starts_with("sparq info: error: ")) << r.err;
  EXPECT_NE(r.err.find("(run 'sparq info --help' for usage)"), std::string::npos) << r.err;
  EXPECT_EQ(lines(r.err), 1u) << r.err;
}

TEST_F(CliTest, InfoText) {
  const auto r = sparq({"info"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const std::string& field : {std::string("sparq ") + SPARQ_VERSION_STRING, std::string("cpu:"),
                                   std::string("isa:"), std::string("compiled:"), std::string("cores:")})
    EXPECT_NE(r.out.find(field), std::string::npos) << field << " missing from:\n" << r.out;
}

TEST_F(CliTest, InfoJson) {
  const auto r = sparq({"info", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("version"), SPARQ_VERSION_STRING);
  EXPECT_TRUE(j.at("cpu_model").is_string());
  const std::string isa = j.at("isa");
  EXPECT_TRUE(isa == "avx512" || isa == "avx2" || isa == "generic") << isa;
  ASSERT_TRUE(j.at("compiled_isas").is_array());
  bool active_listed = false;
  for (const auto& c : j.at("compiled_isas")) {
    EXPECT_TRUE(c.at("cpu_supports").is_boolean());
    if (c.at("name") == isa) active_listed = c.at("cpu_supports").get<bool>();
  }
  EXPECT_TRUE(active_listed) << "the active ISA must be compiled and supported";
  EXPECT_GE(j.at("cores").get<std::size_t>(), 1u);
  EXPECT_GE(j.at("pus").get<std::size_t>(), j.at("cores").get<std::size_t>());
  EXPECT_TRUE(j.at("caches").is_object());
  for (const auto& [level, c] : j.at("caches").items()) {
    EXPECT_TRUE(level == "L1d" || level == "L2" || level == "L3") << level;
    EXPECT_GT(c.at("size_bytes").get<std::uint64_t>(), 0u) << level;
    EXPECT_GE(c.at("count").get<std::size_t>(), 1u) << level;
  }
  ASSERT_TRUE(j.at("numa_nodes").is_array());
  EXPECT_GE(j.at("numa_nodes").size(), 1u);
  for (const auto& n : j.at("numa_nodes")) EXPECT_TRUE(n.at("memory_bytes").is_number_unsigned());
  EXPECT_TRUE(j.at("warnings").is_array());
}

// The JSON of run_info() (`sparq info --json`) with one environment variable set for the
// child, restored after.
template <class RunInfo>
nlohmann::json info_json_with_env(const char* name, const char* value, RunInfo run_info) {
  const char* before = std::getenv(name);
  const std::string saved = before ? before : "";
  ::setenv(name, value, 1);
  const ProcessResult r = run_info();
  if (before)
    ::setenv(name, saved.c_str(), 1);
  else
    ::unsetenv(name);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
}

TEST_F(CliTest, IsaCanBeLoweredByEnvironment) {
  // SPARQ_ISA is read by the library (isa.hpp); info reports what decode will use.
  const auto j = info_json_with_env("SPARQ_ISA", "generic", [&] { return sparq({"info", "--json"}); });
  EXPECT_EQ(j.value("isa", ""), "generic");
}

}  // namespace
}  // namespace sparq::test
