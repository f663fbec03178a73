// What a user gets when something is wrong: the right exit code and exactly one line on
// stderr, and read commands that never create a store by accident.

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "prepared_store.h"

using namespace jobtrail::cli_testing;

namespace {

/// Exit code `expected`, nothing on stdout, one "jobtrail: ..." line on stderr.
void check_failure(const CliResult& result, int expected) {
  INFO("stdout: " << result.out << "\nstderr: " << result.err);
  CHECK(result.exit_code == expected);
  CHECK(result.out.empty());
  CHECK(result.err.rfind("jobtrail: ", 0) == 0);
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  CHECK(result.err.back() == '\n');
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("an unknown job or correlation ID exits 1", "[cli]") {
  const PreparedStore store;
  const CliResult show = run_cli({"--db", store.path(), "show", "no-such-job"});
  check_failure(show, 1);
  CHECK(show.err == "jobtrail: no job with ID 'no-such-job' (jobtrail ls lists the recorded ones)\n");
  check_failure(run_cli({"--db", store.path(), "trace", "no-such-request"}), 1);
  // With --format json the one line is the JSON error object (README, "Exit codes").
  const CliResult json_show = run_cli({"--db", store.path(), "--format", "json", "show", "no-such-job"});
  CHECK(json_show.exit_code == 1);
  CHECK(json_show.out.empty());
  CHECK(json_show.err ==
        "{\"error\":\"no job with ID 'no-such-job' (jobtrail ls lists the recorded ones)\",\"exit_code\":1}\n");
}

TEST_CASE("read commands on a missing store exit 3 and create nothing", "[cli]") {
  const TempDir directory;
  const std::string missing = directory.file("missing.db");
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"show", "job-1"}, {"trace", "req-1"}, {"ls"}, {"stats"},
        {"prune", "--older-than", "30d"}}) {
    INFO("jobtrail " << command.front());
    std::vector<std::string> args{"--db", missing};
    args.insert(args.end(), command.begin(), command.end());
    const CliResult result = run_cli(args);
    check_failure(result, 3);
    CHECK(contains(result.err, missing));
    CHECK_FALSE(std::filesystem::exists(missing));
  }
  // The sqlite: URL form names the same file.
  check_failure(run_cli({"--db", "sqlite:" + missing, "ls"}), 3);
  CHECK_FALSE(std::filesystem::exists(missing));
}

TEST_CASE("a file that is not a jobtrail store exits 3", "[cli]") {
  const TempDir directory;
  SECTION("another application's SQLite database") {
    const std::string other = directory.file("app.db");
    sqlite3* database = nullptr;
    REQUIRE(sqlite3_open(other.c_str(), &database) == SQLITE_OK);
    REQUIRE(sqlite3_exec(database, "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)", nullptr, nullptr,
                         nullptr) == SQLITE_OK);
    sqlite3_close(database);
    check_failure(run_cli({"--db", other, "ls"}), 3);
    check_failure(run_cli({"--db", other, "show", "job-1"}), 3);
  }
  SECTION("a text file") {
    const std::string text = directory.file("notes.txt");
    std::ofstream(text) << "not a database at all, just some notes that are long enough to matter\n";
    check_failure(run_cli({"--db", text, "stats"}), 3);
  }
}

TEST_CASE("bad durations and times exit 2", "[cli]") {
  const PreparedStore store;
  const CliResult bad_since = run_cli({"--db", store.path(), "ls", "--since", "yesterday"});
  check_failure(bad_since, 2);
  CHECK(contains(bad_since.err, "--since 'yesterday'"));
  check_failure(run_cli({"--db", store.path(), "ls", "--since", "24"}), 2);     // seconds? hours?
  check_failure(run_cli({"--db", store.path(), "ls", "--until", "2017-02-30"}), 2);
  check_failure(run_cli({"--db", store.path(), "stats", "--since", "-5m"}), 2);
  check_failure(run_cli({"--db", store.path(), "prune", "--older-than", "30 days"}), 2);
  check_failure(run_cli({"--db", store.path(), "--now", "soon", "ls"}), 2);
}

