// Topology from this system, synthetic strings and hwloc XML files.
#include "sparq/topology.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <numeric>

#include "numa/synthetic.hpp"
#include "numa_fakes.hpp"
#include "sparq/error.hpp"
#include "xml_inputs.hpp"

namespace sparq {
namespace {

constexpr std::uint64_t kGiB = 1ull << 30;

std::size_t sum_cores(const Topology& t) {
  return std::accumulate(t.nodes.begin(), t.nodes.end(), std::size_t{0},
                         [](std::size_t s, const NumaNodeInfo& n) { return s + n.cores; });
}

TEST(Topology, ThisSystemHasNodesCoresAndCaches) {
  const Topology& t = Topology::this_system();
  ASSERT_FALSE(t.nodes.empty());
  EXPECT_EQ(t.source, Topology::Source::this_system) << (t.warnings.empty() ? "" : t.warnings[0]);
  EXPECT_GE(t.cores, 1u);
  EXPECT_GE(t.pus, t.cores);
  EXPECT_EQ(sum_cores(t), t.cores) << "every core belongs to exactly one node";
  EXPECT_GT(t.memory_bytes, 0u);
  EXPECT_EQ(&t, &Topology::this_system()) << "loaded once and cached";
  EXPECT_EQ(t.node_by_os_index(t.nodes[0].os_index), 0u);
}

class SyntheticNodes : public ::testing::TestWithParam<std::size_t> {};

TEST_P(SyntheticNodes, NodesCoresAndMemory) {
  const std::size_t n = GetParam();
  const Topology t = Topology::from_synthetic("node:" + std::to_string(n) + " core:4 pu:2");
  EXPECT_EQ(t.source, Topology::Source::synthetic);
  ASSERT_EQ(t.nodes.size(), n);
  EXPECT_EQ(t.cores, 4 * n);
  EXPECT_EQ(t.pus, 8 * n);
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(t.nodes[i].os_index, i) << "node " << i;
    EXPECT_EQ(t.nodes[i].logical_index, i) << "node " << i;
    EXPECT_EQ(t.nodes[i].cores, 4u) << "node " << i;
    EXPECT_EQ(t.nodes[i].pus, 8u) << "node " << i;
    EXPECT_EQ(t.nodes[i].memory_bytes, kGiB) << "hwloc's synthetic default, node " << i;
  }
  EXPECT_EQ(t.memory_bytes, n * kGiB);
}

INSTANTIATE_TEST_SUITE_P(Topology, SyntheticNodes, ::testing::Values(1, 2, 4, 8));

TEST(Topology, SyntheticWithPackagesAndCaches) {
  const Topology t =
      Topology::from_synthetic("pack:2 node:1 l3:1(size=32MiB) l2:4(size=1MiB) l1d:1(size=48KiB) core:1 pu:2");
  EXPECT_EQ(t.packages, 2u);
  ASSERT_EQ(t.nodes.size(), 2u);
  EXPECT_EQ(t.nodes[1].cores, 4u);
  ASSERT_EQ(t.caches.size(), 3u);
  EXPECT_EQ(t.caches[0].name, "L1d");
  EXPECT_EQ(t.caches[0].size_bytes, 48u << 10);
  EXPECT_EQ(t.caches[0].count, 8u);
  EXPECT_EQ(t.caches[1].name, "L2");
  EXPECT_EQ(t.caches[1].size_bytes, 1u << 20);
  EXPECT_EQ(t.caches[2].name, "L3");
  EXPECT_EQ(t.caches[2].size_bytes, 32u << 20);
  EXPECT_EQ(t.caches[2].count, 2u);
}

TEST(Topology, FriendlySyntheticSpellings) {
  struct Case {
    const char* in;
    const char* hwloc;
  };
  const Case cases[] = {
      {"node:2 core:4 pu:1", "node:2 core:4 pu:1"},
      {"nodes=2, cores=4", "node:2 core:4 pu:1"},
      {"Sockets:2; NUMA:1 Cores:8 Threads:2", "pack:2 node:1 core:8 pu:2"},
      {"pack:2 [numa] core:4 pu:1", "pack:2 [numa] core:4 pu:1"},
      {"node:2 l3:1(size=32MB) core:4", "node:2 l3:1(size=32MB) core:4 pu:1"},
  };
  for (const Case& c : cases) EXPECT_EQ(numa::translate_synthetic(c.in), c.hwloc) << c.in;
  const Topology t = Topology::from_synthetic("sockets=2, numa=1, cores=3");
  ASSERT_EQ(t.nodes.size(), 2u);
  EXPECT_EQ(t.nodes[0].cores, 3u);
  EXPECT_EQ(t.nodes[0].pus, 3u);
}

TEST(Topology, BadSyntheticStringsNameTheProblem) {
  struct Case {
    const char* in;
    const char* says;
  };
  const Case cases[] = {
      {"", "empty"},
      {"node:0 core:1", "count 0"},
      {"bogus:2 core:1", "unknown level 'bogus'"},
      {"node:2 core:x", "no count"},
      {"node:2 core:4x", "unexpected 'x'"},
      {"node 2", "not of the form level:count"},
      {"node:2 core:4 (pu:1", "unbalanced"},
      {"node:2 core:2 pu:1 pu:1", "rejected by hwloc"},  // well-formed tokens, two PU levels
  };
  for (const Case& c : cases) {
    try {
      (void)Topology::from_synthetic(c.in);
      ADD_FAILURE() << "no error for '" << c.in << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument) << c.in;
      EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << "'" << c.in << "': " << e.what();
      EXPECT_NE(std::string(e.what()).find(c.in), std::string::npos) << "message quotes the input: " << e.what();
    }
  }
}

