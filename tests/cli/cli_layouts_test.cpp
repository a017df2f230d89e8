// `sparq layouts` and `sparq roofline --layout/--d-major-type` end to end on tiny
// problems: every storage variant runs, counted bytes are the exact figures of the
// storage (int8 halves stage 1 plus one line of scales per block, fused moves the same
// stage-2 bytes as one run per position), the derived columns follow from the row's own
// figures, a recommendation names a measured row, and bad options exit 2 naming the
// option. Times are never compared with a target.
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_fixture.hpp"

namespace sparq::test {
namespace {

// S = 1k, 32/8 heads, d = 128, bf16, c = 8: r = 16, k = 64; 4 blocks of 256 per head.
const std::vector<std::string> kTiny = {"layouts", "--seq-len",     "1k", "--repeats",   "2",  "--threads",
                                        "1",       "--working-set", "8M", "--bw-buffer", "16M"};
constexpr std::uint64_t kHeads = 8, kS = 1024, kR = 16, kK = 64, kRow = 128 * 2;

class LayoutsCli : public CliTest {
 protected:
  nlohmann::json json(std::vector<std::string> extra) const {
    std::vector<std::string> args = kTiny;
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back("--json");
    const auto r = sparq(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out.empty() ? "{}" : r.out);
  }
};

TEST_F(LayoutsCli, ComparesEveryLayoutWithAndWithoutTheInt8Copy) {
  const auto j = json({});
  ASSERT_TRUE(j.contains("results"));
  std::map<std::string, nlohmann::json> by_variant;
  for (const auto& row : j.at("results")) by_variant[row.at("variant")] = row;
  for (const char* v : {"both", "both+int8", "s-major", "d-major", "fused", "fused+int8"})
    EXPECT_TRUE(by_variant.count(v)) << v;
  EXPECT_EQ(j.at("results").size(), 6u);
  ASSERT_EQ(j.at("notes").size(), 1u);  // d-major+int8: no S-major copy to fetch exact keys from
  EXPECT_NE(j.at("notes")[0].get<std::string>().find("d-major+int8"), std::string::npos);

  const double bw = j.at("machine").at("read_gb_per_s_before");
  ASSERT_GT(bw, 0.0);
  for (const auto& [name, row] : by_variant) {
    const double sparq_s = row.at("sparq_seconds"), dense_s = row.at("dense_seconds");
    const double sparq_b = row.at("sparq_bytes"), dense_b = row.at("dense_bytes");
    EXPECT_NEAR(row.at("sparq_gb_per_s").get<double>(), sparq_b / sparq_s * 1e-9, 1e-9 * sparq_b / sparq_s) << name;
    EXPECT_NEAR(row.at("sparq_bandwidth_fraction").get<double>(), sparq_b / sparq_s * 1e-9 / bw, 1e-9) << name;
    EXPECT_NEAR(row.at("dense_bandwidth_fraction").get<double>(), dense_b / dense_s * 1e-9 / bw, 1e-9) << name;
    EXPECT_NEAR(row.at("speedup_vs_dense").get<double>(), dense_s / sparq_s, 1e-9 * dense_s / sparq_s) << name;
    EXPECT_EQ(row.at("stage1_bytes").get<std::uint64_t>() + row.at("topk_bytes").get<std::uint64_t>() +
                  row.at("stage2_bytes").get<std::uint64_t>(),
              row.at("sparq_bytes").get<std::uint64_t>())
        << name;
    // Dense reads every key and value once, whichever rows hold them.
    if (name != "d-major") {
      EXPECT_EQ(row.at("dense_bytes").get<std::uint64_t>(), kHeads * kS * 2 * kRow) << name;
    }
  }
  // Exact counts where both key copies exist: stage 1 reads r rows of the d-major copy
  // (bf16, or int8 plus one line of 16 f32 scales per block), stage 2 k keys and values.
  for (const char* v : {"both", "fused"}) {
    EXPECT_EQ(by_variant[v].at("stage1_bytes").get<std::uint64_t>(), kHeads * kR * kS * 2) << v;
    EXPECT_EQ(by_variant[v].at("memory_overhead").get<double>(), 0.5) << v;
  }
  for (const char* v : {"both+int8", "fused+int8"}) {
    EXPECT_EQ(by_variant[v].at("stage1_bytes").get<std::uint64_t>(), kHeads * (kR * kS + 4 * 64)) << v;
    EXPECT_EQ(by_variant[v].at("memory_overhead").get<double>(), 0.25) << v;  // int8 K copy: half of K
  }
  for (const char* v : {"both", "fused", "both+int8", "fused+int8"}) {
    EXPECT_EQ(by_variant[v].at("stage2_bytes").get<std::uint64_t>(), kHeads * kK * 2 * kRow) << v;
    EXPECT_EQ(by_variant[v].at("sparq_bytes"), by_variant[v].at("model_bytes")) << v;
  }
  EXPECT_EQ(by_variant["s-major"].at("memory_overhead").get<double>(), 0.0);
  // The recommendation names a measured configuration, with its reason.
  ASSERT_EQ(j.at("recommendations").size(), 1u);
  const auto& rec = j.at("recommendations")[0];
  const std::string chosen =
      rec.at("layout").get<std::string>() + (rec.at("d_major_type") == "int8" ? std::string("+int8") : std::string());
  EXPECT_TRUE(by_variant.count(chosen)) << chosen;
  EXPECT_EQ(rec.at("block_tokens"), 256);
  EXPECT_NE(rec.at("line").get<std::string>().find("fastest SparQ"), std::string::npos) << rec.at("line");
}

TEST_F(LayoutsCli, SelectsVariantsAndBlockSizes) {
  const auto j = json({"--layouts", "fused", "--d-major-types", "int8", "--block-tokens", "64,256"});
  ASSERT_EQ(j.at("results").size(), 2u);
  for (const auto& row : j.at("results")) {
    EXPECT_EQ(row.at("variant"), "fused+int8");
    // 64-token blocks: 16 blocks per head, each with a line of scales.
    const std::uint64_t blocks = kS / row.at("block_tokens").get<std::uint64_t>();
    EXPECT_EQ(row.at("stage1_bytes").get<std::uint64_t>(), kHeads * (kR * kS + blocks * 64)) << row.at("block_tokens");
  }
  EXPECT_TRUE(j.at("notes").empty());
}

TEST_F(LayoutsCli, TextTableAndRecommendation) {
  std::vector<std::string> args = kTiny;
  args.insert(args.end(), {"--layouts", "both,fused"});
  const auto r = sparq(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* needle : {"fused+int8", "both+int8", "read bandwidth", "%BW", "bytes per call", "recommendation: "})
    EXPECT_NE(r.out.find(needle), std::string::npos) << needle << "\n" << r.out;
}

TEST_F(LayoutsCli, BadOptionsExit2NamingTheOption) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--layouts", "diagonal"}, "--layouts"},
      {{"--d-major-types", "fp8"}, "--d-major-types"},
      {{"--layouts", "d-major", "--d-major-types", "int8"}, "int8"},
      {{"--block-tokens", "0"}, "--block-tokens"},
      {{"--bw-buffer", "1k"}, "--bw-buffer"},
  };
  for (const auto& [extra, needle] : cases) {
    std::vector<std::string> args = {"layouts"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = sparq(args);
    EXPECT_EQ(r.exit_code, 2) << extra[0] << ": " << r.err;
    EXPECT_EQ(r.err.rfind("sparq layouts: error:", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << needle << ": " << r.err;
  }
}

TEST_F(LayoutsCli, RooflineModelsTheFusedRowsAndTheInt8Copy) {
  const auto r = sparq({"roofline", "--seq-lens", "1k", "--repeats", "2", "--threads", "1", "--bw-buffer", "16M",
                        "--working-set", "32M", "--layout", "fused", "--d-major-type", "int8", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("config").at("layout"), "fused");
  EXPECT_EQ(j.at("config").at("d_major_type"), "int8");
  bool saw_sparq = false;
  for (const auto& row : j.at("results")) {
    // Counted bytes equal the model for this storage (int8 stage 1 with its scales).
    EXPECT_EQ(row.at("bytes"), row.at("model_bytes")) << row.at("method");
    if (row.at("method") != "sparq") continue;
    saw_sparq = true;
    EXPECT_EQ(row.at("bytes").get<std::uint64_t>(), kHeads * (kR * kS + 4 * 64 + kK * 2 * kRow));
    for (const auto& s : row.at("scattered_read"))
      if (s.at("what") == "stage2") {
        EXPECT_EQ(s.at("run_bytes"), 2 * kRow);  // key | value: one run
      }
  }
  EXPECT_TRUE(saw_sparq);
  const auto bad = sparq({"roofline", "--layout", "s-major"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("--layout"), std::string::npos) << bad.err;
  const auto bad_type = sparq({"roofline", "--d-major-type", "fp8"});
  EXPECT_EQ(bad_type.exit_code, 2) << bad_type.err;
  EXPECT_NE(bad_type.err.find("--d-major-type"), std::string::npos) << bad_type.err;
}

}  // namespace
}  // namespace sparq::test