TEST_CASE("bad filters and usage exit 2", "[cli]") {
  const PreparedStore store;
  const CliResult bad_state = run_cli({"--db", store.path(), "ls", "--state", "running"});
  check_failure(bad_state, 2);
  CHECK(contains(bad_state.err, "enqueued, started, succeeded, failed, dead, cancelled"));
  check_failure(run_cli({"--db", store.path(), "ls", "--state", "heartbeat"}), 2);
  const CliResult bad_list = run_cli({"--db", store.path(), "ls", "--state", "failed,,dead"});
  check_failure(bad_list, 2);
  CHECK(bad_list.err.find("empty job state") != std::string::npos);
  check_failure(run_cli({"--db", store.path(), "ls", "--state", "failed,running"}), 2);
  const CliResult bad_cursor = run_cli({"--db", store.path(), "ls", "--cursor", "not-a-cursor"});
  check_failure(bad_cursor, 2);
  CHECK(bad_cursor.err.find("bad --cursor 'not-a-cursor'") != std::string::npos);
  check_failure(run_cli({"--db", store.path(), "ls", "--output", "narrow"}), 2);
  check_failure(run_cli({"--db", store.path(), "ls", "--follow", "--cursor", "ajEuMS4x"}), 2);
  check_failure(run_cli({"--db", store.path(), "ls", "--follow", "--interval", "1ms"}), 2);
  check_failure(run_cli({"--db", store.path(), "ls", "--follow", "--interval", "soon"}), 2);
  check_failure(run_cli({"--db", store.path(), "ls", "--entity", "user"}), 2);
  check_failure(run_cli({"--db", store.path(), "ls", "--limit", "0"}), 2);
  check_failure(run_cli({"--db", store.path(), "ls", "--colour"}), 2);
  check_failure(run_cli({"--db", store.path(), "--format", "yaml", "ls"}), 2);
  check_failure(run_cli({"--db", store.path(), "frobnicate"}), 2);
  check_failure(run_cli({"--db", store.path()}), 2);
}

TEST_CASE("missing required arguments exit 2 and point at the right help", "[cli]") {
  const PreparedStore store;
  const CliResult show = run_cli({"--db", store.path(), "show"});
  check_failure(show, 2);
  CHECK(contains(show.err, "jobtrail show --help"));
  check_failure(run_cli({"--db", store.path(), "trace"}), 2);
  check_failure(run_cli({"--db", store.path(), "emit", "--state", "started"}), 2);
  check_failure(run_cli({"--db", store.path(), "emit", "--job-id", "job-1"}), 2);
  check_failure(run_cli({"--db", store.path(), "prune"}), 2);
}

TEST_CASE("no store named anywhere exits 2", "[cli]") {
  const CliResult result = run_cli({"ls"});
  check_failure(result, 2);
  CHECK(contains(result.err, "JOBTRAIL_DB"));
}

TEST_CASE("emit refuses what cannot be recorded", "[cli]") {
  const TempDir directory;
  const std::string db = directory.file("emitted.db");
  const CliResult unknown_state = run_cli({"--db", db, "emit", "--job-id", "job-1", "--state", "done"});
  check_failure(unknown_state, 2);
  CHECK(unknown_state.err ==
        "jobtrail: unknown state 'done' (valid: enqueued, started, heartbeat, succeeded, failed, dead, cancelled)\n");
  check_failure(run_cli({"--db", db, "emit", "--job-id", "job-1", "--state", "started", "--entity", "no colon"}), 2);
  check_failure(run_cli({"--db", db, "emit", "--job-id", "", "--state", "started"}), 2);
  check_failure(run_cli({"--db", db, "emit", "--job-id", "job-1", "--state", "started", "--attempt", "-1"}), 2);
  check_failure(run_cli({"--db", db, "emit", "--job-id", "job-1", "--state", "started", "--at", "noon"}), 2);
  // Nothing was valid, so nothing was created.
  CHECK_FALSE(std::filesystem::exists(db));
}

