// TempDir: a fresh directory per test case, removed afterwards. The random suffix keeps
// parallel ctest runs (one process per case) from sharing files.
#pragma once

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <system_error>
#include <vector>

namespace sfn::test {

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("sfn-test-" + std::to_string(rd()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // A path inside the directory (converts to std::string where one is expected).
  std::filesystem::path file(const std::string& name) const { return path_ / name; }
  // Names of the entries in the directory, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path_))
      out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  // True if an entry's name contains `part` (e.g. ".tmp-", AtomicFileWriter's leftovers).
  bool hasEntryContaining(const std::string& part) const {
    const auto all = names();
    return std::any_of(all.begin(), all.end(),
                       [&](const std::string& n) { return n.find(part) != std::string::npos; });
  }

 private:
  std::filesystem::path path_;
};

}  // namespace sfn::test
