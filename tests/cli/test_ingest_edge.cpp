// What the command line does with what a worker or script sends it: long texts are cut and
// kept, implausible times refused, passwords never shown, a failing --format json command
// answers in JSON on stderr, and a store is never created somewhere by mistake unannounced.

#include <filesystem>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "jobtrail/event.h"
#include "prepared_store.h"

using namespace jobtrail::cli_testing;
using nlohmann::json;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// The one JSON error object a failing `--format json` command writes on stderr.
json json_error(const CliResult& result, int exit_code) {
  INFO("stdout: " << result.out << "\nstderr: " << result.err);
  CHECK(result.exit_code == exit_code);
  CHECK(result.out.empty());
  REQUIRE(!result.err.empty());
  CHECK(result.err.back() == '\n');
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  const json error = json::parse(result.err);
  CHECK(error.size() == 2);
  CHECK(error["exit_code"] == exit_code);
  CHECK(error["error"].is_string());
  return error;
}

}  // namespace

TEST_CASE("emit records a failure whose message is longer than the limit, cut and marked", "[cli]") {
  const TempDir directory;
  const std::string db = directory.file("long.db");
  const std::string message(9 * 1024, 'e');
  const CliResult emit = run_cli({"--db", db, "emit", "--job-id", "import-9", "--state", "failed", "--error", message,
                                  "--at", "2026-11-22T10:00:00Z"});
  INFO("stderr: " << emit.err);
  REQUIRE(emit.exit_code == 0);
  CHECK(contains(emit.out, "recorded failed of job import-9 at 2026-11-22 10:00:00.000Z\n"));
  CHECK(contains(emit.out, "truncated: error.message"));

  const CliResult show = run_cli({"--db", db, "--format", "json", "show", "import-9"});
  REQUIRE(show.exit_code == 0);
  const json job = json::parse(show.out);
  INFO(show.out.substr(0, 400));
  CHECK(job["state"] == "failed");
  const std::string stored = job["last_error"]["message"].get<std::string>();
  CHECK(stored.size() <= jobtrail::EventLimits::max_message_length);
  CHECK(stored.ends_with(std::string(jobtrail::truncation_marker) + "9216 bytes]"));

  const CliResult as_json = run_cli({"--db", db, "--format", "json", "emit", "--job-id", "import-10", "--state",
                                     "failed", "--backtrace", std::string(70 * 1024, 'b')});
  REQUIRE(as_json.exit_code == 0);
  CHECK(json::parse(as_json.out)["truncated"] == json::array({"error.backtrace"}));
}

TEST_CASE("emit refuses a time before 2000 or in the wrong unit instead of storing now", "[cli]") {
  const TempDir directory;
  const std::string db = directory.file("times.db");
  for (const std::string at : {"1970-01-01T00:00:00Z", "1999-12-31T23:59:59Z", "2999-01-01T00:00:00Z"}) {
    INFO(at);
    const CliResult result = run_cli({"--db", db, "emit", "--job-id", "epoch-job", "--state", "started", "--at", at});
    CHECK(result.exit_code == 2);
    CHECK(result.out.empty());
    CHECK(result.err.starts_with("jobtrail: bad --at '" + at + "': is "));
  }
  CHECK_FALSE(std::filesystem::exists(db));  // nothing was recorded, so nothing was created
  const CliResult fine = run_cli({"--db", db, "emit", "--job-id", "y2k", "--state", "started", "--at", "2000-01-01T00:00:00Z"});
  CHECK(fine.exit_code == 0);
  CHECK(contains(fine.out, "at 2000-01-01 00:00:00.000Z"));
}

