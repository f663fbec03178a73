#pragma once
// Shared setup for the checker tests: a store of the backend under test (test_store.h: SQLite,
// or PostgreSQL in a jobtrail_postgres_tests() registration) with jobs at fixed times, and a
// SQLite application database and a config file in a fresh temporary directory.

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "jobtrail/checker.h"
#include "jobtrail/store.h"
#include "temp_dir.h"
#include "test_store.h"

namespace jobtrail::testing {

constexpr Micros second = 1'000'000;
constexpr Micros minute = 60 * second;
constexpr Micros hour = 60 * minute;
/// "Now" of every test: 2026-11-22T12:00:00Z.
constexpr Micros test_now = 1'795'348'800LL * second;

/// Runs SQL on a SQLite file (created if missing) outside jobtrail, as an application would.
inline void exec_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* error = nullptr;
  const int code = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  INFO((error ? error : ""));
  sqlite3_free(error);
  sqlite3_close(db);
  REQUIRE(code == SQLITE_OK);
}

/// One integer from a query on a SQLite file.
inline std::int64_t query_integer(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(statement) == SQLITE_ROW);
  const auto value = sqlite3_column_int64(statement, 0);
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return value;
}

inline Event event(const std::string& job_id, State state, Micros at, const std::string& job = "WelcomeEmailJob",
                   std::int32_t attempt = 1) {
  Event e;
  e.job_id = job_id;
  e.state = state;
  e.at = at;
  e.job = job;
  e.queue = "default";
  e.attempt = attempt;
  return e;
}

/// A store of the backend under test, and an application database in a temporary directory.
/// Not thread-safe; one per test.
class CheckerFixture {
 public:
  CheckerFixture() : app_path(dir.file("app.db")), store(backend.open()) {}

  /// Writes `yaml` to checks.yaml (databases: app -> app.db) and loads it.
  check::Config config(const std::string& yaml) {
    const auto path = dir.file("checks.yaml");
    std::ofstream(path) << yaml;
    return check::load_config(path);
  }

  /// Runs `config` as `jobtrail check --db <store_url()>` does.
  check::RunReport run(const check::Config& config, Micros now = test_now) {
    check::RunOptions options;
    options.now = now;
    options.store_url = store_url();
    return check::run_checks(config, *store, options);
  }

  static const check::CheckResult& result(const check::RunReport& report, const std::string& name) {
    for (const auto& result : report.results) {
      if (result.check.name == name) return result;
    }
    FAIL("no result for check " << name);
    throw std::logic_error("unreachable");
  }

  /// What `--db` and open_store() take: a file path on SQLite, postgresql://... otherwise.
  const std::string& store_url() const { return backend.url(); }

  /// The store's SQLite file, for the tests that are about a SQLite store by nature (tagged
  /// [sqlite], never registered for PostgreSQL).
  const std::string& sqlite_store_path() const {
    REQUIRE_FALSE(backend.postgres());
    return backend.url();
  }

  /// One integer from a query on the store's own tables, beneath its interface; the table
  /// names are the same on both backends (PostgreSQL keeps them in the schema jobtrail).
  std::int64_t store_integer(const std::string& sql) const {
    if (!backend.postgres()) return query_integer(backend.url(), sql);
    const auto rows = pg_rows(backend.url(), "SET search_path = jobtrail; " + sql);
    REQUIRE(rows.size() == 1);
    return std::stoll(rows[0].at(0));
  }

  TempDir dir;
  TestStore backend;
  std::string app_path;
  std::unique_ptr<Store> store;
};

/// The databases section every SQL test config starts with; built-in checks off unless a
/// test is about them.
inline const std::string app_only = "databases:\n  app: app.db\nbuiltin: false\n";

}  // namespace jobtrail::testing
