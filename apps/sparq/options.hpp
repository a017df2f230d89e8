// Strict values for numeric options, shared by every subcommand.
//
// CLI11 2.1 (Debian 12) on its own takes an empty value as "unset" (std::optional) or 0,
// and saturates an integer past int64 at INT64_MAX. These validators read the text
// before CLI11 converts it, so such values are usage errors; CLI11 prefixes the message
// with the option's name: "--k: 99999999999999999999 is out of range: expected an
// integer in [1, 9223372036854775807]". Attach integer_in() and size_in() with
// ->transform() (they rewrite the text as plain decimal; CLI11 would read "010" as
// octal), number_at_least() with ->check().
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace sparq::cli {

inline constexpr std::int64_t kMaxInt64 = std::numeric_limits<std::int64_t>::max();

// A base-10 integer in [lo, hi].
[[nodiscard]] CLI::Validator integer_in(std::int64_t lo, std::int64_t hi);

// A finite number >= lo (a compression ratio, ...).
[[nodiscard]] CLI::Validator number_at_least(double lo);

// A count or size with an optional binary unit, through CLI::AsSizeValue: "4096", "16k",
// "64K", "1M", "2G", "512MiB", "4kB" (k = 1024), in [lo, hi]. The text is rewritten as
// a plain decimal, which is what the option's std::uint64_t receives.
[[nodiscard]] CLI::Validator size_in(std::uint64_t lo, std::uint64_t hi);

// --layout and --d-major-type of the subcommands that build a KV cache (values are
// parse_key_layout / parse_d_major_type names); `layouts`: the key layouts the command
// takes, in the order its help lists them.
void add_storage_options(CLI::App& cmd, std::string& layout, std::string& d_major_type,
                         const std::vector<std::string>& layouts);

// "4096" for counts that are not whole k/M/G, else "4k", "1M", "2G": how sizes are shown.
[[nodiscard]] std::string size_label(std::uint64_t n);

}  // namespace sparq::cli