TEST_CASE("no password of a URL libpq cannot parse reaches a message", "[cli]") {
  for (const std::string url : {"postgresql://u:pw-s3cret@[bad/db", "postgresql://u:pw%7Cs3cret@[bad/db"}) {
    INFO(url);
    for (const std::vector<std::string>& command : {std::vector<std::string>{"ls"}, {"show", "x"}, {"stats"}}) {
      std::vector<std::string> args{"--db", url};
      args.insert(args.end(), command.begin(), command.end());
      const CliResult result = run_cli(args);
      INFO(result.err);
      CHECK(result.exit_code != 0);
      CHECK(result.err.starts_with("jobtrail: "));
      CHECK_FALSE(contains(result.err, "s3cret"));
      CHECK(contains(result.err, "u:***@"));
    }
  }
}

TEST_CASE("with --format json a failure is one JSON object on stderr", "[cli]") {
  const PreparedStore store;
  CHECK(json_error(run_cli({"--db", store.path(), "--format", "json", "show", "no-such-job"}), 1)["error"] ==
        "no job with ID 'no-such-job' (jobtrail ls lists the recorded ones)");
  json_error(run_cli({"--db", store.path(), "--format", "json", "ls", "--state", "running"}), 2);
  json_error(run_cli({"--format", "json", "--db", store.path(), "ls", "--no-such-flag"}), 2);  // a parse error
  json_error(run_cli({"ls", "--format=json", "--db", store.path() + ".missing"}), 3);
  json_error(run_cli({"--format", "json", "--db", store.path(), "trace", "no-such-request"}), 1);
  json_error(run_cli({"--format", "json", "--db", store.path(), "emit", "--job-id", "j", "--state", "done"}), 2);
  // Bytes that are not UTF-8 (an ID from a hostile caller) do not break the object.
  const json hostile = json_error(run_cli({"--db", store.path(), "--format", "json", "show", "bad-\xff-id"}), 1);
  CHECK(contains(hostile["error"].get<std::string>(), "bad-"));
  // Without --format json errors stay one plain line.
  const CliResult plain = run_cli({"--db", store.path(), "show", "no-such-job"});
  CHECK(plain.err.starts_with("jobtrail: no job"));
}

TEST_CASE("a command that creates a store says so, and never in a directory that is not there", "[cli]") {
  const TempDir directory;
  const std::string typo = directory.file("no-such-dir/jobs.db");
  const CliResult emit = run_cli({"--db", typo, "emit", "--job-id", "j", "--state", "started"});
  CHECK(emit.exit_code == 3);
  CHECK(emit.err == "jobtrail: cannot open store: cannot create a store at " + typo + ": the directory " +
                        directory.file("no-such-dir") + " does not exist\n");
  const CliResult serve = run_cli({"--db", typo, "serve", "--listen", "127.0.0.1:0"});
  CHECK(serve.exit_code == 3);
  CHECK(contains(serve.err, "the directory " + directory.file("no-such-dir") + " does not exist"));
  // exec still runs the command (the job matters more than its record), with the reason.
  const CliResult exec = run_cli({"--db", typo, "exec", "--job", "nightly", "--", "true"});
  CHECK(exec.exit_code == 0);
  CHECK(contains(exec.err, "does not exist"));
  CHECK_FALSE(std::filesystem::exists(directory.file("no-such-dir")));

  const std::string fresh = directory.file("fresh.db");
  const std::string note = "jobtrail: created a new, empty store at '" + fresh +
                           "' (nothing was there: check --db if you meant an existing one)\n";
  const CliResult first = run_cli({"--db", fresh, "exec", "--job", "nightly", "--", "true"});
  CHECK(first.exit_code == 0);
  CHECK(first.err == note);
  const CliResult again = run_cli({"--db", fresh, "exec", "--job", "nightly", "--", "true"});
  CHECK(again.err.empty());
  const std::string other = directory.file("other.db");
  CHECK(run_cli({"--db", other, "emit", "--job-id", "j", "--state", "started"}).err ==
        "jobtrail: created a new, empty store at '" + other +
            "' (nothing was there: check --db if you meant an existing one)\n");
  CHECK(run_cli({"--db", other, "emit", "--job-id", "j", "--state", "succeeded"}).err.empty());
}
