// `sparq roofline` end to end on tiny problems (`sparq layouts`: tests/cli/cli_layouts_test.cpp):
// --json parses, has its documented fields, and every derived figure is consistent with the row's own
// (bytes equal to DESIGN §1's model, GB/s = bytes / time, % = GB/s / the ceiling,
// speed-ups, floors); --csv has a header, --plot writes an SVG, bad options exit 2 with
// a one-line error naming the option. Times are never compared with a target.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace {

struct Result {
  int exit_code = -1;
  std::string out, err;
};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `prefix SPARQ_CLI_PATH args` through the shell; args are trusted test literals.
Result run(const std::string& args, const std::string& prefix = "") {
  const auto dir = std::filesystem::temp_directory_path();
  const auto err_file = dir / ("sparq_profile_cli_" + std::to_string(getpid()) + ".err");
  const std::string cmd = prefix + " '" + std::string(SPARQ_CLI_PATH) + "' " + args + " 2>'" + err_file.string() + "'";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = slurp(err_file);
  std::filesystem::remove(err_file);
  return r;
}

// Small and quick: 1 thread, 16 MiB read buffer, 32 MiB rotation (first touch of fresh
// memory is slow in some VMs: ~1 s for 64 MiB here).
const std::string kTinyRoofline = "roofline --seq-lens 1k --repeats 2 --threads 1 --bw-buffer 16M --working-set 32M";

