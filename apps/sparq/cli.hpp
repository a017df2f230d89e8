// Shared pieces of the sparq command-line tool: how a subcommand plugs into main.cpp,
// exit codes, and error reporting.
//
// Adding a subcommand: write <name>.cpp defining
//   sparq::cli::Subcommand sparq::cli::<name>_subcommand()
// add <name>.cpp to commands.cmake and X(<name>) to SPARQ_SUBCOMMANDS in main.cpp.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "sparq/error.hpp"

namespace CLI {
class App;
}

namespace sparq::cli {

// Exit codes of every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitInternal = 1;  // a bug or an environment failure, not the user's input
inline constexpr int kExitUsage = 2;     // bad options or bad input files

// What runs once the command line parsed; returns the exit code. May throw
// sparq::Error (mapped by is_input_error) or anything else (exit 1).
using Action = std::function<int()>;

struct Subcommand {
  const char* name;
  const char* summary;  // one line, shown by `sparq --help`
  // Adds the subcommand's options to `cmd` (already named and described) and returns
  // the action; option values live in state the action captures.
  Action (*setup)(CLI::App& cmd);
};

// Whether a sparq::Error is the user's fault (exit 2) rather than ours (exit 1).
[[nodiscard]] constexpr bool is_input_error(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::invalid_argument:
    case ErrorCode::shape_mismatch:
    case ErrorCode::non_finite_input:
    case ErrorCode::empty_sequence:
    case ErrorCode::bad_file:
    case ErrorCode::io_error:  // a missing input or an unwritable output path
      return true;
    default:
      return false;
  }
}

// Throws sparq::Error(invalid_argument, what): a usage error found after parsing.
[[noreturn]] inline void usage_error(const std::string& what) {
  throw Error(ErrorCode::invalid_argument, what);
}

}  // namespace sparq::cli