TEST(Topology, UnevenNodesFromXml) {
  const Topology t = Topology::from_xml_file(test::numa_data("uneven_6_2.xml"));
  EXPECT_EQ(t.source, Topology::Source::xml);
  ASSERT_EQ(t.nodes.size(), 2u);
  EXPECT_EQ(t.nodes[0].cores, 6u);
  EXPECT_EQ(t.nodes[0].pus, 12u);
  EXPECT_EQ(t.nodes[0].memory_bytes, 32 * kGiB);
  EXPECT_EQ(t.nodes[1].cores, 2u);
  EXPECT_EQ(t.nodes[1].pus, 4u);
  EXPECT_EQ(t.nodes[1].memory_bytes, 16 * kGiB);
  EXPECT_EQ(t.memory_bytes, 48 * kGiB);
  EXPECT_EQ(t.packages, 2u);
  ASSERT_EQ(t.caches.size(), 3u);
  EXPECT_EQ(t.caches[2].count, 2u);
  EXPECT_EQ(t.caches[0].count, 8u);
}

TEST(Topology, MemoryOnlyNodeHasNoCores) {
  const Topology t = Topology::load(test::numa_data("cpuless_node.xml"));
  ASSERT_EQ(t.nodes.size(), 3u);
  const std::size_t cxl = t.node_by_os_index(2);
  ASSERT_LT(cxl, t.nodes.size());
  EXPECT_EQ(t.nodes[cxl].cores, 0u);
  EXPECT_EQ(t.nodes[cxl].pus, 0u);
  EXPECT_EQ(t.nodes[cxl].memory_bytes, 64 * kGiB);
  EXPECT_EQ(t.nodes[t.node_by_os_index(0)].cores, 4u);
  EXPECT_EQ(t.nodes[t.node_by_os_index(1)].cores, 4u);
  EXPECT_EQ(sum_cores(t), 8u);
  EXPECT_EQ(t.node_by_os_index(7), t.nodes.size());
}

TEST(Topology, XmlStringEqualsXmlFile) {
  std::ifstream in(test::numa_data("uneven_6_2.xml"));
  const std::string xml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const Topology a = Topology::from_xml_string(xml), b = Topology::from_xml_file(test::numa_data("uneven_6_2.xml"));
  ASSERT_EQ(a.nodes.size(), b.nodes.size());
  for (std::size_t i = 0; i < a.nodes.size(); ++i) EXPECT_EQ(a.nodes[i].cores, b.nodes[i].cores);
}

// The same inputs as sparq_numa_minimal_xml_test, through the parser hwloc picks by default:
// libxml2's where Debian's libhwloc-plugins is installed.
TEST(Topology, XmlExportsLoadWithLibxml2) {
  const std::string xml = test::read_text(test::numa_data(test::kLstopoExport));
  if (!test::hwloc_reads(test::hand_edited(xml).front().text))
    GTEST_SKIP() << "hwloc has no libxml2 XML parser here (Debian's libhwloc-plugins is not installed; "
                    "tools/install-deps.sh installs it); sparq_numa_minimal_xml_test covers the minimal one";
  test::expect_node2_core2([] { return Topology::from_xml_file(test::numa_data(test::kLstopoExport)); }, "lstopo");
  for (const test::XmlVariant& v : test::hand_edited(xml))
    test::expect_node2_core2([&] { return Topology::from_xml_string(v.text); }, v.name);
}

TEST(Topology, BadFilesAreReportedAsBadFile) {
  try {
    (void)Topology::from_xml_file("/nonexistent/topology.xml");
    ADD_FAILURE() << "no error for a missing file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::bad_file);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/topology.xml"), std::string::npos) << e.what();
  }
  const auto path = std::filesystem::temp_directory_path() / "sparq_numa_not_a_topology.xml";
  std::ofstream(path) << "<html>not a topology</html>\n";
  try {
    (void)Topology::load(path.string());
    ADD_FAILURE() << "no error for a non-topology file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::bad_file);
    EXPECT_NE(std::string(e.what()).find("lstopo --of xml"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
  EXPECT_THROW((void)Topology::from_xml_string("garbage"), Error);
}

TEST(Topology, LoadDispatchesOnTheSpec) {
  EXPECT_EQ(Topology::load("").source, Topology::this_system().source);
  EXPECT_EQ(Topology::load("this").source, Topology::Source::this_system);
  EXPECT_EQ(Topology::load("node:2 core:2 pu:1").nodes.size(), 2u);
  EXPECT_THROW((void)Topology::load("missing-file.xml"), Error);
}

}  // namespace
}  // namespace sparq