TEST(RooflineCli, JsonHasTheDocumentedFields) {
  const Result r = run(kTinyRoofline + " --heads 8/2 --head-dim 64 --ratio 4,8 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("tool"), "roofline");
  const auto& m = j.at("machine");
  for (const char* key :
       {"cpu_model", "cores", "hardware_threads", "numa_nodes", "llc_bytes", "isa", "threads", "read_buffer_bytes",
        "read_bandwidth", "read_gb_per_s_before", "read_gb_per_s_after", "fma_peak_gflops", "ridge_intensity"})
    EXPECT_TRUE(m.contains(key)) << key;
  EXPECT_EQ(m.at("threads"), 1);
  ASSERT_TRUE(j.contains("placement"));
  EXPECT_EQ(j.at("placement").at("policy"), "local");
  EXPECT_EQ(j.at("placement").at("numa_nodes"), m.at("numa_nodes"));
  // The ceilings the rows divide by: the 1-thread read bandwidth measured before the
  // runs, and the ridge where it meets the FMA peak.
  const double read_bw = m.at("read_gb_per_s_before").get<double>();
  ASSERT_EQ(m.at("read_bandwidth").size(), 1u);
  EXPECT_EQ(m.at("read_bandwidth")[0].at("threads"), 1);
  EXPECT_EQ(m.at("read_bandwidth")[0].at("gb_per_s").get<double>(), read_bw);
  EXPECT_NEAR(m.at("ridge_intensity").get<double>(), m.at("fma_peak_gflops").get<double>() / read_bw,
              1e-12 * m.at("ridge_intensity").get<double>());
  const auto& results = j.at("results");
  ASSERT_EQ(results.size(), 3u);  // dense, c=4, c=8
  for (const auto& row : results) {
    for (const char* key : {"seq_len",
                            "method",
                            "ratio",
                            "r",
                            "k",
                            "window",
                            "reallocation",
                            "layers",
                            "working_set_bytes",
                            "repeats",
                            "median_seconds",
                            "min_seconds",
                            "gb_per_s",
                            "bandwidth_fraction",
                            "gflops",
                            "intensity",
                            "bytes",
                            "model_bytes",
                            "flops",
                            "speedup_vs_dense",
                            "byte_ratio_vs_dense",
                            "phases",
                            "scattered_read",
                            "floor_seconds",
                            "floor_fraction",
                            "speedup_bound",
                            "bytes_per_node",
                            "resident_share",
                            "model_share"})
      EXPECT_TRUE(row.contains(key)) << key;
    EXPECT_EQ(row.at("seq_len"), 1024);
    EXPECT_EQ(row.at("repeats"), 2);
    EXPECT_GE(row.at("layers").get<int>(), 2);
    // The bytes the kernels counted are exactly DESIGN §1's model here (whole cache
    // lines: 512-byte d-major runs, 128-byte K and V rows).
    EXPECT_EQ(row.at("bytes").get<std::uint64_t>(), row.at("model_bytes").get<std::uint64_t>()) << row.at("method");
    // Every derived column is what its definition says, from the row's own figures.
    const double t = row.at("median_seconds").get<double>(), bytes = row.at("bytes").get<double>(),
                 flops = row.at("flops").get<double>(), gbs = row.at("gb_per_s").get<double>();
    EXPECT_GT(t, 0.0);
    EXPECT_LE(row.at("min_seconds").get<double>(), t);
    EXPECT_NEAR(gbs, bytes / t * 1e-9, 1e-9 * gbs);
    EXPECT_NEAR(row.at("bandwidth_fraction").get<double>(), gbs / read_bw, 1e-9);
    EXPECT_NEAR(row.at("gflops").get<double>(), flops / t * 1e-9, 1e-9 * row.at("gflops").get<double>());
    EXPECT_NEAR(row.at("intensity").get<double>(), flops / bytes, 1e-12 * flops / bytes);
    EXPECT_NEAR(row.at("floor_fraction").get<double>(), row.at("floor_seconds").get<double>() / t, 1e-9);
    double phase_bytes = 0;
    for (const auto& [name, phase] : row.at("phases").items()) phase_bytes += phase.at("bytes").get<double>();
    EXPECT_NEAR(phase_bytes, bytes, 0.5) << "the phases' bytes add up to the row's";
  }
  // Speed-up and byte ratio: dense's figures over each row's, at the same S.
  for (const auto& row : results) {
    const double t = row.at("median_seconds").get<double>();
    EXPECT_NEAR(row.at("speedup_vs_dense").get<double>(), results[0].at("median_seconds").get<double>() / t, 1e-9);
    EXPECT_NEAR(row.at("byte_ratio_vs_dense").get<double>(),
                results[0].at("bytes").get<double>() / row.at("bytes").get<double>(), 1e-12);
  }
  EXPECT_EQ(results[0].at("method"), "dense");
  EXPECT_DOUBLE_EQ(results[0].at("speedup_vs_dense").get<double>(), 1.0);
  // Floors: dense at the streaming bandwidth measured after the runs, next to SparQ's
  // scattered patterns, which its stages are held to.
  EXPECT_TRUE(results[0].at("speedup_bound").is_null());
  EXPECT_TRUE(results[0].at("scattered_read").empty());
  EXPECT_NEAR(results[0].at("floor_seconds").get<double>(),
              results[0].at("bytes").get<double>() / (m.at("read_gb_per_s_after").get<double>() * 1e9),
              1e-9 + 1e-6 * results[0].at("floor_seconds").get<double>());
  for (std::size_t i = 1; i < results.size(); ++i) {
    const auto& scattered = results[i].at("scattered_read");
    ASSERT_EQ(scattered.size(), 2u) << i;
    EXPECT_EQ(scattered[0].at("what"), "stage1");
    // One key component over a head's 4 blocks of 256 bf16 tokens, side by side in the
    // cache's d-major area.
    EXPECT_EQ(scattered[0].at("run_bytes"), 4 * 256 * 2);
    EXPECT_EQ(scattered[1].at("what"), "stage2");
    EXPECT_EQ(scattered[1].at("run_bytes"), 64 * 2);  // one K or V row, d = 64
    // The floor: each phase's bytes at the bandwidth of its pattern (stage 1 and 2 at
    // their scattered reads, the rest at the streaming one measured after the runs).
    double floor = 0;
    for (const auto& [name, phase] : results[i].at("phases").items()) {
      double gb = m.at("read_gb_per_s_after").get<double>();
      for (const auto& c : scattered)
        if (c.at("what") == name) gb = c.at("gb_per_s").get<double>();
      floor += phase.at("bytes").get<double>() / (gb * 1e9);
    }
    EXPECT_NEAR(results[i].at("floor_seconds").get<double>(), floor, 1e-9 * floor) << i;
    for (const auto& c : scattered) {
      EXPECT_GT(c.at("gb_per_s").get<double>(), 0.0);
      EXPECT_GE(c.at("runs_per_block").get<std::size_t>(), 1u);
      EXPECT_LE(c.at("runs_per_block").get<std::size_t>() * c.at("run_bytes").get<std::size_t>(),
                c.at("region_bytes").get<std::size_t>());
      EXPECT_GE(c.at("block_stride_bytes").get<std::size_t>(), c.at("region_bytes").get<std::size_t>());
    }
    EXPECT_GT(results[i].at("floor_seconds").get<double>(), 0.0);
    EXPECT_NEAR(results[i].at("speedup_bound").get<double>(),
                results[0].at("floor_seconds").get<double>() / results[i].at("floor_seconds").get<double>(), 1e-9);
  }
  EXPECT_EQ(results[1].at("method"), "sparq");
  EXPECT_EQ(results[2].at("ratio"), 8.0);
  EXPECT_TRUE(j.at("dense_vs_read_bandwidth").contains("before"));
  // The floor's ceilings: streaming right before and right after the scattered patterns,
  // measured again until they agree within 10% (at most 3 sets), flagged otherwise.
  const auto& f = j.at("floor_ceilings");
  const int attempts = f.at("attempts").get<int>();
  EXPECT_GE(attempts, 1);
  EXPECT_LE(attempts, 3);
  const double a = f.at("streaming_before_gb_per_s").get<double>(), b = f.at("streaming_after_gb_per_s").get<double>();
  EXPECT_GT(a, 0.0);
  EXPECT_EQ(b, m.at("read_gb_per_s_after").get<double>());
  EXPECT_EQ(f.at("steady").get<bool>(), std::abs(a - b) <= 0.1 * std::max(a, b));
  if (attempts < 3) {
    EXPECT_TRUE(f.at("steady").get<bool>()) << "stopped after " << attempts << " attempts although unsteady";
  }
  EXPECT_EQ(j.at("interrupted"), false);
}

TEST(RooflineCli, SparqThatFetchesEveryRowHasDensesFloor) {
  // k >= S: SparQ reads exactly dense's rows, as a streaming read: no scattered pattern,
  // the same floor, a speed-up bound of exactly 1.
  const Result r = run(kTinyRoofline + " --k 100000 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto results = nlohmann::json::parse(r.out).at("results");
  ASSERT_EQ(results.size(), 2u);
  EXPECT_TRUE(results[1].at("scattered_read").empty());
  EXPECT_EQ(results[1].at("bytes"), results[0].at("bytes"));
  EXPECT_DOUBLE_EQ(results[1].at("speedup_bound").get<double>(), 1.0);
}

TEST(RooflineCli, CsvHasAHeader) {
  const Result r = run(kTinyRoofline + " --csv");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("seq_len,method,ratio,r,k,window,median_ms,gb_per_s,pct_of_read_bw", 0), 0u) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3);  // header, dense, sparq
}

