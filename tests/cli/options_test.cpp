// The CLI's strict option values (apps/sparq/options.hpp), through a CLI11 parser as the
// subcommands use them: the syntax users type (4096, 16k, 1G, lists 4k,16k) is accepted,
// and what CLI11 alone would take silently (an empty value, a value past int64, a sign,
// octal, hex) is refused with the option's name and range.
#include "options.hpp"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sparq::cli {
namespace {

// Parses `args` (after a program name) into an app built by `add`; returns the parse
// error's message, or "" when it parsed.
template <class Add>
std::string parse(const std::vector<std::string>& args, Add add) {
  CLI::App app("test");
  add(app);
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return {};
}

TEST(SizeOption, AcceptsCountsWithBinaryUnits) {
  const std::pair<const char*, std::uint64_t> cases[] = {
      {"4096", 4096}, {"16k", 16384}, {"64K", 65536},   {"1M", 1u << 20}, {"1G", 1u << 30},       {"4kiB", 4096},
      {"4KB", 4096},  {"2 k", 2048},  {"0016k", 16384}, {"010", 10},      {"512MiB", 512u << 20}, {"1", 1},
  };
  for (const auto& [text, want] : cases) {
    std::uint64_t v = 0;
    const std::string err =
        parse({"--size", text}, [&](CLI::App& app) { app.add_option("--size", v)->transform(size_in(1, 1ull << 40)); });
    EXPECT_EQ(err, "") << text;
    EXPECT_EQ(v, want) << text;
  }
}

TEST(SizeOption, RefusesWhatCli11AloneWouldTake) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "an empty value"},
      {"-1", "is not a count"},
      {"0x10", "is not a count"},
      {"1.5k", "is not a count"},
      {"4x", "is not a count"},
      {"k", "is not a count"},
      {"0", "out of range"},
      {"2G", "out of range"},
      {"99999999999999999999", "out of range"},
      {"99999999999999999999k", "out of range"},
      {"18014398509481984k", "out of range"},  // 2^54 k: overflows only with the unit
  };
  for (const auto& [text, why] : cases) {
    std::uint64_t v = 0;
    const std::string err =
        parse({"--size", text}, [&](CLI::App& app) { app.add_option("--size", v)->transform(size_in(1, 1ull << 30)); });
    EXPECT_NE(err.find("--size: "), std::string::npos) << text << ": " << err;
    EXPECT_NE(err.find(why), std::string::npos) << text << ": " << err;
    EXPECT_NE(err.find("[1, 1G]"), std::string::npos) << text << ": " << err;
  }
}

TEST(SizeOption, ListsSplitAtCommasAndRepeat) {
  std::vector<std::uint64_t> v;
  const auto add = [&](CLI::App& app) {
    app.add_option("--seq-lens", v)->delimiter(',')->transform(size_in(1, 1ull << 30));
  };
  EXPECT_EQ(parse({"--seq-lens", "4k,16k,64k"}, add), "");
  EXPECT_EQ(v, (std::vector<std::uint64_t>{4096, 16384, 65536}));
  v.clear();
  EXPECT_EQ(parse({"--seq-lens", "1k", "--seq-lens", "2k,3"}, add), "");
  EXPECT_EQ(v, (std::vector<std::uint64_t>{1024, 2048, 3}));
  v.clear();
  EXPECT_EQ(parse({"--seq-lens", "4k,,16k,"}, add), "");  // CLI11 drops empty items
  EXPECT_EQ(v, (std::vector<std::uint64_t>{4096, 16384}));
  EXPECT_NE(parse({"--seq-lens", "4k,2G"}, add).find("2G is out of range"), std::string::npos);
}

TEST(IntegerOption, IsWholeDecimalAndInRange) {
  std::optional<std::int64_t> v;
  const auto add = [&](CLI::App& app) { app.add_option("--k", v)->transform(integer_in(1, kMaxInt64)); };
  EXPECT_EQ(parse({"--k", "42"}, add), "");
  EXPECT_EQ(v, 42);
  EXPECT_EQ(parse({"--k", "010"}, add), "");
  EXPECT_EQ(v, 10) << "decimal, not octal";
  EXPECT_EQ(parse({"--k", "9223372036854775807"}, add), "");
  EXPECT_EQ(v, kMaxInt64);
  for (const char* bad : {"", "0", "-3", "1.5", "1e3", "0x10", "abc", "99999999999999999999"}) {
    const std::string err = parse({"--k", bad}, add);
    EXPECT_NE(err.find("--k: "), std::string::npos) << bad << ": " << err;
    EXPECT_NE(err.find("[1, 9223372036854775807]"), std::string::npos) << bad << ": " << err;
  }
  std::int64_t w = 5;
  EXPECT_EQ(parse({"--w", "-7"}, [&](CLI::App& app) { app.add_option("--w", w)->transform(integer_in(-10, 10)); }), "");
  EXPECT_EQ(w, -7);
}

TEST(NumberOption, IsFiniteAndAtLeastItsBound) {
  std::vector<double> v;
  const auto add = [&](CLI::App& app) { app.add_option("--ratio", v)->delimiter(',')->check(number_at_least(1.0)); };
  EXPECT_EQ(parse({"--ratio", "4,8,16.5"}, add), "");
  EXPECT_EQ(v, (std::vector<double>{4, 8, 16.5}));
  for (const char* bad : {"", "0.5", "nan", "inf", "x", "1e999"}) {
    const std::string err = parse({"--ratio", bad}, add);
    EXPECT_NE(err.find("--ratio: "), std::string::npos) << bad << ": " << err;
    EXPECT_NE(err.find(">= 1"), std::string::npos) << bad << ": " << err;
  }
}

TEST(SizeLabel, ShowsWholeUnits) {
  EXPECT_EQ(size_label(4096), "4k");
  EXPECT_EQ(size_label(4097), "4097");
  EXPECT_EQ(size_label(3u << 20), "3M");
  EXPECT_EQ(size_label(1ull << 30), "1G");
  EXPECT_EQ(size_label(1536), "1536");
}

}  // namespace
}  // namespace sparq::cli
