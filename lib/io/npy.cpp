// .npy reading and writing (format: numpy's NEP 1, "A Simple File Format for NumPy Arrays").
#include "sparq/tools/npy.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "io/atomic_file.hpp"
#include "io/npy_header.hpp"
#include "sparq/error.hpp"

namespace sparq {

static_assert(std::endian::native == std::endian::little, ".npy data is read as little-endian in place");

namespace {

constexpr unsigned char kMagic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr std::size_t kMagicSize = sizeof(kMagic);
// No header numpy writes for an array we accept comes near this; a larger length is
// corruption, and refusing it bounds what a hostile file makes us allocate.
constexpr std::size_t kMaxHeaderBytes = std::size_t{1} << 20;
constexpr std::size_t kAlign = 64;

[[noreturn]] void bad(std::string_view name, const std::string& what) {
  throw Error(ErrorCode::bad_file, std::string(name) + ": " + what);
}

// Where the bytes come from: memory or a file, read at absolute offsets.
class Source {
 public:
  virtual ~Source() = default;
  [[nodiscard]] virtual std::size_t size() const = 0;
  virtual void read(std::size_t offset, void* dst, std::size_t n) const = 0;
};

class MemorySource final : public Source {
 public:
  explicit MemorySource(std::span<const std::byte> b) : b_(b) {}
  [[nodiscard]] std::size_t size() const override { return b_.size(); }
  void read(std::size_t offset, void* dst, std::size_t n) const override {
    if (n) std::memcpy(dst, b_.data() + offset, n);
  }

 private:
  std::span<const std::byte> b_;
};

class FileSource final : public Source {
 public:
  explicit FileSource(const std::filesystem::path& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) io_fail("cannot open");
    struct stat st {};
    if (::fstat(fd_, &st) != 0) io_fail("cannot stat");
    if (S_ISDIR(st.st_mode)) {
      ::close(fd_);
      throw Error(ErrorCode::io_error, path_.string() + ": is a directory, not a .npy file");
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd_);
      throw Error(ErrorCode::bad_file, path_.string() + ": not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
  }
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;
  ~FileSource() override { ::close(fd_); }
  [[nodiscard]] std::size_t size() const override { return size_; }
  void read(std::size_t offset, void* dst, std::size_t n) const override {
    auto* p = static_cast<char*>(dst);
    while (n > 0) {
      const ssize_t got = ::pread(fd_, p, n, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) io_fail("read failed");
      if (got == 0) throw Error(ErrorCode::bad_file, path_.string() + ": file shrank while being read");
      p += got;
      n -= static_cast<std::size_t>(got);
      offset += static_cast<std::size_t>(got);
    }
  }

