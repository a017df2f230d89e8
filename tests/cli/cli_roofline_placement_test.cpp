// `sparq roofline --placement P` reports where the bytes of every row live: per NUMA node
// of this machine (as many as the kernel lists), splitting the row's bytes by the
// cache's resident share; in JSON, CSV and the text's placement section.
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <system_error>
#include <vector>

#include "cli_fixture.hpp"

namespace sparq::test {
namespace {

// Small and quick, as in tests/profile/perf_cli_test.cpp.
const std::vector<std::string> kTiny = {"roofline", "--seq-lens",  "1k",  "--repeats",     "2",   "--threads",
                                        "1",        "--bw-buffer", "16M", "--working-set", "32M", "--heads",
                                        "8/2",      "--head-dim",  "64",  "--ratio",       "8"};

std::vector<std::string> tiny(const std::string& placement, std::vector<std::string> extra) {
  std::vector<std::string> args = kTiny;
  args.insert(args.end(), {"--placement", placement});
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

class RooflinePlacementCli : public CliTest {
 protected:
  // This machine's NUMA nodes as the kernel lists them (/sys/devices/system/node/nodeN),
  // independent of hwloc and of `sparq info` (which probes oneTBB's tbbbind, refused
  // under ASan); 1 when the kernel has no NUMA support.
  static std::size_t numa_nodes() {
    std::size_t n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/sys/devices/system/node", ec)) {
      const std::string name = e.path().filename().string();
      if (name.size() > 4 && name.rfind("node", 0) == 0 && name.find_first_not_of("0123456789", 4) == std::string::npos)
        ++n;
    }
    return n ? n : 1;
  }
};

TEST_F(RooflinePlacementCli, JsonSplitsEveryRowsBytesOverTheNodes) {
  const std::size_t nodes = numa_nodes();
  ASSERT_GE(nodes, 1u);
  for (const std::string placement : {"local", "interleave", "by-head"}) {
    const auto r = sparq(tiny(placement, {"--json"}));
    ASSERT_EQ(r.exit_code, 0) << placement << ": " << r.err;
    const auto j = nlohmann::json::parse(r.out);
    const auto& p = j.at("placement");
    EXPECT_EQ(p.at("policy"), placement);
    EXPECT_EQ(p.at("numa_nodes").get<std::size_t>(), nodes) << placement;
    ASSERT_EQ(p.at("seq_lens").size(), 1u) << placement;
    const auto& at_s = p.at("seq_lens")[0];
    EXPECT_EQ(at_s.at("seq_len"), 1024);
    EXPECT_EQ(at_s.at("resident_bytes").size(), nodes) << placement;
    const auto& results = j.at("results");
    ASSERT_EQ(results.size(), 2u) << placement;  // dense, c=8
    for (const auto& row : results) {
      const std::string what = placement + " " + row.at("method").get<std::string>();
      const auto per_node = row.at("bytes_per_node").get<std::vector<double>>();
      ASSERT_EQ(per_node.size(), nodes) << what;
      const double bytes = row.at("bytes").get<double>();
      ASSERT_GT(bytes, 0.0) << what;
      const double sum = std::accumulate(per_node.begin(), per_node.end(), 0.0);
      EXPECT_NEAR(sum, bytes, 0.01 * bytes) << what;
      for (const char* key : {"resident_share", "model_share"}) {
        ASSERT_TRUE(row.at(key).is_array()) << what << " " << key << ": " << row.at(key);
        const auto share = row.at(key).get<std::vector<double>>();
        ASSERT_EQ(share.size(), nodes) << what << " " << key;
        EXPECT_NEAR(std::accumulate(share.begin(), share.end(), 0.0), 1.0, 1e-6) << what << " " << key;
        for (double s : share) EXPECT_TRUE(s >= 0.0 && s <= 1.0) << what << " " << key << "=" << s;
      }
    }
  }
}

TEST_F(RooflinePlacementCli, CsvHasOneBytesPerNodeColumn) {
  const std::size_t nodes = numa_nodes();
  const auto r = sparq(tiny("interleave", {"--csv"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines;
  for (std::size_t at = 0; at < r.out.size();) {
    const std::size_t eol = r.out.find('\n', at);
    lines.push_back(r.out.substr(at, eol - at));
    at = eol == std::string::npos ? r.out.size() : eol + 1;
  }
  ASSERT_EQ(lines.size(), 3u) << r.out;  // header, dense, sparq
  const auto columns = [](const std::string& s) { return std::count(s.begin(), s.end(), ',') + 1; };
  EXPECT_EQ(lines[0].substr(lines[0].rfind(',') + 1), "bytes_per_node") << lines[0];
  for (std::size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(columns(lines[i]), columns(lines[0])) << lines[i];
    const std::string cell = lines[i].substr(lines[i].rfind(',') + 1);
    EXPECT_EQ(std::size_t(std::count(cell.begin(), cell.end(), ':')), nodes) << cell;
    EXPECT_EQ(cell.rfind("n0:", 0), 0u) << cell;
  }
}

TEST_F(RooflinePlacementCli, TextHasAPlacementSection) {
  for (const std::string placement : {"local", "by-head"}) {
    const auto r = sparq(tiny(placement, {}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto at = r.out.find("\nplacement: " + placement + " over ");
    ASSERT_NE(at, std::string::npos) << r.out;
    const std::string section = r.out.substr(at);
    for (const char* part : {"node0", "(model ", "dense ", "sparq c=8 "})
      EXPECT_NE(section.find(part), std::string::npos) << part << " missing from:\n" << section;
  }
}

}  // namespace
}  // namespace sparq::test
