// Usage errors every subcommand shares (issue 18 item 7): every error is exactly one
// line on stderr. And every subcommand documents itself: --help exits 0.
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
