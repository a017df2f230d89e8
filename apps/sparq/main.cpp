// sparq: the command-line tool. One binary, one file per subcommand (see cli.hpp).
//
// Exit codes: 0 success; 2 usage or input errors (including every error CLI11 finds
// while parsing); 1 internal failures. Every error is one line on stderr:
//   sparq <cmd>: error: <message>
// (parse errors end with "(run 'sparq <cmd> --help' for usage)").
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "cli.hpp"
#include "sparq/version.hpp"

// The subcommands, in the order `sparq --help` lists them. One line per subcommand.
#define SPARQ_SUBCOMMANDS(X) \
  X(info)                    \
  X(attend)                  \
  X(eval)                    \
  X(generate)                \
  X(perplexity)              \
  X(passkey)                 \
  X(roofline)                \
  X(layouts)                 \
  X(soak)                    \
  X(bench_model)             \
  /* add new subcommands above this line */

namespace sparq::cli {
#define SPARQ_DECLARE_SUBCOMMAND(name) Subcommand name##_subcommand();
SPARQ_SUBCOMMANDS(SPARQ_DECLARE_SUBCOMMAND)
#undef SPARQ_DECLARE_SUBCOMMAND
}  // namespace sparq::cli

namespace {

using namespace sparq::cli;

// Messages must stay on one line whatever they quote.
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// "sparq" or "sparq attend": the deepest subcommand the parser reached.
std::string command_path(const CLI::App& app) {
  std::string path = "sparq";
  const CLI::App* cur = &app;
  while (true) {
    const auto subs = cur->get_subcommands();
    if (subs.empty()) break;
    cur = subs.front();
    path += " " + cur->get_name();
  }
  return path;
}

void print_error(const std::string& who, const std::string& message) {
  fmt::print(stderr, "{}: error: {}\n", who, one_line(message));
}

int run(int argc, char** argv) {
  CLI::App app("sparq " + std::string(sparq::kVersion) +
                   ": bandwidth-efficient decode attention (SparQ, arXiv 2312.04985) on CPUs",
               "sparq");
  app.set_version_flag("--version", "sparq " + std::string(sparq::kVersion), "Print the version and exit");
  app.require_subcommand(0, 1);

  struct Registered {
    CLI::App* app;
    Action action;
  };
  std::vector<Registered> registered;
  const Subcommand all[] = {
#define SPARQ_SUBCOMMAND_ENTRY(name) name##_subcommand(),
      SPARQ_SUBCOMMANDS(SPARQ_SUBCOMMAND_ENTRY)
#undef SPARQ_SUBCOMMAND_ENTRY
  };
  for (const Subcommand& s : all) {
    CLI::App* cmd = app.add_subcommand(s.name, s.summary);
    registered.push_back({cmd, s.setup(*cmd)});
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);  // prints help to stdout, exit 0
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const std::string who = command_path(app);
    print_error(who, fmt::format("{} (run '{} --help' for usage)", e.what(), who));
    return kExitUsage;
  }

  for (const Registered& r : registered) {
    if (!r.app->parsed()) continue;
    const std::string who = "sparq " + r.app->get_name();
    try {
      return r.action();
    } catch (const sparq::Error& e) {
      print_error(who, e.what());
      return is_input_error(e.code()) ? kExitUsage : kExitInternal;
    } catch (const std::exception& e) {
      print_error(who, std::string("internal error: ") + e.what());
      return kExitInternal;
    }
  }

  std::string names;
  for (const Subcommand& s : all) names += (names.empty() ? "" : ", ") + std::string(s.name);
  print_error("sparq", fmt::format("no command given: sparq <command> [options], commands: {} (run 'sparq --help' "
                                   "for details)",
                                   names));
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    print_error("sparq", std::string("internal error: ") + e.what());
    return kExitInternal;
  }
}
