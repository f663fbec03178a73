// `jobtrail check` as cron runs it: the real binary, its exit codes, report and history.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <regex>

#include "checker_fixture.h"
#include "cli_runner.h"

using namespace jobtrail;
using namespace jobtrail::testing;
using jobtrail::cli_testing::run_cli;

namespace {

const std::string now_flag = "--now=2026-11-22T12:00:00Z";

std::string write_config(CheckerFixture& f, const std::string& yaml) {
  const auto path = f.dir.file("checks.yaml");
  std::ofstream(path) << yaml;
  return path;
}

std::string users_config(const std::string& severity) {
  return app_only + "checks:\n  - name: unvalidated_users\n    database: app\n    entity: user\n    severity: " +
         severity + "\n    description: Users never validated\n    runbook: https://runbooks.example/users\n"
         "    query: SELECT id, email FROM users WHERE validated = 0 ORDER BY id\n";
}

}  // namespace

TEST_CASE("check exit codes: 0 pass, 1 warnings, 2 failures, 3 cannot run", "[checker][cli][store]") {
  CheckerFixture f;
  exec_sql(f.app_path, "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, validated INTEGER);"
                       "INSERT INTO users VALUES (41, 'a@example.com', 1);");
  auto enqueue = event("welcome-email-42", State::enqueued, test_now - hour);
  enqueue.entities = {"user:42"};
  f.store->append({enqueue});
  const std::string db = "--db=" + f.store_url();

  auto config = write_config(f, users_config("error"));
  auto pass = run_cli({"check", "--config", config, db, now_flag});
  INFO(pass.out << pass.err);
  CHECK(pass.exit_code == 0);
  CHECK(pass.out.find("PASS  unvalidated_users") != std::string::npos);

  exec_sql(f.app_path, "INSERT INTO users VALUES (42, 'ann@example.com', 0)");
  auto fail = run_cli({"check", "--config", config, db, now_flag});
  INFO(fail.out << fail.err);
  CHECK(fail.exit_code == 2);
  CHECK(fail.out.rfind("jobtrail check: 1 failed, 0 with warnings, 0 could not run, 0 passed", 0) == 0);
  CHECK(fail.out.find("FAIL  unvalidated_users  1 row: 1 new") != std::string::npos);
  CHECK(fail.out.find("      - id=42  email=ann@example.com  (new)\n") != std::string::npos);
  CHECK(fail.out.find("          user:42: welcome-email-42  WelcomeEmailJob  enqueued  attempts 1\n") != std::string::npos);
  CHECK(fail.out.find("      runbook: https://runbooks.example/users\n") != std::string::npos);

  // Run again: the row is no longer new.
  auto again = run_cli({"check", "--config", config, db, "--now=2026-11-22T13:00:00Z"});
  CHECK(again.out.find("1 row: 1 still failing") != std::string::npos);
  CHECK(again.out.find("(failing since 2026-11-22 12:00:00.000Z)") != std::string::npos);

  config = write_config(f, users_config("warn"));
  auto warn = run_cli({"check", "--config", config, db, now_flag, "--format=json"});
  INFO(warn.out << warn.err);
  CHECK(warn.exit_code == 1);
  auto json = nlohmann::json::parse(warn.out);
  CHECK(json["exit_code"] == 1);
  CHECK(json["summary"]["warn"] == 1);
  CHECK(json["checks"][0]["status"] == "warn");
  CHECK(json["checks"][0]["samples"][0]["row"]["id"] == "42");
  CHECK(json["checks"][0]["samples"][0]["entity"] == "user:42");
  CHECK(json["checks"][0]["samples"][0]["jobs"][0]["job_id"] == "welcome-email-42");
  CHECK(json["checks"][0]["samples"][0]["new"] == false);

  // The history of the check, newest first.
  auto history = run_cli({"check", "--history", "unvalidated_users", db});
  INFO(history.out << history.err);
  CHECK(history.exit_code == 0);
  CHECK(history.out.rfind("RUN  STARTED", 0) == 0);
  CHECK(history.out.find("warn") != std::string::npos);
  // The same runs as CSV, for a spreadsheet: the JSON lines' fields, raw times and durations.
  auto csv = run_cli({"check", "--history", "unvalidated_users", db, "--format", "csv"});
  INFO(csv.out << csv.err);
  CHECK(csv.exit_code == 0);
  CHECK(csv.out.rfind("check,run_id,started_at,status,severity,violations,new,resolved,duration_us,error\n", 0) == 0);
  CHECK(std::regex_search(csv.out, std::regex("\nunvalidated_users,[0-9]+,2026-11-22T12:00:00\\.000000Z,warn,warn,1,0,0,"
                                               "[0-9]+,\n")));
  CHECK(std::regex_search(csv.out, std::regex("\nunvalidated_users,[0-9]+,2026-11-22T13:00:00\\.000000Z,fail,error,1,0,"
                                               "0,[0-9]+,\n")));
  CHECK(std::count(csv.out.begin(), csv.out.end(), '\n') == 5);  // the header and four runs

  // Cannot run: a broken config (file and line on stderr), a missing store, a bad flag.
  config = write_config(f, app_only + "checks:\n  - name: x\n    database: app\n    query: SELECT 1\n    samples: many\n");
  auto broken = run_cli({"check", "--config", config, db});
  CHECK(broken.exit_code == 3);
  CHECK(broken.err == "jobtrail: " + config + ":8: \"samples\" must be a whole number from 0 to 1000 (got \"many\")\n");
  auto no_store = run_cli({"check", "--config", write_config(f, users_config("error")), "--db=sqlite:" + f.dir.file("none.db")});
  CHECK(no_store.exit_code == 3);
  CHECK_FALSE(std::filesystem::exists(f.dir.file("none.db")));
  CHECK(run_cli({"check", "--config", config, "--bogus"}).exit_code == 3);
  CHECK(run_cli({"check", "--config", write_config(f, users_config("error")), db, "--push-gateway", "localhost:9091"})
            .exit_code == 3);

  // --validate reads the config only.
  auto validate = run_cli({"check", "--config", write_config(f, users_config("error")), "--validate"});
  CHECK(validate.exit_code == 0);
  CHECK(validate.out == f.dir.file("checks.yaml") + ": 1 check ok\n");
}

