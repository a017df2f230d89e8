#include "numa/synthetic.hpp"

#include <cctype>
#include <string>
#include <vector>

#include "sparq/error.hpp"

namespace sparq::numa {

namespace {

[[noreturn]] void fail(std::string_view description, const std::string& why) {
  throw Error(ErrorCode::invalid_argument,
              "synthetic topology '" + std::string(description) + "': " + why +
                  " (expected levels from the top down such as 'node:2 core:4 pu:1' or 'pack:2 node:1 core:8 pu:2')");
}

// Level names: what we accept -> what hwloc 2.9 spells.
std::string canonical_level(std::string name) {
  struct Alias {
    const char* from;
    const char* to;
  };
  static constexpr Alias aliases[] = {
      {"pack", "pack"},      {"package", "pack"}, {"packages", "pack"}, {"socket", "pack"}, {"sockets", "pack"},
      {"node", "node"},      {"nodes", "node"},   {"numa", "node"},     {"numas", "node"},  {"numanode", "node"},
      {"numanodes", "node"}, {"group", "group"},  {"groups", "group"},  {"die", "die"},     {"dies", "die"},
      {"core", "core"},      {"cores", "core"},   {"pu", "pu"},         {"pus", "pu"},      {"thread", "pu"},
      {"threads", "pu"},     {"hwthread", "pu"},  {"hwthreads", "pu"},  {"l1", "l1d"},      {"l1d", "l1d"},
      {"l1i", "l1i"},        {"l2", "l2"},        {"l2d", "l2"},        {"l3", "l3"},       {"l3d", "l3"},
      {"l4", "l4"},          {"l5", "l5"},
  };
  for (const Alias& a : aliases)
    if (name == a.from) return a.to;
  return {};
}

}  // namespace

std::string translate_synthetic(std::string_view description) {
  // Split into tokens at whitespace, ',' and ';' outside parentheses/brackets.
  std::vector<std::string> tokens;
  std::string cur;
  int depth = 0;
  for (char ch : description) {
    if (ch == '(' || ch == '[') ++depth;
    if (ch == ')' || ch == ']') --depth;
    if (depth < 0) fail(description, "unbalanced ')' or ']'");
    if (depth == 0 && (std::isspace(static_cast<unsigned char>(ch)) || ch == ',' || ch == ';')) {
      if (!cur.empty()) tokens.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (depth != 0) fail(description, "unbalanced '(' or '['");
  if (!cur.empty()) tokens.push_back(std::move(cur));
  if (tokens.empty()) fail(description, "the description is empty");

  std::string out;
  std::string last_level;
  for (const std::string& token : tokens) {
    if (!out.empty()) out += ' ';
    if (token.front() == '[') {  // hwloc memory level such as "[numa]": passed through
      out += token;
      continue;
    }
    const std::size_t sep = token.find_first_of(":=");
    if (sep == std::string::npos || sep == 0) fail(description, "'" + token + "' is not of the form level:count");
    std::string name;
    for (char ch : token.substr(0, sep)) name += char(std::tolower(static_cast<unsigned char>(ch)));
    const std::string level = canonical_level(name);
    if (level.empty())
      fail(description, "unknown level '" + token.substr(0, sep) +
                            "' (known: pack/socket, node/numa, group, die, l1d, l2, l3, core, pu/thread)");
    const std::string rest = token.substr(sep + 1);  // count, maybe followed by "(attributes)"
    std::size_t digits = 0;
    while (digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits]))) ++digits;
    if (digits == 0) fail(description, "'" + token + "' has no count after '" + token[sep] + "'");
    if (rest.find_first_not_of('0', 0) >= digits) fail(description, "'" + token + "' has count 0: counts must be >= 1");
    if (digits < rest.size() && rest[digits] != '(')
      fail(description, "'" + token + "': unexpected '" + rest.substr(digits) + "' after the count");
    out += level + ":" + rest;
    last_level = level;
  }
  if (last_level.empty()) fail(description, "there is no level with a count");
  if (last_level != "pu") out += " pu:1";
  return out;
}

}  // namespace sparq::numa
