#include "sfn/io/atomic_file_writer.h"

#include "sfn/core/error.h"
#include "sfn/core/unique_fd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

namespace sfn {
namespace {

namespace fs = std::filesystem;

// Larger single writes are split; Linux caps one write() at about 2 GiB anyway.
constexpr std::size_t kMaxIo = std::size_t{1} << 30;

[[noreturn]] void failIo(const fs::path& path, const std::string& step, int err) {
  SFN_THROW(IoError, "'", path.string(), "': ", step,
            " failed: ", std::generic_category().message(err));
}

}  // namespace

void fsyncDirectoryOf(const fs::path& path) {
  const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  UniqueFd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) failIo(parent, "open directory for fsync", errno);
  if (::fsync(dir.get()) != 0) failIo(parent, "fsync directory", errno);
}

AtomicFileWriter::AtomicFileWriter(fs::path path, fs::perms mode) : path_(std::move(path)) {
  temp_ = path_;
  temp_ += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(::gettid());
  const auto bits = static_cast<mode_t>(mode & fs::perms::mask);
  for (bool retried = false;;) {
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, bits);
    if (fd_ >= 0) break;
    const int err = errno;
    if (err == EINTR) continue;
    // Only this thread uses this name, so an existing file is a crashed process's leftover.
    if (err == EEXIST && !retried && ::unlink(temp_.c_str()) == 0) {
      retried = true;
      continue;
    }
    failIo(temp_, "create temporary file", err);
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFileWriter::write(std::span<const std::uint8_t> bytes) {
  if (fd_ < 0) SFN_THROW(IoError, "'", path_.string(), "': write after commit");
  const std::uint8_t* p = bytes.data();
  std::size_t n = bytes.size();
  while (n > 0) {
    const ssize_t put = ::write(fd_, p, std::min(n, kMaxIo));
    if (put < 0) {
      if (errno == EINTR) continue;
      failIo(temp_, "write", errno);
    }
    p += put;
    n -= static_cast<std::size_t>(put);
  }
}

void AtomicFileWriter::commit() {
  if (fd_ < 0) SFN_THROW(IoError, "'", path_.string(), "': commit called twice");
  // The data must be on disk before the rename makes it reachable; otherwise a crash can
  // leave `path` naming a file of zeros or garbage.
  if (::fsync(fd_) != 0) failIo(temp_, "fsync", errno);
  if (::close(std::exchange(fd_, -1)) != 0) failIo(temp_, "close", errno);
  if (::rename(temp_.c_str(), path_.c_str()) != 0)
    failIo(path_, "rename from '" + temp_.string() + "'", errno);
  committed_ = true;
  // The rename lives in the directory; without this fsync it may be lost on power failure.
  fsyncDirectoryOf(path_);
}

void writeFileAtomically(const fs::path& path, std::span<const std::uint8_t> bytes,
                         fs::perms mode) {
  AtomicFileWriter out(path, mode);
  out.write(bytes);
  out.commit();
}

}  // namespace sfn
