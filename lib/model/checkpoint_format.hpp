// Internal: the checkpoint headers (llama_checkpoint.hpp), shared by the parser and the
// file loader, which reads only the header before it trusts the file's size.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "sparq/tools/model/llama_checkpoint.hpp"

namespace sparq::model {

inline constexpr std::array<char, 8> kMagic = {'S', 'P', 'Q', 'L', 'M', '\0', '\0', '\0'};
inline constexpr std::size_t kHeaderBytesV1 = 7 * 4;
inline constexpr std::size_t kHeaderBytesV2 = 8 + 4 + 4 + 7 * 4 + 4 + 4;  // 52
// Enough bytes to parse either header.
inline constexpr std::size_t kMaxHeaderBytes = kHeaderBytesV2;

struct ParsedHeader {
  int version = 1;
  DType dtype = DType::f32;
  LlamaConfig config;
};

// Parses and validates the header at the start of `bytes` (which may be just the
// header). Throws sparq::Error(bad_file) naming `name`.
[[nodiscard]] ParsedHeader parse_checkpoint_header(std::span<const std::byte> bytes, std::string_view name);
// Throws sparq::Error(bad_file) unless a file of `file_bytes` matches the header.
void check_checkpoint_size(const ParsedHeader& h, std::uint64_t file_bytes, std::string_view name);

}  // namespace sparq::model
