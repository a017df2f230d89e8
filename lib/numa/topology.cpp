// Topology from hwloc: this system, an XML export, or a synthetic description.
#include "sparq/topology.hpp"

#include <hwloc.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <thread>

#include "numa/synthetic.hpp"
#include "sparq/error.hpp"

namespace sparq {

namespace {

struct TopologyDeleter {
  void operator()(hwloc_topology* t) const noexcept { hwloc_topology_destroy(t); }
};
using HwlocTopology = std::unique_ptr<hwloc_topology, TopologyDeleter>;

HwlocTopology init_topology() {
  hwloc_topology_t t = nullptr;
  if (hwloc_topology_init(&t) != 0) return nullptr;
  return HwlocTopology(t);
}

std::size_t count_of(hwloc_topology_t t, hwloc_obj_type_t type) {
  const int n = hwloc_get_nbobjs_by_type(t, type);
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

// The node an object with this cpuset is nearest to: among the nodes whose locality
// (cpuset) covers it, the one with the smallest locality, ties to the lower logical
// index. So a machine-wide memory-only node (CXL, attached at the root) never takes the
// cores of a package that has its own node.
std::size_t nearest_node(hwloc_const_cpuset_t cpuset, const std::vector<hwloc_obj_t>& nodes) {
  std::size_t best = nodes.size();
  int best_weight = 0;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (!nodes[i]->cpuset || !hwloc_bitmap_isincluded(cpuset, nodes[i]->cpuset)) continue;
    const int w = hwloc_bitmap_weight(nodes[i]->cpuset);
    if (best == nodes.size() || (w >= 0 && w < best_weight)) {
      best = i;
      best_weight = w;
    }
  }
  return best;
}

Topology extract(hwloc_topology_t t, Topology::Source source, std::string description) {
  Topology topo;
  topo.source = source;
  topo.description = std::move(description);
  topo.packages = count_of(t, HWLOC_OBJ_PACKAGE);
  topo.cores = count_of(t, HWLOC_OBJ_CORE);
  topo.pus = count_of(t, HWLOC_OBJ_PU);
  if (hwloc_obj_t pkg = hwloc_get_obj_by_type(t, HWLOC_OBJ_PACKAGE, 0)) {
    if (const char* model = hwloc_obj_get_info_by_name(pkg, "CPUModel")) {
      topo.cpu_model = model;
      while (!topo.cpu_model.empty() && std::isspace(static_cast<unsigned char>(topo.cpu_model.back())))
        topo.cpu_model.pop_back();
    }
  }

  std::vector<hwloc_obj_t> nodes;
  for (std::size_t i = 0; i < count_of(t, HWLOC_OBJ_NUMANODE); ++i)
    if (hwloc_obj_t n = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, static_cast<unsigned>(i))) nodes.push_back(n);
  for (hwloc_obj_t n : nodes) {
    NumaNodeInfo info;
    info.os_index = n->os_index;
    info.logical_index = n->logical_index;
    info.memory_bytes = n->attr ? n->attr->numanode.local_memory : 0;
    topo.memory_bytes += info.memory_bytes;
    topo.nodes.push_back(info);
  }
  if (topo.nodes.empty()) {
    topo.nodes.push_back({});
    topo.warnings.push_back("hwloc reports no NUMA node: assuming one node holding every core");
  }
  auto attribute = [&](hwloc_obj_type_t type, std::size_t NumaNodeInfo::*field) {
    for (std::size_t i = 0; i < count_of(t, type); ++i) {
      hwloc_obj_t obj = hwloc_get_obj_by_type(t, type, static_cast<unsigned>(i));
      if (!obj || !obj->cpuset) continue;
      const std::size_t n = nodes.empty() ? 0 : nearest_node(obj->cpuset, nodes);
      if (n < topo.nodes.size()) ++(topo.nodes[n].*field);
    }
  };
  attribute(HWLOC_OBJ_CORE, &NumaNodeInfo::cores);
  attribute(HWLOC_OBJ_PU, &NumaNodeInfo::pus);

