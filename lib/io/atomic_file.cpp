#include "io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "sparq/error.hpp"

namespace sparq::io {

namespace {

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what, int err) {
  throw Error(ErrorCode::io_error, path.string() + ": " + what + ": " + std::strerror(err));
}

// Closes the descriptor and removes the temporary file unless released.
class TempFile {
 public:
  TempFile(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  [[nodiscard]] int fd() const { return fd_; }
  // Closes explicitly so a failing close (delayed write error) is reported.
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }
  void keep() { path_.clear(); }

 private:
  int fd_;
  std::filesystem::path path_;
};

// A name no other writer in this or another process picks at the same moment: pid, a
// process-wide counter and the clock; O_EXCL catches the remaining collisions.
std::filesystem::path temp_name(const std::filesystem::path& path, unsigned attempt) {
  static std::atomic<unsigned> counter{0};
  const auto ticks = static_cast<unsigned long long>(std::chrono::steady_clock::now().time_since_epoch().count());
  // Built with append: gcc 12 warns falsely (-Wrestrict, PR 105329) on chains of operator+.
  std::string name = ".";
  name.append(path.filename().string());
  for (unsigned long long part :
       {static_cast<unsigned long long>(::getpid()), static_cast<unsigned long long>(counter++), ticks % 1000000007ULL,
        static_cast<unsigned long long>(attempt)}) {
    name.append(".");
    name.append(std::to_string(part));
  }
  name.append(".tmp");
  auto tmp = path;
  tmp.replace_filename(name);
  return tmp;
}

}  // namespace

void write_file_atomically(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  if (path.empty() || !path.has_filename()) fail(path, "not a file name", EINVAL);
  int fd = -1;
  std::filesystem::path tmp;
  for (unsigned attempt = 0; fd < 0; ++attempt) {
    tmp = temp_name(path, attempt);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && (errno != EEXIST || attempt == 100)) fail(path, "cannot create a temporary file beside it", errno);
  }
  TempFile file(fd, tmp);

  const std::byte* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(file.fd(), p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(path, "write failed", errno);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(file.fd()) != 0) fail(path, "fsync failed", errno);
  if (file.close() != 0) fail(path, "close failed", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail(path, "cannot rename the temporary file over it", errno);
  file.keep();

  // Make the rename itself durable. A directory that cannot be opened or synced (some
  // file systems refuse) does not undo the write, so this is best effort.
  auto dir = path.parent_path();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace sparq::io
