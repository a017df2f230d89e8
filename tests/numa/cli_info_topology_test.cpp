// `sparq info --topology`: this machine, synthetic strings and XML files, text and JSON.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../cli/run_process.hpp"

namespace sparq::test {
namespace {

ProcessResult info(const std::vector<std::string>& args) {
  std::vector<std::string> all = {"info"};
  all.insert(all.end(), args.begin(), args.end());
  return run_process(SPARQ_CLI_PATH, all, std::filesystem::temp_directory_path());
}

std::string data(const std::string& name) {
  return std::string(SPARQ_NUMA_TEST_DATA) + "/" + name;
}

TEST(CliInfoTopology, ThisMachineShowsNodesAssignmentAndPlacement) {
  const auto r = info({"--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("topology").at("source"), "this system");
  std::size_t cores = 0;
  for (const auto& n : j.at("numa_nodes")) cores += n.at("cores").get<std::size_t>();
  EXPECT_EQ(cores, j.at("cores").get<std::size_t>());
  EXPECT_EQ(j.at("by_head").at("kv_heads"), 8);
  EXPECT_TRUE(j.at("placement").at("binding_works").is_boolean());
  const auto t = info({});
  EXPECT_NE(t.out.find("by-head:      8 KV heads -> node "), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("placement:    memory binding "), std::string::npos) << t.out;
}

TEST(CliInfoTopology, SyntheticNodes) {
  for (int n : {2, 4, 8}) {
    const auto r = info({"--topology", "node:" + std::to_string(n) + " core:4 pu:1", "--kv-heads", "16", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j.at("topology").at("source"), "synthetic");
    ASSERT_EQ(j.at("numa_nodes").size(), std::size_t(n));
    EXPECT_EQ(j.at("cores"), 4 * n);
    const auto& nodes = j.at("by_head").at("nodes");
    ASSERT_EQ(nodes.size(), std::size_t(n));
    for (const auto& x : nodes) EXPECT_EQ(x.at("head_end").get<int>() - x.at("head_begin").get<int>(), 16 / n);
    EXPECT_FALSE(j.contains("placement")) << "placement probing is for this machine only";
  }
  const auto t = info({"--topology", "node:2 core:4 pu:1"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("numa node 1:  1.0 GiB, 4 cores, 4 hardware threads"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("by-head:      8 KV heads -> node 0: heads 0-3, node 1: heads 4-7"), std::string::npos) << t.out;
}

TEST(CliInfoTopology, XmlWithAMemoryOnlyNode) {
  const auto r = info({"--topology", data("cpuless_node.xml"), "--kv-heads", "6"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("numa node 2:  64.0 GiB, 0 cores, 0 hardware threads"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("6 KV heads -> node 0: heads 0-2, node 1: heads 3-5\n"), std::string::npos) << r.out;
}

// `sparq info` as on a machine without Debian's libhwloc-plugins: hwloc's minimal XML parser only.
ProcessResult info_with_minimal_xml_parser(const std::vector<std::string>& args) {
  std::vector<std::string> all = {"HWLOC_LIBXML=0", SPARQ_CLI_PATH, "info"};
  all.insert(all.end(), args.begin(), args.end());
  return run_process("/usr/bin/env", all, std::filesystem::temp_directory_path());
}

TEST(CliInfoTopology, XmlUnderHwlocsMinimalParser) {
  const auto r = info_with_minimal_xml_parser({"--topology", data("cpuless_node.xml"), "--kv-heads", "6"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("numa node 2:  64.0 GiB, 0 cores, 0 hardware threads"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("6 KV heads -> node 0: heads 0-2, node 1: heads 3-5\n"), std::string::npos) << r.out;
  const auto j = info_with_minimal_xml_parser({"--topology", data("lstopo_node2_core2.xml"), "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const auto nodes = nlohmann::json::parse(j.out).at("numa_nodes");
  ASSERT_EQ(nodes.size(), 2u) << j.out;
  for (const auto& n : nodes) EXPECT_EQ(n.at("cores"), 2) << j.out;
}

TEST(CliInfoTopology, BadTopologiesAreUsageErrors) {
  for (const std::string spec : {"bogus:2", "node:0 core:1", "/nonexistent/topo.xml"}) {
    const auto r = info({"--topology", spec});
    EXPECT_EQ(r.exit_code, 2) << spec;
    EXPECT_NE(r.err.find("sparq info: error: "), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace sparq::test
