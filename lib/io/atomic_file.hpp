// Atomic replacement of a file: write a temporary file in the destination's directory,
// fsync it, rename it over the destination, fsync the directory. Internal to lib/io.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>

namespace sparq::io {

// Writes `bytes` to `path` so that readers see either the old file (or none) or all of
// the new one. On failure the temporary file is removed and sparq::Error(io_error)
// naming `path` and the OS's reason is thrown. The new file gets mode 0666 & ~umask,
// like any file the process creates.
void write_file_atomically(const std::filesystem::path& path, std::span<const std::byte> bytes);

}  // namespace sparq::io