TEST_CASE("emit records events that show then prints", "[cli]") {
  const TempDir directory;
  const std::string db = directory.file("emitted.db");
  bool first = true;
  const auto emit = [&db, &first](std::vector<std::string> args) {
    args.insert(args.begin(), {"--db", db, "emit", "--job-id", "import-7", "--job", "ImportJob"});
    const CliResult result = run_cli(args);
    INFO("stderr: " << result.err);
    CHECK(result.exit_code == 0);
    // The first emit creates the store, and says so (test_ingest_edge.cpp); then silence.
    CHECK((first ? result.err.starts_with("jobtrail: created a new, empty store") : result.err.empty()));
    first = false;
    return result.out;
  };
  CHECK(emit({"--state", "enqueued", "--queue", "imports", "--correlation-id", "req-9", "--entity", "user:42",
              "--entity", "upload:17", "--idempotency-key", "import:upload:17", "--at",
              "2017-09-01T12:00:00Z"}) == "recorded enqueued of job import-7 at 2017-09-01 12:00:00.000Z\n");
  emit({"--state", "started", "--attempt", "1", "--worker", "cron-1:55", "--at", "2017-09-01T12:00:01.5Z"});
  emit({"--state", "failed", "--attempt", "1", "--worker", "cron-1:55", "--error", "row 17: bad date",
        "--error-class", "CSV::MalformedError", "--backtrace", "import.rb:3\nmain.rb:1", "--at",
        "2017-09-01T12:00:04Z"});
  // A redelivered event is stored once.
  CHECK(emit({"--state", "failed", "--attempt", "1", "--worker", "cron-1:55", "--error", "row 17: bad date",
              "--error-class", "CSV::MalformedError", "--backtrace", "import.rb:3\nmain.rb:1", "--at",
              "2017-09-01T12:00:04Z"})
            .rfind("already recorded", 0) == 0);

  const CliResult show =
      run_cli({"show", "import-7", "--backtrace", "--now", "2017-09-01T12:10:00Z"}, {{"JOBTRAIL_DB", "sqlite:" + db}});
  INFO("stderr: " << show.err);
  REQUIRE(show.exit_code == 0);
  CHECK(show.out ==
        "job ID           import-7\n"
        "class            ImportJob\n"
        "state            failed\n"
        "attempts         1\n"
        "queue            imports\n"
        "correlation ID   req-9\n"
        "parent job       -\n"
        "idempotency key  import:upload:17\n"
        "enqueued         2017-09-01 12:00:00.000Z\n"
        "started          2017-09-01 12:00:01.500Z\n"
        "finished         2017-09-01 12:00:04.000Z\n"
        "last event       2017-09-01 12:00:04.000Z (9m56s ago)\n"
        "wait             1.5s\n"
        "run              2.5s\n"
        "worker           cron-1:55\n"
        "entities         upload:17 user:42\n"
        "anomalies        none\n"
        "last error       CSV::MalformedError: row 17: bad date\n"
        "\n"
        "3 events:\n"
        "TIME                      OFFSET  STATE     ATTEMPT  WORKER     ERROR\n"
        "2017-09-01 12:00:00.000Z     +0s  enqueued        1  -\n"
        "2017-09-01 12:00:01.500Z   +1.5s  started         1  cron-1:55\n"
        "2017-09-01 12:00:04.000Z   +4.0s  failed          1  cron-1:55  CSV::MalformedError: row 17: bad date\n"
        "    import.rb:3\n"
        "    main.rb:1\n");
}

TEST_CASE("JOBTRAIL_DB names the store when --db is absent", "[cli]") {
  const PreparedStore store;
  const CliResult from_environment = run_cli({"ls", "--job", "InvoiceJob"}, {{"JOBTRAIL_DB", store.path()}});
  CHECK(from_environment.exit_code == 0);
  CHECK(contains(from_environment.out, "invoice-2017-08-acme"));
  // --db wins over the environment.
  const TempDir directory;
  check_failure(run_cli({"--db", directory.file("other.db"), "ls"}, {{"JOBTRAIL_DB", store.path()}}), 3);
}

TEST_CASE("ls with no match prints nothing and exits 0", "[cli]") {
  const PreparedStore store;
  const CliResult table = run_cli({"--db", store.path(), "ls", "--job", "NoSuchJob"});
  CHECK(table.exit_code == 0);
  CHECK(table.out.empty());
  CHECK(table.err == "jobtrail: no jobs match\n");
  const CliResult json = run_cli({"--db", store.path(), "--format", "json", "ls", "--job", "NoSuchJob"});
  CHECK(json.exit_code == 0);
  CHECK(json.out.empty());
  CHECK(json.err.empty());
}