TEST_CASE("check writes the textfile for node_exporter and --help documents the exit codes",
          "[checker][cli][store]") {
  CheckerFixture f;
  exec_sql(f.app_path, "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, validated INTEGER);");
  const auto metrics = f.dir.file("metrics");
  std::filesystem::create_directories(metrics);
  auto result = run_cli({"check", "--config", write_config(f, users_config("error")), "--db=" + f.store_url(),
                         "--textfile-dir", metrics});
  INFO(result.out << result.err);
  CHECK(result.exit_code == 0);
  CHECK(std::filesystem::exists(metrics + "/jobtrail_check_checks.prom"));
  auto missing = run_cli({"check", "--config", f.dir.file("checks.yaml"), "--db=" + f.store_url(),
                          "--textfile-dir", f.dir.file("nope")});
  CHECK(missing.exit_code == 3);
  CHECK(missing.err.find("metrics not written: the textfile directory") != std::string::npos);

  auto help = run_cli({"check", "--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("Exit codes: 0 every check passed, 1 warnings only, 2 a check failed, 3 the checker") !=
        std::string::npos);
}

namespace {
/// Replaces what changes from run to run (durations, the temporary directory) with fixed text.
std::string normalized(std::string text, const std::string& dir) {
  for (std::size_t at = text.find(dir); at != std::string::npos; at = text.find(dir)) text.replace(at, dir.size(), "DIR");
  text = std::regex_replace(text, std::regex(R"(  \[[0-9.]+(µs|ms|s)\]\n)"), "  [TIME]\n");
  text = std::regex_replace(text, std::regex(R"(checks, [0-9.]+(µs|ms|s), )"), "checks, TIME, ");
  text = std::regex_replace(text, std::regex(R"("duration_us":[0-9]+)"), "\"duration_us\":0");
  return text;
}
}  // namespace

// The same golden files for both stores: a report does not depend on where its history is kept.
TEST_CASE("check report, table and JSON (golden)", "[checker][cli][golden][store]") {
  CheckerFixture f;
  exec_sql(f.app_path, "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, validated INTEGER);"
                       "INSERT INTO users VALUES (41, 'a@example.com', 1), (42, 'b@example.com', 0), (45, NULL, 0);");
  auto lost = event("welcome-email-42", State::enqueued, test_now - 2 * hour);
  lost.entities = {"user:42"};
  auto dead = event("welcome-email-45", State::dead, test_now - hour);
  dead.entities = {"user:45"};
  dead.error = {"MailGateway::InvalidRecipient", "550 5.1.1 mailbox unavailable", ""};
  f.store->append({lost, dead, event("report-1", State::started, test_now - 3 * hour, "ReportJob")});
  const auto config = write_config(f, R"(databases:
  shop: app.db
builtin:
  stuck_jobs: {deadline: 1h}
  lost_jobs: false
  duplicate_executions: false
  missed_cron_runs: false
checks:
  - name: unvalidated_users
    description: Signed up, never validated
    runbook: https://runbooks.example/users
    database: shop
    entity: user
    query: SELECT id, email FROM users WHERE validated = 0 ORDER BY id
  - name: slow
    database: shop
    timeout: 100ms
    query: WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n WHERE i < 0
)");
  const std::string db = "--db=" + f.store_url();
  const auto dir = f.dir.path().string();
  auto table = run_cli({"check", "--config", config, db, now_flag});
  CHECK(table.exit_code == 3);
  const auto table_out = normalized(table.out, dir);
  CHECK(table_out == cli_testing::golden("check_report.txt", table_out));
  auto json = run_cli({"check", "--config", config, db, "--now=2026-11-22T13:00:00Z", "--format=json"});
  const auto json_out = normalized(json.out, dir);
  CHECK(json_out == cli_testing::golden("check_report.json", json_out));
}
