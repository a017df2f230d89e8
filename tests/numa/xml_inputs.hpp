// XML topologies as users hand them to us: lstopo's export and hand-edited copies of it, plus
// a probe that asks hwloc itself, without sparq's clean-up, whether it can read a text.
#pragma once

#include <gtest/gtest.h>
#include <hwloc.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "numa_fakes.hpp"
#include "sparq/topology.hpp"
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

namespace sparq::test {

// `lstopo-no-graphics --input "node:2 core:2 pu:1" --of xml` from Debian 12's hwloc-nox 2.9.0;
// its minimal exporter and libxml2's (HWLOC_LIBXML=0/1) write the same bytes (diffed).
inline const char* const kLstopoExport = "lstopo_node2_core2.xml";

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.is_open()) << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Whether hwloc's active parser reads this text as given.
inline bool hwloc_reads(const std::string& xml) {
#if defined(__SANITIZE_ADDRESS__)
  // hwloc 2.9.0's minimal parser leaks the object it is reading when it rejects that object's
  // tag (single quotes, "</object >"); sparq's loader never hands it such text, this probe does.
  const __lsan::ScopedDisabler hwloc_leaks_here;
#endif
  hwloc_topology_t t = nullptr;
  if (hwloc_topology_init(&t) != 0) return false;
  const bool ok = hwloc_topology_set_xmlbuffer(t, xml.c_str(), static_cast<int>(xml.size() + 1)) == 0 &&
                  hwloc_topology_load(t) == 0;
  hwloc_topology_destroy(t);
  return ok;
}

inline std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
  return s;
}

struct XmlVariant {
  std::string name;
  std::string text;
};

// Edits a person, an editor or a C++ raw string literal makes to an export: each means the same
// topology to a reader, and hwloc's minimal parser rejects each as it stands.
inline std::vector<XmlVariant> hand_edited(const std::string& xml) {
  const std::string top = "<topology version=\"2.0\">";
  return {
      {"comment before <topology>", replace_all(xml, top, "<!-- our 2-node test box -->\n" + top)},
      {"comments between elements",
       replace_all(xml, "<object type=\"Core\"", "<!-- a core\n     over two lines -->\n<object type=\"Core\"")},
      {"CRLF line ends", replace_all(xml, "\n", "\r\n")},
      {"UTF-8 byte-order mark", "\xEF\xBB\xBF" + xml},
      {"blank lines in the prolog",
       replace_all(replace_all(xml, "?>\n", "?>\n\n"), "\">\n<topology", "\">\n\n<topology")},
      {"newline before the declaration", "\n" + xml},
      {"declaration and root on one line",
       replace_all(replace_all(xml, "?>\n", "?>"), "\">\n<topology", "\"><topology")},
      {"tags over several lines", replace_all(xml, "<object type=", "<object\n\t\ttype=")},
      {"single quotes and spaces around '='", replace_all(xml, "type=\"NUMANode\"", "type = 'NUMANode'")},
      {"'>' in a value", replace_all(xml, "value=\"lstopo-no-graphics\"", "value=\"lstopo > x.xml\"")},
      {"space before '>' in end tags", replace_all(xml, "</object>", "</object >")},
  };
}

// What lstopo exports for "node:2 core:2 pu:1": two nodes of 1 GiB (hwloc's synthetic
// default), each with 2 cores of 1 PU. `load` returns the Topology; an error fails this case only.
template <class Load>
void expect_node2_core2(Load load, const std::string& context) {
  Topology t;
  try {
    t = load();
  } catch (const std::exception& e) {
    ADD_FAILURE() << context << ": " << e.what();
    return;
  }
  ASSERT_EQ(t.nodes.size(), 2u) << context;
  EXPECT_EQ(t.source, Topology::Source::xml) << context;
  EXPECT_EQ(t.cores, 4u) << context;
  EXPECT_EQ(t.pus, 4u) << context;
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(t.nodes[i].os_index, i) << context;
    EXPECT_EQ(t.nodes[i].cores, 2u) << "node " << i << ", " << context;
    EXPECT_EQ(t.nodes[i].pus, 2u) << "node " << i << ", " << context;
    EXPECT_EQ(t.nodes[i].memory_bytes, 1ull << 30) << "node " << i << ", " << context;
  }
}

}  // namespace sparq::test