TEST(RooflineCli, TextShowsMachineAndTable) {
  const Result r = run(kTinyRoofline);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("read bandwidth"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FMA peak"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sparq c=8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("memory floor"), std::string::npos) << r.out;
  EXPECT_TRUE(r.err.empty()) << r.err;  // no progress bar when stderr is not a terminal
}

TEST(RooflineCli, PlotWritesAnSvg) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) GTEST_SKIP() << "gnuplot not installed";
  const auto svg = std::filesystem::temp_directory_path() / ("sparq_roofline_" + std::to_string(getpid()) + ".svg");
  const Result r = run(kTinyRoofline + " --plot '" + svg.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string text = slurp(svg);
  EXPECT_NE(text.find("<svg"), std::string::npos);
  std::filesystem::remove(svg);
}

TEST(RooflineCli, PlotWithoutGnuplotIsAUsageError) {
  const Result r = run(kTinyRoofline + " --plot /tmp/never.svg", "env PATH=/nonexistent");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("gnuplot"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST(RooflineCli, BadOptionsExit2WithOneLine) {
  const std::pair<const char*, const char*> cases[] = {
      {"--seq-lens 0", "--seq-lens"},
      {"--seq-lens 4x", "--seq-lens"},
      {"--seq-lens 2G", "--seq-lens"},
      {"--heads 32/5", "--heads"},
      {"--heads x", "--heads"},
      {"--ratio 0.5", "--ratio"},
      {"--r 0", "--r"},
      {"--r 129", "--r"},
      {"--k 0", "--k"},
      {"--window -1", "--window"},
      {"--threads -1", "--threads"},
      {"--batch 0", "--batch"},
      {"--repeats 0", "--repeats"},
      {"--dtype f64", "--dtype"},
      {"--placement far", "--placement"},
      {"--head-dim 0", "--head-dim"},
      {"--block-tokens 0", "--block-tokens"},
      {"--bw-buffer 1k", "--bw-buffer"},
      {"--json --csv", "--"},
      {"--no-such-option", "--no-such-option"},
  };
  for (const auto& [args, needle] : cases) {
    const Result r = run(std::string("roofline ") + args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.err;
    EXPECT_EQ(r.err.rfind("sparq roofline: error:", 0), 0u) << args << ": " << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << args << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << args;
  }
}

}  // namespace
