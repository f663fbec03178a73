#pragma once
/// \file
/// Stores built for one shape of history (hostile IDs, deep traces, many entities ...) and the
/// way the view tests run the CLI on them: at golden_now, checked against the golden files in
/// tests/cli/golden/views (JOBTRAIL_UPDATE_GOLDEN=1 rewrites them).

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "cli_runner.h"
#include "jobtrail/store.h"
#include "prepared_store.h"

namespace jobtrail::cli_testing {

/// A SQLite store of its own, filled with `events`.
class ShapeStore {
 public:
  explicit ShapeStore(const std::vector<Event>& events) : path_(directory_.file("jobs.db")) {
    if (!events.empty()) open_store(path_)->append(events);
  }
  const std::string& path() const { return path_; }
  void append(const std::vector<Event>& events) const { open_store(path_)->append(events); }

 private:
  TempDir directory_;
  std::string path_;
};

/// `jobtrail --db STORE --now golden_now ARGS...`.
inline CliResult run_at_golden_now(const std::string& store_path, std::vector<std::string> args) {
  args.insert(args.begin(), {"--db", store_path, "--now", golden_now});
  return run_cli(args);
}

/// What that prints on stdout; it must succeed with nothing on stderr.
inline std::string view_output(const std::string& store_path, std::vector<std::string> args) {
  const CliResult result = run_at_golden_now(store_path, std::move(args));
  INFO("stderr: " << result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(result.err.empty());
  return result.out;
}

/// `actual` against tests/cli/golden/views/NAME.
inline void check_view_golden(const std::string& name, const std::string& actual) {
  INFO("golden file tests/cli/golden/views/" << name << " (JOBTRAIL_UPDATE_GOLDEN=1 rewrites it)");
  CHECK(actual == golden("views/" + name, actual));
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace jobtrail::cli_testing
