// XML topologies under hwloc's minimal XML parser, the only one a machine without Debian's
// libhwloc-plugins has: this whole binary forces it, so our data files, lstopo's exports and
// hand-edited copies must load the way they do on a fresh machine.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "../cli/run_process.hpp"
#include "sparq/error.hpp"
#include "xml_inputs.hpp"

namespace sparq::test {
namespace {

// hwloc reads HWLOC_LIBXML once, at its first XML import, so set it before main. It outranks
// HWLOC_LIBXML_IMPORT, which a caller's environment might set.
const bool minimal_parser_forced = ::setenv("HWLOC_LIBXML", "0", 1) == 0;

constexpr std::uint64_t kGiB = 1ull << 30;

TEST(TopologyMinimalXml, IsTheParserInForce) {
  ASSERT_TRUE(minimal_parser_forced);
  const std::string xml = read_text(numa_data(kLstopoExport));
  ASSERT_TRUE(hwloc_reads(xml)) << "hwloc cannot read lstopo's own export";
  EXPECT_FALSE(hwloc_reads(hand_edited(xml).front().text))
      << "hwloc read an XML comment, so HWLOC_LIBXML=0 did not select its minimal parser and this binary "
         "tests the libxml2 one";
}

TEST(TopologyMinimalXml, OurDataFilesLoad) {
  const Topology uneven = Topology::from_xml_file(numa_data("uneven_6_2.xml"));
  ASSERT_EQ(uneven.nodes.size(), 2u);
  EXPECT_EQ(uneven.nodes[0].cores, 6u);
  EXPECT_EQ(uneven.nodes[0].pus, 12u);
  EXPECT_EQ(uneven.nodes[0].memory_bytes, 32 * kGiB);
  EXPECT_EQ(uneven.nodes[1].cores, 2u);
  EXPECT_EQ(uneven.nodes[1].pus, 4u);
  EXPECT_EQ(uneven.nodes[1].memory_bytes, 16 * kGiB);
  EXPECT_EQ(uneven.packages, 2u);
  ASSERT_EQ(uneven.caches.size(), 3u);
  EXPECT_EQ(uneven.caches[2].size_bytes, 32u << 20);

  const Topology cxl = Topology::load(numa_data("cpuless_node.xml"));
  ASSERT_EQ(cxl.nodes.size(), 3u);
  for (unsigned os : {0u, 1u}) EXPECT_EQ(cxl.nodes[cxl.node_by_os_index(os)].cores, 4u) << "node " << os;
  const std::size_t memory_only = cxl.node_by_os_index(2);
  ASSERT_LT(memory_only, cxl.nodes.size());
  EXPECT_EQ(cxl.nodes[memory_only].cores, 0u);
  EXPECT_EQ(cxl.nodes[memory_only].memory_bytes, 64 * kGiB);
}

TEST(TopologyMinimalXml, LstopoExportLoads) {
  expect_node2_core2([] { return Topology::from_xml_file(numa_data(kLstopoExport)); }, "file");
  expect_node2_core2([] { return Topology::from_xml_string(read_text(numa_data(kLstopoExport))); }, "string");
}

// This machine's lstopo, with each of hwloc's exporters (libxml2's only where the plugin is).
TEST(TopologyMinimalXml, LiveLstopoExportsLoad) {
  const auto dir = std::filesystem::temp_directory_path();
  for (const char* libxml : {"HWLOC_LIBXML=0", "HWLOC_LIBXML=1"}) {
    const auto path = dir / ("sparq_lstopo_" + std::to_string(::getpid()) + "_" + libxml[13] + ".xml");
    const auto r = run_process(
        "/usr/bin/env",
        {libxml, "lstopo-no-graphics", "--input", "node:2 core:2 pu:1", "--of", "xml", "--force", path.string()}, dir);
    ASSERT_EQ(r.exit_code, 0) << libxml << ": lstopo-no-graphics (Debian's hwloc-nox, installed by "
                              << "tools/install-deps.sh) failed: " << r.err;
    expect_node2_core2([&] { return Topology::from_xml_file(path.string()); }, libxml);
    std::filesystem::remove(path);
  }
}

TEST(TopologyMinimalXml, HandEditedExportsLoad) {
  const std::string xml = read_text(numa_data(kLstopoExport));
  const auto path =
      std::filesystem::temp_directory_path() / ("sparq_hand_edited_" + std::to_string(::getpid()) + ".xml");
  for (const XmlVariant& v : hand_edited(xml)) {
    EXPECT_FALSE(hwloc_reads(v.text)) << v.name << ": hwloc reads it as it is, so this case tests nothing";
    expect_node2_core2([&] { return Topology::from_xml_string(v.text); }, v.name + " (string)");
    std::ofstream(path, std::ios::binary) << v.text;
    expect_node2_core2([&] { return Topology::from_xml_file(path.string()); }, v.name + " (file)");
  }
  std::filesystem::remove(path);
}

TEST(TopologyMinimalXml, ErrorsNameTheFileAndWhatIsWrong) {
  const std::string xml = read_text(numa_data(kLstopoExport));
  struct Case {
    const char* name;
    std::string text;
    const char* says;
  };
  const Case cases[] = {
      {"unterminated comment", replace_all(xml, "<topology ", "<!-- no end\n<topology "),
       "never ends ('<!--' on line 3"},
      {"only a comment", "<?xml version=\"1.0\"?>\n<!-- nothing -->\n", "holds no XML element"},
      {"empty", "", "holds no XML element"},
      {"html", "<html><body>not a topology</body></html>", "it starts with '<html'"},
      {"not XML", "node:2 core:2", "it starts with 'node:2'"},
      {"broken topology", replace_all(xml, "</topology>", ""), "hwloc " HWLOC_VERSION " can read"},
  };
  const auto path =
      std::filesystem::temp_directory_path() / ("sparq_bad_topology_" + std::to_string(::getpid()) + ".xml");
  for (const Case& c : cases) {
    std::ofstream(path, std::ios::binary) << c.text;
    try {
      (void)Topology::from_xml_file(path.string());
      ADD_FAILURE() << c.name << ": no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::bad_file) << c.name;
      EXPECT_NE(std::string(e.what()).find("topology file '" + path.string() + "'"), std::string::npos)
          << c.name << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << c.name << ": " << e.what();
    }
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace sparq::test
