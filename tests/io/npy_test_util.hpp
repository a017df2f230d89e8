// Helpers for the .npy tests: building file bytes piece by piece.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace sparq::test {

// Concatenates raw preamble bytes, header text and data bytes into a file image.
inline std::vector<std::byte> file_bytes(std::initializer_list<unsigned> preamble, std::string_view header,
                                         std::initializer_list<unsigned> data) {
  std::vector<std::byte> out;
  for (unsigned b : preamble) out.push_back(static_cast<std::byte>(b));
  for (char c : header) out.push_back(static_cast<std::byte>(c));
  for (unsigned b : data) out.push_back(static_cast<std::byte>(b));
  return out;
}

// A complete file with a correct preamble for `major` and `dict` padded numpy-style.
inline std::vector<std::byte> make_npy(int major, std::string dict, const void* data, std::size_t data_bytes) {
  const std::size_t pre = major == 1 ? 10 : 12;
  const std::size_t total = (pre + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - pre - dict.size() - 1, ' ');
  dict += '\n';
  std::vector<std::byte> out(pre + dict.size() + data_bytes);
  const unsigned char magic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  std::memcpy(out.data(), magic, 6);
  out[6] = static_cast<std::byte>(major);
  out[7] = std::byte{0};
  for (std::size_t i = 0; i < pre - 8; ++i) out[8 + i] = static_cast<std::byte>((dict.size() >> (8 * i)) & 0xff);
  std::memcpy(out.data() + pre, dict.data(), dict.size());
  if (data_bytes) std::memcpy(out.data() + pre + dict.size(), data, data_bytes);
  return out;
}

inline std::string dict_for(std::string_view descr, std::string_view shape, bool fortran = false) {
  return "{'descr': '" + std::string(descr) + "', 'fortran_order': " + (fortran ? "True" : "False") +
         ", 'shape': " + std::string(shape) + ", }";
}

}  // namespace sparq::test
