#pragma once
// A fresh directory under the system's temp directory, removed with everything in it at the
// end of the test. Shared by every test folder. Not thread-safe; one per test.

#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <system_error>

namespace jobtrail::testing {

class TempDir {
 public:
  // mkdtemp creates the directory atomically under a unique name: parallel tests never share one.
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "jobtrail-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::system_error(errno, std::generic_category(), "mkdtemp");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace jobtrail::testing