  const struct {
    hwloc_obj_type_t type;
    const char* name;
    unsigned level;
  } levels[] = {{HWLOC_OBJ_L1CACHE, "L1d", 1},
                {HWLOC_OBJ_L2CACHE, "L2", 2},
                {HWLOC_OBJ_L3CACHE, "L3", 3},
                {HWLOC_OBJ_L4CACHE, "L4", 4},
                {HWLOC_OBJ_L5CACHE, "L5", 5}};
  for (const auto& l : levels) {
    const std::size_t n = count_of(t, l.type);
    hwloc_obj_t obj = n ? hwloc_get_obj_by_type(t, l.type, 0) : nullptr;
    if (obj && obj->attr) topo.caches.push_back({l.name, l.level, obj->attr->cache.size, n});
  }
  return topo;
}

[[noreturn]] void fail(ErrorCode code, const std::string& message) {
  throw Error(code, message);
}

std::string errno_text(int err) {
  return std::strerror(err);
}

// hwloc reads XML with libxml2 only when Debian's libhwloc-plugins is installed; without it
// its minimal parser takes only text laid out as hwloc writes it: no comments, BOM or CR,
// `name="value"` attributes, <?xml?> and <!DOCTYPE> alone on their lines before <topology>.
// Rewrite any well-formed topology into that layout without changing what it means in XML,
// so both parsers read it. `what` names the input in errors.
std::string to_hwloc_xml_layout(std::string_view in, const std::string& what) {
  if (in.starts_with("\xEF\xBB\xBF")) in.remove_prefix(3);  // UTF-8 byte-order mark
  std::string s;
  s.reserve(in.size() + 1);
  bool in_tag = false, space = false;  // space: whitespace inside a tag not yet written
  char quote = 0;                      // the quote of the attribute value we are in
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '\r') {  // XML reads CRLF and a lone CR as LF
      c = '\n';
      if (i + 1 < in.size() && in[i + 1] == '\n') ++i;
    }
    if (!in_tag) {
      if (in.substr(i).starts_with("<!--")) {
        const std::size_t end = in.find("-->", i + 4);
        if (end == std::string_view::npos)
          fail(ErrorCode::bad_file, what + " has an XML comment that never ends ('<!--' on line " +
                                        std::to_string(1 + std::count(in.begin(), in.begin() + i, '\n')) +
                                        " has no '-->')");
        i = end + 2;
        continue;
      }
      in_tag = c == '<';
      s += c;
    } else if (quote) {  // in a value: re-quote with '"', escape what the minimal parser would misread
      if (c == quote) {
        quote = 0;
        s += '"';
      } else if (c == '"') {
        s += "&quot;";
      } else if (in.substr(i).starts_with("&apos;")) {  // not among the minimal parser's entities
        s += '\'';
        i += 5;
      } else if (c == '>') {
        s += "&gt;";
      } else {
        s += c == '\n' || c == '\t' ? ' ' : c;  // XML reads them as spaces in a value
      }
    } else if (c == ' ' || c == '\n' || c == '\t') {
      space = true;
    } else {
      if (space && c != '=' && c != '>' && c != '/' && c != '?' && s.back() != '=') s += ' ';
      space = false;
      if (c == '"' || c == '\'') {
        quote = c;
        c = '"';
      }
      in_tag = c != '>';
      s += c;
    }
  }

  std::string out;  // the prolog as hwloc writes it, then the root element onwards
  std::size_t p = 0;
  for (;;) {
    p = s.find_first_not_of(" \t\n", p);
    if (p == std::string::npos) fail(ErrorCode::bad_file, what + " holds no XML element (it is empty or all comments)");
    const bool declaration = s.compare(p, 6, "<?xml ") == 0, doctype = s.compare(p, 10, "<!DOCTYPE ") == 0;
    if (!declaration && !doctype && s.compare(p, 2, "<?") != 0) break;
    const std::size_t end = s.find(doctype ? ">" : "?>", p);
    if (end == std::string::npos) fail(ErrorCode::bad_file, what + " has an unterminated '" + s.substr(p, 9) + "'");
    const std::size_t next = end + (doctype ? 1 : 2);
    if (declaration || doctype) out.append(s, p, next - p).push_back('\n');  // other processing instructions go
    p = next;
  }
  const std::string root = s.substr(p, std::min(s.find_first_of(" />", p + 1), p + 32) - p);
  if (root != "<topology" && root != "<root")  // <root>: hwloc 0.9's format, which hwloc still reads
    fail(ErrorCode::bad_file, what + " is not an hwloc XML topology: it starts with '" + root +
                                  "', not '<topology' (export one with: lstopo --of xml FILE.xml)");
  out.append(s, p);
  return out;
}

