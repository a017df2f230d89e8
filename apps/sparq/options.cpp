// Strict numeric option values (options.hpp).
#include "options.hpp"

#include <fmt/core.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <string_view>
#include <system_error>

namespace sparq::cli {

namespace {

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// The whole of `s` as a base-10 T; std::errc::result_out_of_range past T's range.
template <class T>
std::errc parse_whole(std::string_view s, T& out) {
  if (s.empty()) return std::errc::invalid_argument;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc{}) return ec;
  return end == s.data() + s.size() ? std::errc{} : std::errc::invalid_argument;
}

}  // namespace

void add_storage_options(CLI::App& cmd, std::string& layout, std::string& d_major_type,
                         const std::vector<std::string>& layouts) {
  std::string help = "Key layout of the cache:";
  for (const std::string& l : layouts) {
    const char* what = l == "both"      ? " (S-major K, V, d-major K)"
                       : l == "fused"   ? " ([B][key|value] rows + d-major K)"
                       : l == "s-major" ? " (K and V rows only)"
                                        : " (d-major K, V)";
    help += fmt::format("{} {}{}", &l == &layouts.front() ? "" : ",", l, what);
  }
  cmd.add_option("--layout", layout, help)->check(CLI::IsMember(layouts))->capture_default_str();
  cmd.add_option("--d-major-type", d_major_type,
                 "Element type of the d-major key copy SparQ's stage 1 reads: same (the cache's dtype) or int8 "
                 "(per-block scales; needs --layout both or fused)")
      ->check(CLI::IsMember({"same", "int8"}))
      ->capture_default_str();
}

std::string size_label(std::uint64_t n) {
  if (n >= (1ull << 30) && n % (1ull << 30) == 0) return fmt::format("{}G", n >> 30);
  if (n >= (1ull << 20) && n % (1ull << 20) == 0) return fmt::format("{}M", n >> 20);
  if (n >= (1ull << 10) && n % (1ull << 10) == 0) return fmt::format("{}k", n >> 10);
  return fmt::format("{}", n);
}

CLI::Validator integer_in(std::int64_t lo, std::int64_t hi) {
  const std::string range = fmt::format("an integer in [{}, {}]", lo, hi);
  return CLI::Validator(
      [lo, hi, range](std::string& input) -> std::string {
        const std::string_view text = trimmed(input);
        if (text.empty()) return "an empty value is not allowed: expected " + range;
        std::int64_t v = 0;
        const std::errc ec = parse_whole(text, v);
        if (ec == std::errc::result_out_of_range) return fmt::format("{} is out of range: expected {}", text, range);
        if (ec != std::errc{}) return fmt::format("'{}' is not {}", text, range);
        if (v < lo || v > hi) return fmt::format("{} is out of range: expected {}", text, range);
        input = std::to_string(v);  // CLI11 converts with base 0: "010" would be octal
        return {};
      },
      fmt::format("[{}, {}]", lo, hi));
}

CLI::Validator number_at_least(double lo) {
  const std::string range = fmt::format("a finite number >= {:g}", lo);
  return CLI::Validator(
      [lo, range](std::string& input) -> std::string {
        const std::string_view text = trimmed(input);
        if (text.empty()) return "an empty value is not allowed: expected " + range;
        double v = 0;
        const std::errc ec = parse_whole(text, v);
        if (ec == std::errc::result_out_of_range || (ec == std::errc{} && (!std::isfinite(v) || v < lo)))
          return fmt::format("{} is out of range: expected {}", text, range);
        if (ec != std::errc{}) return fmt::format("'{}' is not {}", text, range);
        return {};
      },
      fmt::format(">= {:g}", lo));
}

CLI::Validator size_in(std::uint64_t lo, std::uint64_t hi) {
  const std::string range = fmt::format("a count in [{}, {}] (a number with an optional unit k, M, G: 1k = 1024)",
                                        size_label(lo), size_label(hi));
  return CLI::Validator(
      [lo, hi, range](std::string& input) -> std::string {
        const std::string text(trimmed(input));
        if (text.empty()) return "an empty value is not allowed: expected " + range;
        // Decimal digits, then an optional unit. CLI::AsSizeValue alone would also take
        // "-1" (as 2^64 - 1), hex and octal (its strtoull has base 0).
        std::size_t digits = 0;
        while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
        if (digits == 0) return fmt::format("'{}' is not {}", text, range);
        std::uint64_t number = 0;
        if (parse_whole(std::string_view(text).substr(0, digits), number) == std::errc::result_out_of_range)
          return fmt::format("{} is out of range: expected {}", text, range);
        const std::string unit = text.substr(digits);
        static const CLI::AsSizeValue to_bytes(/*kb_is_1000=*/false);
        const auto apply_unit = [&](std::string value) -> std::string {
          // Throws CLI::ValidationError for an unknown unit or an overflow.
          if (!to_bytes(value).empty()) throw CLI::ValidationError("not a size");
          return value;
        };
        std::string value;
        try {
          value = apply_unit(std::to_string(number) + unit);
        } catch (const CLI::ValidationError&) {
          bool known_unit = true;
          try {
            (void)apply_unit("1" + unit);
          } catch (const CLI::ValidationError&) {
            known_unit = false;
          }
          return known_unit ? fmt::format("{} is out of range: expected {}", text, range)
                            : fmt::format("'{}' is not {}", text, range);
        }
        std::uint64_t v = 0;
        const std::errc ec = parse_whole(trimmed(value), v);
        if (ec != std::errc{}) return fmt::format("'{}' is not {}", text, range);
        if (v < lo || v > hi) return fmt::format("{} is out of range: expected {}", text, range);
        input = std::to_string(v);
        return {};
      },
      fmt::format("SIZE [{}, {}]", size_label(lo), size_label(hi)));
}

}  // namespace sparq::cli
