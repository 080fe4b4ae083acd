// Atomic, durable file writes: readers see the old contents or the new, never a mix.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>

namespace sfn {

// rw-r--r--, further restricted by the process umask.
inline constexpr std::filesystem::perms kDefaultFilePerms =
    std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
    std::filesystem::perms::group_read | std::filesystem::perms::others_read;

// Writes one file so that readers see either the previous contents or the complete new
// contents, never a mix, and the new contents survive a power loss once commit() returns.
//
// Bytes go to "<path>.tmp-<pid>-<tid>", created with O_EXCL and `mode` (minus umask) from
// the start; commit() fsyncs it, renames it over `path` and fsyncs the directory. The
// thread id in the name means two threads writing the same path never share a temporary
// file, and a temporary file already carrying our name can only be a leftover of a
// crashed process whose pid and tid were reused, so it is replaced. If the writer is
// destroyed without commit() (an exception on the way), the temporary file is removed.
// Every failure throws IoError naming the file, the step and the system error.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::filesystem::path path,
                            std::filesystem::perms mode = kDefaultFilePerms);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(std::span<const std::uint8_t> bytes);
  // Makes the file visible under `path`, durably. If this throws after the rename (only
  // the directory fsync can), the new file is visible but may not survive a crash.
  void commit();

  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& tempPath() const { return temp_; }

 private:
  std::filesystem::path path_;
  std::filesystem::path temp_;
  int fd_ = -1;
  bool committed_ = false;
};

// AtomicFileWriter for a whole buffer at once.
void writeFileAtomically(const std::filesystem::path& path, std::span<const std::uint8_t> bytes,
                         std::filesystem::perms mode = kDefaultFilePerms);

// fsyncs the directory holding `path`, so a rename or create inside it survives a power
// loss. Throws IoError naming the directory.
void fsyncDirectoryOf(const std::filesystem::path& path);

}  // namespace sfn