TEST_CASE("global options may follow the subcommand", "[cli]") {
  const PreparedStore store;
  const CliResult result = run_cli({"ls", "--job", "InvoiceJob", "--format", "json", "--db", store.path()});
  CHECK(result.exit_code == 0);
  CHECK(result.out.rfind("{\"job_id\":\"invoice-2017-08-acme\"", 0) == 0);
}

TEST_CASE("prune deletes old finished jobs and keeps running ones", "[cli]") {
  const PreparedStore store;
  const std::vector<std::string> db{"--db", store.path()};
  const CliResult nothing_yet = run_cli({"--db", store.path(), "--now", "2017-09-02T00:00:00Z", "prune",
                                         "--older-than", "30d"});
  CHECK(nothing_yet.exit_code == 0);
  CHECK(nothing_yet.out == "deleted 0 jobs (0 events) last active before 2017-08-03 00:00:00.000Z\n");

  const CliResult pruned = run_cli({"--db", store.path(), "--now", "2017-12-01T00:00:00Z", "--format", "json",
                                    "prune", "--older-than", "30d"});
  CHECK(pruned.exit_code == 0);
  CHECK(contains(pruned.out, "\"cutoff\":\"2017-11-01T00:00:00.000000Z\""));
  check_failure(run_cli({"--db", store.path(), "show", "welcome-email-42"}), 1);
  // Still running (or waiting) however old: a stuck job is exactly what someone is looking for.
  CHECK(run_cli({"--db", store.path(), "show", "nightly-report-2017-08-31"}).exit_code == 0);
  CHECK(run_cli({"--db", store.path(), "show", "audit-log-42"}).exit_code == 0);
}

TEST_CASE("prune --dry-run counts by the same rule and deletes nothing; --reclaim gives the space back", "[cli]") {
  const PreparedStore store;
  const std::vector<std::string> late{"--db", store.path(), "--now", "2017-12-01T00:00:00Z"};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin(), late.begin(), late.end());
    return run_cli(args);
  };
  const CliResult dry = with({"--format", "json", "prune", "--older-than", "30d", "--dry-run"});
  CHECK(dry.exit_code == 0);
  const auto dry_document = nlohmann::json::parse(dry.out);
  CHECK(dry_document["dry_run"] == true);
  CHECK(dry_document["jobs"].get<int>() > 0);
  // Nothing went: the job a real prune deletes is still there.
  CHECK(run_cli({"--db", store.path(), "show", "welcome-email-42"}).exit_code == 0);

  const CliResult dry_table = with({"prune", "--older-than", "30d", "--dry-run"});
  CHECK(dry_table.out.rfind("would delete " + std::to_string(dry_document["jobs"].get<int>()) + " jobs", 0) == 0);

  const CliResult pruned = with({"--format", "json", "prune", "--older-than", "30d", "--reclaim"});
  CHECK(pruned.exit_code == 0);
  const auto document = nlohmann::json::parse(pruned.out);
  // The dry run counted exactly what the prune then deleted.
  CHECK(document["jobs"] == dry_document["jobs"]);
  CHECK(document["events"] == dry_document["events"]);
  CHECK(document["dry_run"] == false);
  CHECK(document["bytes_after"].get<std::int64_t>() <= document["bytes_before"].get<std::int64_t>());
  CHECK(document["bytes_after"].get<std::int64_t>() > 0);
  check_failure(run_cli({"--db", store.path(), "show", "welcome-email-42"}), 1);

  // The two flags contradict each other: a usage error.
  check_failure(with({"prune", "--older-than", "30d", "--dry-run", "--reclaim"}), 2);
}

TEST_CASE("help and version flags succeed and document the exit codes", "[cli]") {
  const CliResult help = run_cli({"--help"});
  CHECK(help.exit_code == 0);
  CHECK(contains(help.out, "Exit codes: 0 ok, 1 job or correlation ID not found"));
  for (const char* command : {"show", "trace", "ls", "stats", "emit", "prune"}) {
    INFO(command);
    const CliResult sub_help = run_cli({command, "--help"});
    CHECK(sub_help.exit_code == 0);
    CHECK(contains(sub_help.out, "Exit codes:"));
  }
  const CliResult version = run_cli({"--version"});
  CHECK(version.exit_code == 0);
  CHECK(version.out.rfind("jobtrail ", 0) == 0);
}
