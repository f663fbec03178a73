// SQL checks on PostgreSQL application databases, against the real server the `postgres` ctest
// fixture starts: a read-only transaction, a statement timeout, a cursor that counts every row.

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>

#include "checker_fixture.h"
#include "cli_runner.h"
#include "pg_test_database.h"
#include "jobtrail/drivers/pg_connection.h"
#include "sql_check.h"

using namespace jobtrail;
using namespace jobtrail::testing;
using jobtrail::cli_testing::run_cli;
using jobtrail::test::TempPgDatabase;

namespace {

/// Runs SQL on a PostgreSQL database outside jobtrail, as the application would.
void pg_exec(const std::string& url, const std::string& sql) {
  pg::Connection connection(url);
  connection.execute(sql);
}

std::int64_t pg_integer(const std::string& url, const std::string& sql) {
  pg::Connection connection(url);
  return connection.execute(sql).integer(0, 0);
}

/// The store under test for the history (PostgreSQL: this binary is registered with
/// jobtrail_postgres_tests() only) and an application database on the test server.
class PgCheckerFixture : public CheckerFixture {
 public:
  PgCheckerFixture() {
    pg_exec(app.url(),
            "CREATE TABLE users (id integer PRIMARY KEY, email text, validated boolean NOT NULL, "
            "signed_up_at timestamptz);"
            "INSERT INTO users VALUES (1, 'a@example.com', true, '2026-11-20 10:00+02'), "
            "(2, 'b@example.com', false, '2026-11-20 10:00+02'), (3, NULL, false, NULL), "
            "(4, 'd@example.com', false, '2026-11-21 00:00Z');"
            "CREATE SEQUENCE invoice_numbers;");
  }

  /// databases: app -> the PostgreSQL database (a URL in YAML quotes: it holds '?' and '&').
  std::string databases() const { return "databases:\n  app: \"" + app.url() + "\"\nbuiltin: false\n"; }

  TempPgDatabase app;
};

/// One check of a config on `database` (the query in YAML double quotes).
std::string sql_check_on(const std::string& database, const std::string& name, const std::string& query,
                         const std::string& extra = "") {
  return "  - name: " + name + "\n    database: " + database + "\n" + extra + "    query: \"" + query + "\"\n";
}

std::string sql_check(const std::string& name, const std::string& query, const std::string& extra = "") {
  return sql_check_on("app", name, query, extra);
}

}  // namespace

TEST_CASE("PostgreSQL: failing rows are counted and sampled, and compared with the last run",
          "[checker][postgres]") {
  PgCheckerFixture f;
  auto enqueue = event("welcome-email-2", State::enqueued, test_now - hour);
  enqueue.entities = {"user:2"};
  f.store->append({enqueue});
  const auto config = f.config(f.databases() + "checks:\n" +
                               sql_check("unvalidated_users",
                                         "SELECT id, email, signed_up_at, validated FROM users "
                                         "WHERE NOT validated ORDER BY id",
                                         "    entity: user\n    samples: 2\n    warn_if: '> 0'\n"
                                         "    error_if: '> 2'\n"));

  auto first = f.run(config);
  const auto& result = CheckerFixture::result(first, "unvalidated_users");
  INFO(result.error);
  CHECK(result.status == CheckStatus::fail);  // 3 rows > 2
  CHECK(result.violations == 3);
  CHECK(result.new_violations == 3);
  REQUIRE(result.samples.size() == 2);
  const auto& columns = result.samples[0].columns;
  REQUIRE(columns.size() == 4);
  CHECK(columns[0] == std::pair<std::string, std::optional<std::string>>{"id", "2"});
  CHECK(columns[1].second == "b@example.com");
  // timestamptz in UTC whatever the server's zone: a row reads the same from every host.
  CHECK(columns[2].second == "2026-11-20 08:00:00+00");
  CHECK(columns[3].second == "f");
  CHECK(result.samples[1].columns[1].second == std::nullopt);  // NULL stays NULL
  CHECK(result.samples[0].entity == "user:2");
  REQUIRE(result.samples[0].jobs.size() == 1);
  CHECK(result.samples[0].jobs[0].job_id == "welcome-email-2");

  // The same rows on the next run: the same fingerprints, still failing; one fixed: resolved.
  pg_exec(f.app.url(), "UPDATE users SET validated = true WHERE id = 4");
  auto second_run = f.run(config, test_now + hour);
  const auto& again = CheckerFixture::result(second_run, "unvalidated_users");
  CHECK(again.status == CheckStatus::warn);  // 2 rows: > 0 but not > 2
  CHECK(again.violations == 2);
  CHECK(again.new_violations == 0);
  CHECK(again.persisting == 2);
  CHECK(again.resolved == 1);
  REQUIRE(again.samples.size() == 2);
  CHECK(again.samples[0].fingerprint == result.samples[0].fingerprint);
  CHECK_FALSE(again.samples[0].is_new);
  CHECK(again.samples[0].failing_since == test_now);

  pg_exec(f.app.url(), "UPDATE users SET validated = true");
  auto third = f.run(config, test_now + 2 * hour);
  CHECK(CheckerFixture::result(third, "unvalidated_users").status == CheckStatus::pass);
  CHECK(CheckerFixture::result(third, "unvalidated_users").resolved == 2);
}

