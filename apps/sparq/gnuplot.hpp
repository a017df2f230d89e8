// gnuplot for the subcommands that draw charts (`sparq roofline --plot`, `sparq eval
// --plot`): one PATH lookup and one way to run it.
#pragma once

#include <string>
#include <string_view>

namespace sparq::cli {

// Full path of gnuplot when it is on PATH; otherwise a usage error naming `option`
// (the tool checks this before measuring anything).
[[nodiscard]] std::string require_gnuplot(std::string_view option);

// `s` as a gnuplot single-quoted string ('' stands for a quote inside).
[[nodiscard]] std::string gnuplot_quoted(std::string_view s);

// Runs `gnuplot` (from require_gnuplot) on `script`, which writes `output`. Throws
// sparq::Error(io_error) naming `output` and quoting gnuplot's last message on failure.
void run_gnuplot(const std::string& gnuplot, const std::string& script, const std::string& output);

}  // namespace sparq::cli
