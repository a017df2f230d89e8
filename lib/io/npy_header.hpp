// The header dict of a .npy file: parsing the Python literal numpy writes, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// and formatting it back. Internal to lib/io.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sparq::io {

struct NpyHeader {
  std::string descr;  // e.g. "<f4"; raw as written in the file
  bool fortran_order = false;
  std::vector<std::size_t> shape;
};

// Parses the dict; anything but the three keys with values of the right kinds, or a
// dimension that does not fit in size_t, throws sparq::Error(bad_file) as
// "<name>: <problem>". Accepts single- or double-quoted strings, trailing commas,
// Python 2's `3L` integers, and trailing whitespace after the closing brace.
[[nodiscard]] NpyHeader parse_header_dict(std::string_view text, std::string_view name);

// The dict for a float32 C-order array, as numpy formats it (without padding).
[[nodiscard]] std::string format_header_dict(const std::vector<std::size_t>& shape);

// At most `max_chars` characters of `s`, non-printable bytes as \xNN: safe to quote in
// an error message whatever the file held.
[[nodiscard]] std::string printable(std::string_view s, std::size_t max_chars = 40);

}  // namespace sparq::io