// Loads XML text, the file's or the caller's; `what` names it in errors.
HwlocTopology load_xml(std::string_view xml, const std::string& what) {
  const std::string buffer = to_hwloc_xml_layout(xml, what);
  HwlocTopology t = init_topology();
  if (!t) fail(ErrorCode::unsupported, "hwloc could not create a topology object");
  if (hwloc_topology_set_xmlbuffer(t.get(), buffer.c_str(), static_cast<int>(buffer.size() + 1)) != 0 ||
      hwloc_topology_load(t.get()) != 0)
    fail(ErrorCode::bad_file, what + " is not an hwloc XML topology that hwloc " HWLOC_VERSION
                                     " can read (HWLOC_XML_VERBOSE=1 shows why; export one with: lstopo --of xml "
                                     "FILE.xml)");
  return t;
}

Topology load_this_system() {
  HwlocTopology t = init_topology();
  if (t && hwloc_topology_load(t.get()) == 0) return extract(t.get(), Topology::Source::this_system, "this system");
  Topology topo;
  topo.source = Topology::Source::fallback;
  topo.description = "this system (hwloc unavailable)";
  const std::size_t threads = std::max(1u, std::thread::hardware_concurrency());
  topo.cores = topo.pus = threads;
  topo.nodes.push_back({.os_index = 0, .logical_index = 0, .memory_bytes = 0, .cores = threads, .pus = threads});
  topo.warnings.push_back("hwloc could not load this machine's topology (" + errno_text(errno) +
                          "): assuming one NUMA node; placement falls back to first touch");
  return topo;
}

}  // namespace

std::string_view to_string(Topology::Source s) noexcept {
  switch (s) {
    case Topology::Source::this_system:
      return "this system";
    case Topology::Source::xml:
      return "xml";
    case Topology::Source::synthetic:
      return "synthetic";
    case Topology::Source::fallback:
      return "fallback";
  }
  return "?";
}

const Topology& Topology::this_system() {
  static const Topology topo = load_this_system();
  return topo;
}

Topology Topology::from_xml_file(const std::string& path) {
  const std::string what = "topology file '" + path + "'";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    fail(ErrorCode::bad_file, what + " does not exist or is not a regular file");
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.is_open() || in.bad()) fail(ErrorCode::bad_file, what + " cannot be read: " + errno_text(errno));
  return extract(load_xml(text, what).get(), Source::xml, path);
}

Topology Topology::from_xml_string(std::string_view xml) {
  return extract(load_xml(xml, "the XML text (" + std::to_string(xml.size()) + " bytes)").get(), Source::xml,
                 "xml text");
}

Topology Topology::from_synthetic(std::string_view description) {
  const std::string hwloc_form = numa::translate_synthetic(description);  // throws on bad syntax
  HwlocTopology t = init_topology();
  if (!t) fail(ErrorCode::unsupported, "hwloc could not create a topology object");
  if (hwloc_topology_set_synthetic(t.get(), hwloc_form.c_str()) != 0 || hwloc_topology_load(t.get()) != 0)
    fail(ErrorCode::invalid_argument,
         "synthetic topology '" + std::string(description) + "' (read as '" + hwloc_form +
             "') is rejected by hwloc: give levels from the top down, each name:count with count >= 1, "
             "ending with pu, e.g. 'node:2 core:4 pu:1' or 'pack:2 node:1 l3:1 core:8 pu:2'");
  return extract(t.get(), Source::synthetic, std::string(description));
}

Topology Topology::load(std::string_view spec) {
  if (spec.empty() || spec == "this" || spec == "system") return this_system();
  std::error_code ec;
  const std::string s(spec);
  if (std::filesystem::exists(s, ec) || spec.ends_with(".xml") || spec.ends_with(".XML")) return from_xml_file(s);
  return from_synthetic(spec);
}

std::size_t Topology::node_by_os_index(unsigned os_index) const noexcept {
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].os_index == os_index) return i;
  return nodes.size();
}

}  // namespace sparq