 private:
  [[noreturn]] void io_fail(const char* what) const {
    const int err = errno;
    if (fd_ >= 0) ::close(fd_);
    throw Error(ErrorCode::io_error, path_.string() + ": " + what + ": " + std::strerror(err));
  }
  std::filesystem::path path_;
  int fd_ = -1;
  std::size_t size_ = 0;
};

// IEEE round-to-nearest double -> float, made explicit for magnitudes beyond float's
// range (where a plain cast is undefined behaviour in C++): they become ±inf.
float narrow(double x) {
  constexpr double kOverflow = 0x1.ffffffp+127;  // FLT_MAX + half an ulp: rounds to inf
  if (std::fabs(x) >= kOverflow)
    return std::signbit(x) ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
  return static_cast<float>(x);
}

// Element count of `shape`, or nullopt-like failure when it overflows.
std::size_t checked_count(std::span<const std::size_t> shape, std::size_t item, std::string_view name) {
  std::size_t n = 1;
  for (std::size_t d : shape) {
    if (d != 0 && n > std::numeric_limits<std::size_t>::max() / d)
      bad(name, "shape " + shape_to_string(shape) + " is absurd: its element count overflows 64 bits");
    n *= d;
  }
  if (n > std::numeric_limits<std::size_t>::max() / item)
    bad(name, "shape " + shape_to_string(shape) + " is absurd: its size in bytes overflows 64 bits");
  return n;
}

NpyArray parse(const Source& src, std::string_view name) {
  const std::size_t file_size = src.size();
  if (file_size < kMagicSize + 2) {
    if (file_size == 0) bad(name, "not a .npy file: it is empty");
    bad(name, "not a .npy file: " + std::to_string(file_size) + " bytes is shorter than the .npy preamble");
  }
  unsigned char pre[kMagicSize + 2];
  src.read(0, pre, sizeof pre);
  if (!std::equal(kMagic, kMagic + kMagicSize, pre))
    bad(name, "not a .npy file: bad magic (expected \\x93NUMPY, found '" +
                  io::printable(std::string_view(reinterpret_cast<const char*>(pre), kMagicSize)) + "')");
  const int major = pre[kMagicSize], minor = pre[kMagicSize + 1];
  if (major < 1 || major > 3 || minor != 0)
    bad(name, "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                  ": versions 1.0, 2.0 and 3.0 are supported");

  const std::size_t len_bytes = major == 1 ? 2 : 4;
  std::size_t offset = kMagicSize + 2;
  if (file_size < offset + len_bytes) bad(name, "truncated: the file ends inside the header length");
  unsigned char len_le[4] = {};
  src.read(offset, len_le, len_bytes);
  offset += len_bytes;
  std::size_t header_len = 0;
  for (std::size_t i = len_bytes; i-- > 0;) header_len = header_len << 8 | len_le[i];
  if (header_len > kMaxHeaderBytes)
    bad(name, "header length " + std::to_string(header_len) + " is implausible (limit " +
                  std::to_string(kMaxHeaderBytes) + " bytes)");
  if (file_size - offset < header_len)
    bad(name, "truncated: the header says it is " + std::to_string(header_len) + " bytes but only " +
                  std::to_string(file_size - offset) + " follow");
  std::string text(header_len, '\0');
  src.read(offset, text.data(), header_len);
  offset += header_len;
  // Versions 1 and 2 are latin-1 and 3 is UTF-8; everything we accept is ASCII, so the
  // parser works on bytes either way and refuses what it does not know.
  const io::NpyHeader h = io::parse_header_dict(text, name);

  bool f64 = false;
  if (h.descr == "<f4") {
    f64 = false;
  } else if (h.descr == "<f8") {
    f64 = true;
  } else if (h.descr == ">f4" || h.descr == ">f8") {
    bad(name,
        "dtype '" + h.descr + "' is big-endian: only little-endian '<f4' (float32) and '<f8' (float64) are supported");
  } else if (h.descr.starts_with("|O")) {
    bad(name, "dtype '" + io::printable(h.descr) +
                  "' is an object array: only '<f4' (float32) and '<f8' (float64) are supported");
  } else {
    bad(name, "dtype '" + io::printable(h.descr) + "' is not supported: only '<f4' (float32) and '<f8' (float64) are");
  }
  if (h.fortran_order) bad(name, "array is in Fortran order ('fortran_order': True): only C order is supported");

  const std::size_t item = f64 ? 8 : 4;
  const std::size_t count = checked_count(h.shape, item, name);
  const std::size_t data_bytes = count * item;
  const std::size_t available = file_size - offset;
  if (available < data_bytes)
    bad(name, "truncated: shape " + shape_to_string(h.shape) + " needs " + std::to_string(data_bytes) +
                  " bytes of data but only " + std::to_string(available) + " follow the header");
  if (available > data_bytes)
    bad(name, "has " + std::to_string(available - data_bytes) + " unexpected bytes after the data of shape " +
                  shape_to_string(h.shape));

  NpyArray a;
  a.shape = h.shape;
  a.version = major;
  a.converted_from_f64 = f64;
  a.data.resize(count);
  if (!f64) {
    src.read(offset, a.data.data(), data_bytes);
  } else {
    // Converted in chunks so a large float64 file never needs twice its size in memory.
    constexpr std::size_t kChunk = 1 << 16;
    std::vector<double> buf(std::min(count, kChunk));
    for (std::size_t done = 0; done < count;) {
      const std::size_t n = std::min(kChunk, count - done);
      src.read(offset + done * 8, buf.data(), n * 8);
      for (std::size_t i = 0; i < n; ++i) a.data[done + i] = narrow(buf[i]);
      done += n;
    }
  }
  return a;
}

}  // namespace

std::string shape_to_string(std::span<const std::size_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

NpyArray read_npy(const std::filesystem::path& path) {
  FileSource src(path);
  return parse(src, path.string());
}

NpyArray parse_npy(std::span<const std::byte> bytes, std::string_view name) {
  return parse(MemorySource(bytes), name);
}

std::vector<std::byte> encode_npy(std::span<const float> data, std::span<const std::size_t> shape) {
  std::size_t count = 1;
  for (std::size_t d : shape) {
    if (d != 0 && count > std::numeric_limits<std::size_t>::max() / d)
      throw Error(ErrorCode::shape_mismatch, "shape " + shape_to_string(shape) + " overflows 64 bits");
    count *= d;
  }
  if (count != data.size())
    throw Error(ErrorCode::shape_mismatch, "shape " + shape_to_string(shape) + " holds " + std::to_string(count) +
                                               " elements but the data has " + std::to_string(data.size()));
  std::string dict = io::format_header_dict({shape.begin(), shape.end()});
  // Version 1 unless the padded header does not fit its u16 length.
  const int version = dict.size() + 1 + kAlign + 10 <= 0xffff ? 1 : 2;
  const std::size_t preamble = version == 1 ? 10 : 12;
  const std::size_t total_header = (preamble + dict.size() + 1 + kAlign - 1) / kAlign * kAlign;
  dict.append(total_header - preamble - dict.size() - 1, ' ');
  dict += '\n';

  std::vector<std::byte> out(total_header + data.size_bytes());
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  std::copy(kMagic, kMagic + kMagicSize, p);
  p[6] = static_cast<unsigned char>(version);
  p[7] = 0;
  const std::size_t len = dict.size();
  for (std::size_t i = 0; i < preamble - 8; ++i) p[8 + i] = static_cast<unsigned char>(len >> (8 * i));
  std::memcpy(p + preamble, dict.data(), dict.size());
  if (!data.empty()) std::memcpy(p + total_header, data.data(), data.size_bytes());
  return out;
}

void write_npy(const std::filesystem::path& path, std::span<const float> data, std::span<const std::size_t> shape) {
  const auto bytes = encode_npy(data, shape);
  io::write_file_atomically(path, bytes);
}

}  // namespace sparq
