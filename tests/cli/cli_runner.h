#pragma once
// Runs the real `jobtrail` binary the way a user does, and compares its output with
// golden files.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "temp_dir.h"

namespace jobtrail::cli_testing {

using TempDir = jobtrail::testing::TempDir;

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
