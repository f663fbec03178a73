#include <catch2/catch.hpp>
#include <chrono>
#include <limits>

#include "checker_fixture.h"
#include "jobtrail/view/time_format.h"
#include "sql_check.h"

using namespace jobtrail;
using namespace jobtrail::testing;

namespace {
/// The message of the ConfigError that parsing `yaml` throws.
std::string config_error(const std::string& yaml) {
  try {
    check::parse_config(yaml, "/etc/jobtrail/checks.yaml");
  } catch (const check::ConfigError& error) {
    return error.what();
  }
  FAIL("the config was accepted:\n" << yaml);
  return {};
}
}  // namespace

TEST_CASE("a full config reads with its defaults", "[checker][config]") {
  auto config = check::parse_config(R"(
store: jobtrail.db
databases:
  app: ../app/app.db
defaults:
  samples: 3
  timeout: 10s
builtin:
  stuck_jobs:
    deadline: 2h
    per_job:
      NightlyReportJob: 10h
  dead_jobs: false
checks:
  - name: unvalidated_users
    description: Users never validated
    database: app
    query: SELECT id FROM users WHERE validated = 0
    entity: user
    runbook: https://runbooks.example/welcome
  - name: double_charges
    database: app
    query: SELECT customer_id, invoice_id, count(*) AS charges FROM payments GROUP BY 1, 2 HAVING count(*) > 1
    severity: warn
    warn_if: "> 0"
    error_if: ">= 3"
    samples: 10
    timeout: 500ms
    key: [customer_id, invoice_id]
)", "/etc/jobtrail/checks.yaml");
  CHECK(config.store == "sqlite:/etc/jobtrail/jobtrail.db");
  CHECK(config.databases.at("app") == "/etc/app/app.db");
  REQUIRE(config.checks.size() == 6);  // 2 SQL checks + 4 built-in (dead_jobs is off)
  const auto& users = config.checks[0];
  CHECK(users.name == "unvalidated_users");
  CHECK(users.line == 15);
  CHECK(users.severity == "error");
  CHECK(users.samples == 3);
  CHECK(users.timeout == 10 * second);
  CHECK(users.entity == "user");
  CHECK(users.entity_column == "id");
  const auto& charges = config.checks[1];
  CHECK(charges.severity == "warn");
  CHECK(charges.warn_if->text() == "> 0");
  CHECK(charges.error_if->text() == ">= 3");
  CHECK(charges.timeout == 500'000);
  CHECK(charges.key == std::vector<std::string>{"customer_id", "invoice_id"});
  const auto& stuck = config.checks[2];
  CHECK(stuck.name == "stuck_jobs");
  CHECK(stuck.deadlines.for_class("NightlyReportJob") == 10 * hour);
  CHECK(stuck.deadlines.for_class("WelcomeEmailJob") == 2 * hour);
  for (const auto& check : config.checks) CHECK(check.name != "dead_jobs");
}

TEST_CASE("config mistakes name the file, the line and what is wrong", "[checker][config]") {
  CHECK(config_error("checks:\n  - name: a\n    database: jobtrail\n    query: SELECT 1\n    severty: warn\n") ==
        "/etc/jobtrail/checks.yaml:5: unknown key \"severty\" in a check (known: name, database, query, entity, "
        "entity_column, key, description, runbook, severity, warn_if, error_if, samples, timeout)");
  CHECK(config_error("checks:\n  - name: a\n    database: jobtrail\n    query: SELECT 1\n    warn_if: 10\n") ==
        "/etc/jobtrail/checks.yaml:5: \"warn_if\" must compare the row count with a number, such as \"> 10\", "
        "\">= 1\" or \"!= 0\" (got \"10\"; quote it in YAML)");
  CHECK(config_error("checks:\n  - name: a\n    database: app\n    query: SELECT 1\n") ==
        "/etc/jobtrail/checks.yaml:3: check \"a\" names the database \"app\", which \"databases\" does not define "
        "(known: jobtrail)");
  CHECK(config_error("checks:\n  - name: a\n    database: jobtrail\n") ==
        "/etc/jobtrail/checks.yaml:2: check \"a\" needs a \"query\" returning the rows that must not exist");
  CHECK(config_error("checks:\n  - name: a\n    database: jobtrail\n    query: SELECT 1\n    timeout: 30\n") ==
        "/etc/jobtrail/checks.yaml:5: \"timeout\" must be a positive duration such as 30s, 15m, 2h or 7d (got \"30\")");
  CHECK(config_error("checks:\n  - name: a\n    database: jobtrail\n    query: SELECT 1\n"
                     "  - name: a\n    database: jobtrail\n    query: SELECT 2\n") ==
        "/etc/jobtrail/checks.yaml:5: two checks are named \"a\"");
  CHECK(config_error("checks:\n  - name: bad name\n    database: jobtrail\n    query: SELECT 1\n") ==
        "/etc/jobtrail/checks.yaml:2: check name \"bad name\" must be 1 to 100 of A-Z a-z 0-9 _ . - (it becomes a "
        "metric label)");
  CHECK(config_error("builtin:\n  stuck_jobs:\n    deadline: soon\n") ==
        "/etc/jobtrail/checks.yaml:3: \"deadline\" must be a positive duration such as 30s, 15m, 2h or 7d (got \"soon\")");
  // A built-in check is an index lookup that nothing interrupts: a timeout would be ignored.
  CHECK(config_error("builtin:\n  stuck_jobs:\n    deadline: 1h\n    timeout: 5s\n") ==
        "/etc/jobtrail/checks.yaml:4: built-in check \"stuck_jobs\" takes no \"timeout\": it is answered from an "
        "index of the store; \"timeout\" is for SQL checks");
  CHECK(config_error("builtin:\n  dead_jobs: {timeaut: 5s}\n") ==
        "/etc/jobtrail/checks.yaml:2: unknown key \"timeaut\" in built-in check \"dead_jobs\" (known: window, "
        "description, runbook, severity, warn_if, error_if, samples)");
  CHECK(config_error("builtin:\n  stuck:\n") ==
        "/etc/jobtrail/checks.yaml:2: unknown key \"stuck\" in \"builtin\" (known: stuck_jobs, lost_jobs, "
        "duplicate_executions, dead_jobs, missed_cron_runs)");
  CHECK(config_error("checks:\n  - name: stuck_jobs\n    database: jobtrail\n    query: SELECT 1\n") ==
        "/etc/jobtrail/checks.yaml:2: the check \"stuck_jobs\" has the name of a built-in check; rename it");
  // Broken YAML: the parser's line.
  const auto broken = config_error("checks:\n  - name: a\n    query: [unclosed\n");
  CHECK(broken.rfind("/etc/jobtrail/checks.yaml:", 0) == 0);
  CHECK(broken.find("not valid YAML") != std::string::npos);
}

TEST_CASE("PostgreSQL databases are URLs, kept as written", "[checker][config]") {
  auto config = check::parse_config(R"(
store: postgresql://jobtrail@db.internal/shop
databases:
  shop: "postgresql://checker:secret@db.internal:5432/shop?sslmode=verify-full&connect_timeout=5"
  billing: postgres:///billing?host=/run/postgresql
  local: app.db
checks:
  - name: a
    database: shop
    query: SELECT 1
)", "/etc/jobtrail/checks.yaml");
  CHECK(config.store == "postgresql://jobtrail@db.internal/shop");
  CHECK(config.databases.at("shop") == "postgresql://checker:secret@db.internal:5432/shop?sslmode=verify-full&connect_timeout=5");
  CHECK(config.databases.at("billing") == "postgres:///billing?host=/run/postgresql");
  CHECK(config.databases.at("local") == "/etc/jobtrail/app.db");

  // A URL libpq cannot read is found now, with its line, and without its password.
  const auto bad = config_error("databases:\n  shop: \"postgresql://checker:secret@db/shop?sslmod=require\"\n");
  CHECK(bad.rfind("/etc/jobtrail/checks.yaml:2: database shop: not a valid PostgreSQL URL "
                  "(postgresql://checker:***@db/shop?sslmod=require): invalid URI query parameter: \"sslmod\"", 0) == 0);
  CHECK(bad.find("secret") == std::string::npos);
  // The fuzzer's find (regressions/check_config/): a URL of many password= settings, some of
  // them stars, took minutes to hide from its message. Now it is refused at once, and short.
  std::string stars = "databases:\n  shop: \"postgresql://db/shop?";
  for (int i = 0; i < 80; ++i) stars += "password=" + std::string(1 + i % 4, '*') + "&";
  stars += "sslmod=require\"\n";
  const auto starred = config_error(stars);
  CHECK(starred.rfind("/etc/jobtrail/checks.yaml:2: database shop: not a valid PostgreSQL URL (", 0) == 0);
  CHECK(starred.size() < 2 * stars.size());
  CHECK(config_error("databases:\n  shop: postgresql:shop\n") ==
        "/etc/jobtrail/checks.yaml:2: database shop: a PostgreSQL database is a URL such as "
        "postgresql://USER@HOST:5432/DBNAME (got \"postgresql:shop\")");
  CHECK(config_error("databases:\n  shop: host=db dbname=shop\n") ==
        "/etc/jobtrail/checks.yaml:2: database shop: write a PostgreSQL database as a URL, such as "
        "postgresql://USER@HOST:5432/DBNAME, not as key=value settings");
}

TEST_CASE("a missing config file is a clear error", "[checker][config]") {
  TempDir dir;
  try {
    check::load_config(dir.file("nope.yaml"));
    FAIL("loaded");
  } catch (const check::ConfigError& error) {
    CHECK(std::string(error.what()) == dir.file("nope.yaml") + ": cannot read the checks file (No such file or directory)");
  }
}

TEST_CASE("thresholds: any row fails by default, warn and error thresholds apply as dbt's do", "[checker][thresholds]") {
  check::CheckDefinition check;
  CHECK(check.status_for(0) == CheckStatus::pass);
  CHECK(check.status_for(1) == CheckStatus::fail);

  check.severity = "warn";
  CHECK(check.status_for(0) == CheckStatus::pass);
  CHECK(check.status_for(5) == CheckStatus::warn);

  check.severity = "error";
  check.warn_if = check::Threshold::parse("> 0");
  check.error_if = check::Threshold::parse(">10");
  CHECK(check.status_for(0) == CheckStatus::pass);
  CHECK(check.status_for(10) == CheckStatus::warn);
  CHECK(check.status_for(11) == CheckStatus::fail);

  // A check that must return rows ("at least one payment today"): fewer is the failure.
  check::CheckDefinition must_have_rows;
  must_have_rows.warn_if = check::Threshold::parse("< 100");
  must_have_rows.error_if = check::Threshold::parse("= 0");
  CHECK(must_have_rows.status_for(0) == CheckStatus::fail);
  CHECK(must_have_rows.status_for(50) == CheckStatus::warn);
  CHECK(must_have_rows.status_for(100) == CheckStatus::pass);

  CHECK_FALSE(check::Threshold::parse("10"));
  CHECK_FALSE(check::Threshold::parse("> ten"));
  CHECK_FALSE(check::Threshold::parse(">"));
  CHECK(check::Threshold::parse(" != 0 ")->text() == "!= 0");
}

TEST_CASE("durations the grammar cannot represent are config errors, never overflow", "[checker][config]") {
  // Each of these overflowed a signed 64-bit count of microseconds (undefined behaviour).
  CHECK(config_error("builtin:\n  dead_jobs:\n    window: 202261888d\n") ==
        "/etc/jobtrail/checks.yaml:3: \"window\" must be at most 366000d (1000 years) (got \"202261888d\")");
  CHECK(config_error("builtin:\n  dead_jobs:\n    window: 99999999d99999999d\n") ==
        "/etc/jobtrail/checks.yaml:3: \"window\" must be at most 366000d (1000 years) (got \"99999999d99999999d\")");
  CHECK(config_error("builtin:\n  stuck_jobs:\n    deadline: 999999999d\n") ==
        "/etc/jobtrail/checks.yaml:3: \"deadline\" must be at most 366000d (1000 years) (got \"999999999d\")");
  // Up to 18 digits are read as a number, so a long one is called too long, not a non-duration.
  CHECK(config_error("builtin:\n  dead_jobs:\n    window: 9999999999999s\n") ==
        "/etc/jobtrail/checks.yaml:3: \"window\" must be at most 366000d (1000 years) (got \"9999999999999s\")");
  // Past that the text is no number the grammar reads at all.
  CHECK(config_error("builtin:\n  dead_jobs:\n    window: 9999999999999999999s\n") ==
        "/etc/jobtrail/checks.yaml:3: \"window\" must be a positive duration such as 30s, 15m, 2h or 7d "
        "(got \"9999999999999999999s\")");
  // The longest window is accepted, one millisecond more is not.
  CHECK(view::parse_duration("366000d") == view::longest_duration);
  CHECK(view::parse_duration("365999d23h59m59s1000ms") == view::longest_duration);
  bool too_long = false;
  CHECK_FALSE(view::parse_duration("366000d1ms", &too_long));
  CHECK(too_long);
  CHECK_FALSE(view::parse_duration("1x", &too_long));
  CHECK_FALSE(too_long);
  CHECK_NOTHROW(check::parse_config("builtin:\n  dead_jobs:\n    window: 366000d\n", "checks.yaml"));
}

TEST_CASE("a timeout longer than a day is a config error, not an overflowing deadline", "[checker][config]") {
  // 110000d overflowed the steady clock's nanoseconds when the deadline was computed.
  CHECK(config_error("checks:\n  - name: a\n    database: jobtrail\n    query: SELECT 1\n    timeout: 110000d\n") ==
        "/etc/jobtrail/checks.yaml:5: \"timeout\" must be at most 24h (got \"110000d\")");
  CHECK(config_error("checks:\n  - name: a\n    database: jobtrail\n    query: SELECT 1\n    timeout: 24h1s\n") ==
        "/etc/jobtrail/checks.yaml:5: \"timeout\" must be at most 24h (got \"24h1s\")");
  CHECK(config_error("defaults:\n  timeout: 999999999d\n") ==
        "/etc/jobtrail/checks.yaml:2: \"timeout\" must be at most 24h (got \"999999999d\")");
  const auto config =
      check::parse_config("checks:\n  - name: a\n    database: jobtrail\n    query: SELECT 1\n    timeout: 24h\n",
                          "checks.yaml");
  CHECK(config.checks.at(0).timeout == check::longest_timeout);
  // A Config built in code bypasses the loader: the runners clamp instead of overflowing.
  const auto now = std::chrono::steady_clock::now();
  CHECK(check::check_deadline(std::numeric_limits<Micros>::max()) - now <= std::chrono::hours(25));
  CHECK(check::check_deadline(-1) - now < std::chrono::seconds(1));
}

TEST_CASE("a URL libpq cannot parse is reported without the password it quotes", "[checker][config]") {
  // libpq's reason quotes the whole URI, password and all.
  const auto bad = config_error("databases:\n  shop: \"postgresql://checker:s3cret@[db/shop\"\n");
  CHECK(bad == "/etc/jobtrail/checks.yaml:2: database shop: not a valid PostgreSQL URL "
               "(postgresql://checker:***@[db/shop): end of string reached when looking for matching \"]\" in "
               "IPv6 host address in URI: \"postgresql://checker:***@[db/shop\"");
  CHECK(config_error("databases:\n  shop: \"postgresql://checker:s3%zzcret@db/shop\"\n").find("s3") == std::string::npos);
}

TEST_CASE("a quote left open is a mistake at its line, not a check swallowed", "[checker][config]") {
  // The first query's closing quote is missing: YAML reads the next check as part of its text.
  CHECK(config_error(R"(checks:
  - name: first
    database: jobtrail
    query: "SELECT 1 WHERE 0
  - name: second
    database: jobtrail
    query: SELECT 2 WHERE 0"
)") == "/etc/jobtrail/checks.yaml:4: the quoted value opened here runs on to line 5, which is not indented "
       "under its key: is its closing \" missing? (text over several lines reads best as a block: key: |)");
  // A key at the key's own column swallowed: single quotes too.
  CHECK(config_error(R"(checks:
  - name: first
    query: 'SELECT 1
    database: jobtrail'
)").starts_with("/etc/jobtrail/checks.yaml:3: the quoted value opened here runs on to line 4"));
  // A quoted value may span lines when they are indented under its key.
  const auto config = check::parse_config(R"(checks:
  - name: multi
    database: jobtrail
    query: "SELECT 1
      WHERE 0"
    description: 'one
      two'
)", "/etc/jobtrail/checks.yaml");
  REQUIRE_FALSE(config.checks.empty());
  CHECK(config.checks[0].name == "multi");
  CHECK(config.checks[0].query == "SELECT 1 WHERE 0");
}
