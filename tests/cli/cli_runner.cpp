#include "cli_runner.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "spawned_process.h"

namespace jobtrail::cli_testing {

using jobtrail::testing::SpawnedProcess;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

CliResult run_cli(const std::vector<std::string>& args, const std::map<std::string, std::string>& environment) {
  const TempDir capture;
  std::vector<std::string> argv{JOBTRAIL_CLI_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  // This process's environment without JOBTRAIL_DB (a test names its store), plus `environment`.
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (std::strncmp(*entry, "JOBTRAIL_DB=", 12) != 0) env.emplace_back(*entry);
  }
  for (const auto& [name, value] : environment) env.push_back(name + "=" + value);
  SpawnedProcess cli(std::move(argv), capture.file("stdout"), capture.file("stderr"), SpawnedProcess::Stderr::file, &env);
  CliResult result;
  // Bounded: a command that hangs fails its test instead of stopping the suite.
  result.exit_code = cli.wait(std::chrono::seconds(120));
  if (result.exit_code == -1) throw std::runtime_error("jobtrail did not end within 120 s");
  result.out = cli.out();
  result.err = cli.err();
  return result;
}

std::string golden(const std::string& name, const std::string& actual) {
  const std::filesystem::path path = std::filesystem::path(JOBTRAIL_GOLDEN_DIR) / name;
  const char* update = std::getenv("JOBTRAIL_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << actual;
  }
  if (!std::filesystem::exists(path)) {
    throw std::runtime_error("no golden file " + path.string() + "; run with JOBTRAIL_UPDATE_GOLDEN=1 to create it");
  }
  return read_file(path);
}

}  // namespace jobtrail::cli_testing
