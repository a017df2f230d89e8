// gnuplot lookup and launch (gnuplot.hpp).
#include "gnuplot.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "cli.hpp"

extern char** environ;

namespace sparq::cli {

namespace {

// Removes a file when it goes out of scope.
struct TempFile {
  std::string path;
  ~TempFile() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

// A new, empty file in the temporary directory; its path.
std::string make_temp(const char* stem) {
  std::string pattern = (std::filesystem::temp_directory_path() / (std::string(stem) + "-XXXXXX")).string();
  const int fd = ::mkstemp(pattern.data());
  if (fd < 0) throw Error(ErrorCode::io_error, pattern + ": cannot create a temporary file for gnuplot");
  ::close(fd);
  return pattern;
}

std::string last_line(const std::string& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r^") != std::string::npos) last = line;
  return last;
}

}  // namespace

std::string require_gnuplot(std::string_view option) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::filesystem::path p = std::filesystem::path(dir.empty() ? "." : dir) / "gnuplot";
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  usage_error(fmt::format("{} needs gnuplot, which is not on PATH (Debian: apt-get install gnuplot-nox)", option));
}

std::string gnuplot_quoted(std::string_view s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

void run_gnuplot(const std::string& gnuplot, const std::string& script, const std::string& output) {
  // The script in a file rather than on a pipe: a gnuplot that stops early cannot
  // raise SIGPIPE here. Its stderr goes to a file so that our error stays one line.
  const TempFile script_file{make_temp("sparq-plot")}, messages{make_temp("sparq-plot-err")};
  {
    std::ofstream f(script_file.path);
    f << script;
    if (!f) throw Error(ErrorCode::io_error, script_file.path + ": cannot write the gnuplot script");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, messages.path.c_str(), O_WRONLY | O_TRUNC, 0);
  std::vector<std::string> args = {gnuplot, script_file.path};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int status = 0;
  const int rc = posix_spawn(&pid, gnuplot.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc == 0) ::waitpid(pid, &status, 0);
  if (rc != 0) throw Error(ErrorCode::io_error, fmt::format("cannot start {} to write {}", gnuplot, output));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string why = last_line(messages.path);
    throw Error(ErrorCode::io_error,
                fmt::format("gnuplot failed to write {}{}", output, why.empty() ? "" : ": " + why));
  }
}

}  // namespace sparq::cli