TEST_CASE("PostgreSQL: a check that would write is refused and nothing changes", "[checker][postgres]") {
  PgCheckerFixture f;
  const auto config = f.config(
      f.databases() + "checks:\n" + sql_check("insert", "INSERT INTO users VALUES (9, 'x', true, NULL)") +
      sql_check("update", "UPDATE users SET validated = true") + sql_check("delete", "DELETE FROM users") +
      sql_check("create", "CREATE TABLE intruder (id integer)") +
      sql_check("drop", "/* cleanup */ DROP TABLE users") +
      // Reads that write: a sequence advanced, a data-modifying CTE, a locking read.
      sql_check("nextval", "SELECT nextval('invoice_numbers') AS n") +
      sql_check("cte", "WITH gone AS (DELETE FROM users RETURNING id) SELECT id FROM gone") +
      sql_check("for_update", "SELECT id FROM users FOR UPDATE") +
      // A second statement after a COMMIT would run outside the read-only transaction.
      sql_check("smuggled", "SELECT 1 AS one; COMMIT; DELETE FROM users") +
      sql_check("reads", "SELECT id FROM users WHERE NOT validated"));

  const auto report = f.run(config);
  for (const auto* name : {"insert", "update", "delete", "create", "drop", "nextval", "cte", "for_update"}) {
    const auto& result = CheckerFixture::result(report, name);
    INFO(name << ": " << result.error);
    CHECK(result.status == CheckStatus::error);
    CHECK(result.error.rfind("a check may only read", 0) == 0);
    CHECK(result.error.find("nothing was changed") != std::string::npos);
  }
  CHECK_THAT(CheckerFixture::result(report, "delete").error,
             Catch::Contains("this query is DELETE, not a SELECT (the database is opened in a read-only transaction"));
  CHECK_THAT(CheckerFixture::result(report, "nextval").error,
             Catch::Contains("cannot execute nextval() in a read-only transaction"));
  CHECK(CheckerFixture::result(report, "smuggled").error ==
        "a check is one SELECT statement; this query holds more than one (nothing was run)");
  // The others still run.
  CHECK(CheckerFixture::result(report, "reads").violations == 3);
  CHECK(report.exit_code() == 3);

  CHECK(pg_integer(f.app.url(), "SELECT count(*) FROM users") == 4);
  CHECK(pg_integer(f.app.url(), "SELECT count(*) FROM users WHERE validated") == 1);
  CHECK(pg_integer(f.app.url(), "SELECT count(*) FROM pg_tables WHERE tablename = 'intruder'") == 0);
  CHECK(pg_integer(f.app.url(), "SELECT nextval('invoice_numbers')") == 1);  // never advanced
  // No transaction left behind: every check rolled back and closed its connection.
  CHECK(pg_integer(f.app.url(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'jobtrail' "
                                "AND datname = current_database() AND pid <> pg_backend_pid()") == 0);
}

TEST_CASE("PostgreSQL: a query past its timeout is stopped by the server and is an error",
          "[checker][postgres]") {
  PgCheckerFixture f;
  const auto config = f.config(f.databases() + "checks:\n" +
                               sql_check("slow", "SELECT 1 AS one FROM pg_sleep(5)", "    timeout: 1s\n") +
                               sql_check("quick", "SELECT id FROM users WHERE NOT validated"));
  const auto started = std::chrono::steady_clock::now();
  const auto report = f.run(config);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  const auto& slow = CheckerFixture::result(report, "slow");
  CHECK(slow.status == CheckStatus::error);
  // Durations print in the one display spelling of every command ("1.0s", "1h30m").
  CHECK_THAT(slow.error, Catch::StartsWith("timed out after 1.0s (its timeout"));
  CHECK(elapsed < std::chrono::seconds(4));
  CHECK(CheckerFixture::result(report, "quick").violations == 3);
  CHECK(report.exit_code() == 3);
}

TEST_CASE("PostgreSQL: an expensive expression past the timeout is an error, never a pass",
          "[checker][postgres][timeout]") {
  PgCheckerFixture f;
  // One row, one costly expression (folded while the query is planned): the server's
  // statement_timeout cancels it (measured: 228 ms), and the checker's own deadline check
  // would catch whatever escaped it.
  const auto config = f.config(
      f.databases() + "checks:\n" +
      sql_check("costly",
                "SELECT 1 AS one WHERE length(replace(replace(replace(repeat('0', 20000000), '0', '00'), '0', '00'), "
                "'0', '00')) < 0",
                "    timeout: 200ms\n"));
  const auto started = std::chrono::steady_clock::now();
  const auto report = f.run(config);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  const auto& costly = CheckerFixture::result(report, "costly");
  INFO(costly.error);
  CHECK(costly.status == CheckStatus::error);
  CHECK_THAT(costly.error, Catch::StartsWith("timed out after 200ms (its timeout"));
  CHECK(elapsed < std::chrono::seconds(10));
}

TEST_CASE("PostgreSQL: every failing row is counted, only the first kept", "[checker][postgres]") {
  TempPgDatabase app;
  const std::string query = "SELECT n, 'row ' || n AS label FROM generate_series(1, 25000) AS n ORDER BY n";

  auto few = check::run_postgres_check(app.url(), "", query, 30'000'000, 3);
  CHECK(few.columns == std::vector<std::string>{"n", "label"});
  CHECK(few.count == 25000);
  REQUIRE(few.rows.size() == 3);
  CHECK(few.rows[2][1] == "row 3");

  // Several FETCH batches, then the rest counted on the server.
  auto many = check::run_postgres_check(app.url(), "", query, 30'000'000, 2500);
  CHECK(many.count == 25000);
  REQUIRE(many.rows.size() == 2500);
  CHECK(many.rows[2499][0] == "2500");

  // Fewer rows than kept, and a number of rows that ends a batch exactly.
  auto all = check::run_postgres_check(app.url(), "", "SELECT n FROM generate_series(1, 2000) AS n", 30'000'000, 2500);
  CHECK(all.count == 2000);
  CHECK(all.rows.size() == 2000);
  auto none = check::run_postgres_check(app.url(), "", "SELECT n FROM generate_series(1, 0) AS n", 30'000'000, 5);
  CHECK(none.count == 0);
  CHECK(none.columns == std::vector<std::string>{"n"});
  auto zero_kept = check::run_postgres_check(app.url(), "", query, 30'000'000, 0);
  CHECK(zero_kept.count == 25000);
  CHECK(zero_kept.rows.empty());

  // Through a run: the fingerprint limit keeps few, the count is exact.
  CheckerFixture f;
  auto config = f.config("databases:\n  app: \"" + app.url() + "\"\nbuiltin: false\nchecks:\n" +
                         sql_check("many", "SELECT n FROM generate_series(1, 25000) AS n", "    samples: 2\n"));
  check::RunOptions options;
  options.now = test_now;
  options.fingerprint_limit = 100;
  auto report = check::run_checks(config, *f.store, options);
  const auto& result = CheckerFixture::result(report, "many");
  CHECK(result.violations == 25000);
  CHECK(result.samples.size() == 2);
}

TEST_CASE("PostgreSQL: an unreachable database is an error of its check only, password not shown",
          "[checker][postgres]") {
  PgCheckerFixture f;
  const std::string unreachable = "postgresql://checker:s3cr3t-pw@/shop?host=/nonexistent-jobtrail-dir&port=5999";
  const auto config = f.config("databases:\n  app: \"" + f.app.url() + "\"\n  gone: \"" + unreachable +
                               "\"\nbuiltin: false\nchecks:\n" +
                               sql_check_on("gone", "unreachable", "SELECT 1 AS one") +
                               sql_check("reads", "SELECT id FROM users WHERE NOT validated"));
  const auto report = f.run(config);
  const auto& failed = CheckerFixture::result(report, "unreachable");
  CHECK(failed.status == CheckStatus::error);
  CHECK_THAT(failed.error, Catch::StartsWith("cannot connect to postgresql://checker:***@/shop?host="));
  CHECK(failed.error.find("s3cr3t-pw") == std::string::npos);
  CHECK(failed.error.find('\n') == std::string::npos);
  CHECK(CheckerFixture::result(report, "reads").status == CheckStatus::fail);
  CHECK(report.exit_code() == 3);
  CHECK(check::metrics_text(report).find("s3cr3t-pw") == std::string::npos);
}

TEST_CASE("PostgreSQL: `database: jobtrail` runs on a PostgreSQL store's schema, and its database joins it",
          "[checker][postgres]") {
  // The store in the application's own database, as a team with one PostgreSQL runs it: its
  // schema jobtrail then sits beside the application's tables.
  PgCheckerFixture f;
  auto store = open_store(f.app.url());
  auto dead = event("w-2", State::dead, test_now - hour, "WelcomeEmailJob", 5);
  dead.entities = {"user:2"};
  auto sent = event("w-4", State::succeeded, test_now - hour);
  sent.entities = {"user:4"};
  store->append({dead, sent});
  const auto config = f.config(
      f.databases() +
      "checks:\n"
      "  - name: dead_jobs_by_name\n    database: jobtrail\n"
      "    query: SELECT job_id, attempts FROM jobs WHERE state = 'dead'\n"
      "  - name: prefixed\n    database: jobtrail\n"
      "    query: SELECT job_id FROM jobtrail.jobs\n"
      "  - name: no_welcome_email\n    database: app\n"
      "    query: |\n"
      "      SELECT u.id FROM users u WHERE NOT u.validated AND NOT EXISTS (\n"
      "        SELECT 1 FROM jobtrail.job_entities e JOIN jobtrail.jobs j ON j.job_id = e.job_id\n"
      "        WHERE e.entity = 'user:' || u.id AND j.state = 'succeeded') ORDER BY u.id\n"
      "  - name: writes_store\n    database: jobtrail\n"
      "    query: DELETE FROM jobs\n");
  check::RunOptions options;
  options.now = test_now;
  options.store_url = f.app.url();  // as `jobtrail check --db postgresql://...` passes it
  const auto report = check::run_checks(config, *store, options);
  const auto& dead_jobs = CheckerFixture::result(report, "dead_jobs_by_name");
  INFO(dead_jobs.error);
  CHECK(dead_jobs.violations == 1);
  REQUIRE(dead_jobs.samples.size() == 1);
  CHECK(dead_jobs.samples[0].columns[1].second == "5");
  CHECK(CheckerFixture::result(report, "prefixed").violations == 2);
  const auto& joined = CheckerFixture::result(report, "no_welcome_email");
  INFO(joined.error);
  CHECK(joined.violations == 2);  // users 2 and 3; user 4 got the email
  REQUIRE(joined.samples.size() == 2);
  CHECK(joined.samples[0].columns[0].second == "2");
  CHECK(CheckerFixture::result(report, "writes_store").status == CheckStatus::error);
  CHECK(pg_integer(f.app.url(), "SELECT count(*) FROM jobtrail.jobs") == 2);
  // The run went into the store's own history, beside the jobs.
  CHECK(store->check_history("no_welcome_email", 10).size() == 1);
}

TEST_CASE("PostgreSQL: a SQLite application database with a PostgreSQL store runs alone",
          "[checker][postgres]") {
  PgCheckerFixture f;
  exec_sql(f.app_path, "CREATE TABLE orders (id INTEGER PRIMARY KEY, paid INTEGER); INSERT INTO orders VALUES (1, 0);");
  const auto config = f.config(
      "databases:\n  local: app.db\nbuiltin: false\nchecks:\n"
      "  - name: unpaid\n    database: local\n    query: SELECT id FROM orders WHERE paid = 0\n"
      "  - name: joins_store\n    database: local\n    query: SELECT job_id FROM jobtrail.jobs\n");
  REQUIRE(f.backend.postgres());
  const auto report = f.run(config);
  CHECK(CheckerFixture::result(report, "unpaid").violations == 1);
  const auto& joins = CheckerFixture::result(report, "joins_store");
  CHECK(joins.status == CheckStatus::error);
  CHECK_THAT(joins.error, Catch::Contains("jobtrail.jobs"));
}

TEST_CASE("PostgreSQL: `jobtrail check` on a postgresql:// database, end to end", "[checker][postgres][cli]") {
  PgCheckerFixture f;
  f.store->append({event("w-1", State::enqueued, test_now - hour)});
  const auto config = f.dir.file("checks.yaml");
  std::ofstream(config) << f.databases() + "checks:\n" +
                               sql_check("unvalidated_users", "SELECT id, email FROM users WHERE NOT validated ORDER BY id",
                                         "    entity: user\n    samples: 1\n");
  const std::string db = "--db=" + f.store_url();

  auto validate = run_cli({"check", "--config", config, "--validate"});
  INFO(validate.out << validate.err);
  CHECK(validate.exit_code == 0);

  auto fail = run_cli({"check", "--config", config, db, "--now=2026-11-22T12:00:00Z"});
  INFO(fail.out << fail.err);
  CHECK(fail.exit_code == 2);
  CHECK(fail.out.rfind("jobtrail check: 1 failed, 0 with warnings, 0 could not run, 0 passed", 0) == 0);
  CHECK(fail.out.find("FAIL  unvalidated_users  3 rows: first run") != std::string::npos);
  CHECK(fail.out.find("      - id=2  email=b@example.com  (new)\n") != std::string::npos);
  CHECK(fail.out.find("      … and 2 rows more\n") != std::string::npos);

  auto json = run_cli({"check", "--config", config, db, "--now=2026-11-22T13:00:00Z", "--format=json"});
  INFO(json.out << json.err);
  CHECK(json.exit_code == 2);
  auto report = nlohmann::json::parse(json.out);
  CHECK(report["checks"][0]["violations"] == 3);
  CHECK(report["checks"][0]["persisting"] == 3);
  CHECK(report["checks"][0]["samples"][0]["row"]["id"] == "2");

  // A database that cannot be reached: exit 3, the password nowhere in the output.
  std::ofstream(config) << "databases:\n  app: \"postgresql://checker:s3cr3t-pw@/shop?host=/nonexistent-jobtrail-dir\"\n"
                           "builtin: false\nchecks:\n" + sql_check("down", "SELECT 1 AS one");
  auto down = run_cli({"check", "--config", config, db});
  INFO(down.out << down.err);
  CHECK(down.exit_code == 3);
  CHECK(down.out.find("ERROR down  could not run") != std::string::npos);
  CHECK(down.out.find("cannot connect to postgresql://checker:***@/shop") != std::string::npos);
  CHECK((down.out + down.err).find("s3cr3t-pw") == std::string::npos);
}
