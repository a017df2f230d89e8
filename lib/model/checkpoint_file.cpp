// Checkpoint files: reading with the header checked first, SHA-256 (nettle) and the
// sha256sum-format sidecar FILE.sha256.
#include <fmt/core.h>
#include <nettle/sha2.h>

#include <cctype>
#include <fstream>
#include <iterator>
#include <string>

#include "io/atomic_file.hpp"
#include "model/checkpoint_format.hpp"
#include "sparq/error.hpp"
#include "sparq/tools/model/llama_checkpoint.hpp"

namespace sparq::model {

namespace {

// A sidecar is one line; anything longer is not one.
constexpr std::size_t kMaxSidecarBytes = 4096;

[[noreturn]] void bad(const std::string& name, const std::string& what) {
  throw Error(ErrorCode::bad_file, fmt::format("{}: {}", name, what));
}

// The hash a sidecar names for `basename`, or "" when the sidecar does not exist.
std::string read_sidecar(const std::filesystem::path& sidecar, const std::string& basename) {
  std::error_code ec;
  if (!std::filesystem::exists(sidecar, ec)) return "";
  const std::string name = sidecar.string();
  std::ifstream in(sidecar, std::ios::binary);
  if (!in) throw Error(ErrorCode::io_error, fmt::format("{}: cannot open the hash file", name));
  std::string text(kMaxSidecarBytes + 1, '\0');
  in.read(text.data(), std::streamsize(text.size()));
  text.resize(std::size_t(in.gcount()));
  if (text.size() > kMaxSidecarBytes) bad(name, "longer than one sha256sum line: not a hash file");
  // "<64 hex>  <name>\n" or "<64 hex> *<name>\n" (binary mode), as sha256sum writes.
  std::size_t i = 0;
  while (i < text.size() && std::isxdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i != 64)
    bad(name, fmt::format("does not start with a 64-digit hex SHA-256 (sha256sum format \"<hash>  {}\")", basename));
  std::string hash = text.substr(0, 64);
  for (char& ch : hash) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  std::string rest = text.substr(64);
  while (!rest.empty() && (rest.back() == '\n' || rest.back() == '\r')) rest.pop_back();
  if (!rest.empty()) {
    if (rest.size() < 3 || rest[0] != ' ' || (rest[1] != ' ' && rest[1] != '*'))
      bad(name, fmt::format("malformed: expected \"<hash>  {}\"", basename));
    const std::string named = rest.substr(2);
    if (named != basename && std::filesystem::path(named).filename().string() != basename)
      bad(name, fmt::format("names the file '{}', not '{}'", named, basename));
  }
  return hash;
}

}  // namespace

std::string sha256_hex(std::span<const std::byte> bytes) {
  sha256_ctx ctx;
  sha256_init(&ctx);
  // nettle takes size_t lengths; feed in 1 GiB pieces anyway to stay clear of any limit.
  constexpr std::size_t kPiece = std::size_t{1} << 30;
  for (std::size_t off = 0; off < bytes.size(); off += kPiece) {
    const std::size_t n = std::min(kPiece, bytes.size() - off);
    sha256_update(&ctx, n, reinterpret_cast<const std::uint8_t*>(bytes.data() + off));
  }
  std::uint8_t digest[SHA256_DIGEST_SIZE];
  sha256_digest(&ctx, SHA256_DIGEST_SIZE, digest);
  std::string hex;
  for (std::uint8_t b : digest) hex += fmt::format("{:02x}", b);
  return hex;
}

void write_checkpoint_file(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  io::write_file_atomically(path, bytes);
  const std::string line = sha256_hex(bytes) + "  " + path.filename().string() + "\n";
  io::write_file_atomically(std::filesystem::path(path.string() + ".sha256"), std::as_bytes(std::span(line)));
}

LlamaWeights load_llama_checkpoint(const std::filesystem::path& path, const LoadOptions& options) {
  const std::string name = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::io_error, fmt::format("{}: cannot open the model file", name));
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(ErrorCode::io_error, fmt::format("{}: cannot read the file size: {}", name, ec.message()));
  // Read the header first so that a huge non-checkpoint file is refused before it is read.
  std::vector<std::byte> bytes(std::min<std::uintmax_t>(size, kMaxHeaderBytes));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!in) throw Error(ErrorCode::io_error, fmt::format("{}: read failed", name));
  const ParsedHeader header = parse_checkpoint_header(bytes, name);
  check_checkpoint_size(header, size, name);
  const std::size_t have = bytes.size();
  bytes.resize(size);
  in.read(reinterpret_cast<char*>(bytes.data()) + have, static_cast<std::streamsize>(size - have));
  if (!in) throw Error(ErrorCode::io_error, fmt::format("{}: read failed", name));

  const std::filesystem::path sidecar = path.string() + ".sha256";
  const std::string want = read_sidecar(sidecar, path.filename().string());
  if (want.empty() && options.require_hash)
    bad(name, fmt::format("no hash file {} (sha256sum format) but a verified model was required", sidecar.string()));
  const std::string got = sha256_hex(bytes);
  if (!want.empty() && got != want)
    bad(name, fmt::format("SHA-256 mismatch: the file hashes to {} but {} says {} (corrupt or replaced file)", got,
                          sidecar.string(), want));
  LlamaWeights w = parse_llama_checkpoint(bytes, name);
  w.info.sha256 = got;
  w.info.hash_verified = !want.empty();
  return w;
}

}  // namespace sparq::model
