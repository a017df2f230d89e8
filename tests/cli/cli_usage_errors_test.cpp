// Usage errors every subcommand shares (issue 18 item 7): numeric options take whole,
// in-range values (an empty value or one past int64 is an error, not "unset" or
// INT64_MAX); every error is exactly one line on stderr; `attend` never writes over one
// of its own inputs. And every subcommand documents itself: --help exits 0.
#include <fstream>
#include <iterator>

#include "cli_fixture.hpp"

namespace sparq::test {
namespace {

std::size_t lines(const std::string& s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

std::string joined(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += " '" + a + "'";
  return s;
}

class CliUsage : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    save("q.npy", random_array({4, 16}, 1));
    save("k.npy", random_array({2, 10, 16}, 2));
    save("v.npy", random_array({2, 10, 16}, 3));
  }

  // Runs `args`, expecting exit 2, nothing on stdout and one stderr line that starts
  // with "sparq <cmd>: error: " and contains every string of `mentions`.
  void expect_usage_error(const std::vector<std::string>& args, const std::vector<std::string>& mentions) {
    const auto r = sparq(args);
    const std::string ctx = "sparq" + joined(args) + "\nstderr: " + r.err;
    EXPECT_EQ(r.exit_code, 2) << ctx;
    EXPECT_TRUE(r.out.empty()) << ctx << "\nstdout: " << r.out;
    EXPECT_EQ(lines(r.err), 1u) << ctx;
    EXPECT_TRUE(r.err.starts_with("sparq " + args.front() + ": error: ")) << ctx;
    for (const auto& m : mentions) EXPECT_NE(r.err.find(m), std::string::npos) << ctx << "lacks: " << m;
  }

  [[nodiscard]] std::vector<std::string> attend_args(std::vector<std::string> extra) const {
    std::vector<std::string> args = {"attend",   "--queries",   path("q.npy"), "--keys",     path("k.npy"),
                                     "--values", path("v.npy"), "--out",       path("y.npy")};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  [[nodiscard]] std::string bytes_of(const std::string& name) const {
    std::ifstream f(path(name), std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  }
};

// Every subcommand, with what its required options need to get past the parser.
struct Invocation {
  std::string cmd;
  std::vector<std::string> required;
};
std::vector<Invocation> every_subcommand() {
  return {{"info", {}},
          {"attend", {"--queries", "q.npy", "--keys", "k.npy", "--values", "v.npy", "--out", "y.npy"}},
          {"eval", {"trace-dir"}},
          {"generate", {"--model", "m.bin", "--prompt", "x"}},
          {"perplexity", {"--model", "m.bin", "--text", "t.txt"}},
          {"roofline", {}},
          {"layouts", {}}};
}

TEST_F(CliUsage, AttendRefusesToWriteOverAnInput) {
  for (const char* input : {"q.npy", "k.npy", "v.npy"}) {
    const std::string before = bytes_of(input);
    // The same file spelled differently is still the same file.
    const std::string out = (dir_ / "." / input).string();
    auto args = attend_args({});
    args[8] = out;
    expect_usage_error(args, {"--out", input, "also an input"});
    EXPECT_TRUE(bytes_of(input) == before) << input << " was modified";
  }
  EXPECT_FALSE(fs::exists(path("y.npy")));
}

TEST_F(CliUsage, EmptyNumericValuesAreUsageErrors) {
  // CLI11 alone turns "" into "unset" (optional) or 0 (--threads 0 = all threads).
  expect_usage_error(attend_args({"--r", ""}), {"--r", "empty", "[1, "});
  expect_usage_error(attend_args({"--k", ""}), {"--k", "empty", "[1, "});
  expect_usage_error(attend_args({"--window", ""}), {"--window", "empty", "[0, "});
  expect_usage_error(attend_args({"--ratio", ""}), {"--ratio", "empty"});
  expect_usage_error(attend_args({"--block-tokens", ""}), {"--block-tokens", "empty"});
  expect_usage_error({"roofline", "--r", ""}, {"--r", "empty", "[1, "});
  expect_usage_error({"roofline", "--threads", ""}, {"--threads", "empty", "[0, 4096]"});
  expect_usage_error({"roofline", "--seq-lens", ""}, {"--seq-lens", "empty"});
  expect_usage_error({"roofline", "--working-set", ""}, {"--working-set", "empty"});
  expect_usage_error({"layouts", "--k", ""}, {"--k", "empty"});
  expect_usage_error({"generate", "--model", "m.bin", "--prompt", "x", "--window", ""}, {"--window", "empty"});
  expect_usage_error({"perplexity", "--model", "m.bin", "--text", "t", "--context", ""}, {"--context", "empty"});
  expect_usage_error({"eval", "d", "--steps", ""}, {"--steps", "empty"});
  expect_usage_error({"info", "--kv-heads", ""}, {"--kv-heads", "empty"});
}

TEST_F(CliUsage, IntegersPastInt64AreUsageErrors) {
  // CLI11 alone saturates these at INT64_MAX (a huge but "valid" k).
  const std::string huge = "99999999999999999999";
  expect_usage_error(attend_args({"--k", huge}), {"--k", huge, "out of range", "[1, 9223372036854775807]"});
  expect_usage_error(attend_args({"--window", huge}), {"--window", huge, "out of range"});
  expect_usage_error(attend_args({"--k", "-" + huge}), {"--k", "out of range"});
  expect_usage_error({"roofline", "--k", huge}, {"--k", huge, "out of range"});
  expect_usage_error({"roofline", "--repeats", huge}, {"--repeats", huge, "[1, 100000]"});
  expect_usage_error({"roofline", "--seq-lens", huge}, {"--seq-lens", huge});
  expect_usage_error({"layouts", "--k", huge}, {"--k", huge, "out of range"});
  expect_usage_error({"generate", "--model", "m.bin", "--prompt", "x", "--k", huge}, {"--k", huge, "out of range"});
  expect_usage_error({"eval", "d", "--sinks", huge}, {"--sinks", huge, "out of range"});
}

TEST_F(CliUsage, ParseErrorsAreOneLineInEverySubcommand) {
  for (const Invocation& inv : every_subcommand()) {
    std::vector<std::string> args = {inv.cmd};
    args.insert(args.end(), inv.required.begin(), inv.required.end());
    args.push_back("--no-such-option");
    expect_usage_error(args, {"--no-such-option", "sparq " + inv.cmd + " --help"});
  }
  // A missing required option and a value the option does not know.
  expect_usage_error({"attend", "--queries", "q.npy"}, {"--keys"});
  expect_usage_error({"roofline", "--dtype", "f64"}, {"--dtype", "f64"});
  // The top level: no subcommand, an unknown one, an unknown option.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{}, std::vector<std::string>{"frobnicate"}, std::vector<std::string>{"--frob"}}) {
    const auto r = sparq(args);
    EXPECT_EQ(r.exit_code, 2) << joined(args);
    EXPECT_EQ(lines(r.err), 1u) << joined(args) << "\nstderr: " << r.err;
    EXPECT_NE(r.err.find("sparq --help"), std::string::npos) << r.err;
  }
}

TEST_F(CliUsage, EverySubcommandHasHelp) {
  for (const Invocation& inv : every_subcommand()) {
    const auto r = sparq({inv.cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << inv.cmd << ": " << r.err;
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << inv.cmd;
    EXPECT_TRUE(r.err.empty()) << inv.cmd << ": " << r.err;
    // Tabular output has a machine-readable form too.
    EXPECT_NE(r.out.find("--json"), std::string::npos) << inv.cmd << " --help lacks --json";
  }
}

}  // namespace
}  // namespace sparq::test
