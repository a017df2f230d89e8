// Friendly synthetic topology descriptions -> hwloc's synthetic syntax.
#pragma once

#include <string>
#include <string_view>

namespace sparq::numa {

// Accepts hwloc's own syntax ("pack:2 node:1 core:4 pu:1", attributes in parentheses,
// "[numa]" memory levels) and friendlier spellings: commas/semicolons as separators,
// '=' for ':', plurals, "socket(s)"/"package(s)" for pack, "numa"/"numanode" for node,
// "thread(s)"/"hwthread(s)" for pu, case-insensitive; appends "pu:1" when the last level
// is not pu. Throws Error(invalid_argument) naming the first bad token.
[[nodiscard]] std::string translate_synthetic(std::string_view description);

}  // namespace sparq::numa
