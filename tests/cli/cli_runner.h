#pragma once
// Runs the real `jobtrail` binary the way a user does, and compares its output with
// golden files.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace jobtrail::cli_testing {

/// A fresh directory under the system temp dir, removed with everything in it.
/// Not thread-safe; one per test.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct CliResult {
  int exit_code = -1;  ///< -1 if the process did not exit normally (a crash)
  std::string out;
  std::string err;
};

/// Runs `jobtrail args...` with the test's environment minus JOBTRAIL_DB, plus `environment`.
CliResult run_cli(const std::vector<std::string>& args, const std::map<std::string, std::string>& environment = {});

/// The content of tests/cli/golden/`name`. With JOBTRAIL_UPDATE_GOLDEN=1 in the environment it
/// first rewrites the file with `actual`, so a deliberate output change is one command away
/// (and then reviewed as a diff).
std::string golden(const std::string& name, const std::string& actual);

std::string read_file(const std::filesystem::path& path);

}  // namespace jobtrail::cli_testing
