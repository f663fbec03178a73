#pragma once
// The store under test: the same test runs against SQLite (a plain registration) and against a
// real PostgreSQL server (a jobtrail_postgres_tests() registration, tests/pg). Include this in
// any test folder whose target links the tracker and test_main.

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "jobtrail/store.h"
#include "pg_test_database.h"
#include "temp_dir.h"

namespace jobtrail::testing {

/// A fresh, empty store of the backend under test, removed at scope exit: a file in a
/// temporary directory on SQLite, a database of its own on the fixture server when
/// JOBTRAIL_TEST_STORE=postgresql. Nothing is created until the first open(). Not thread-safe;
/// one per test (the stores it opens may each go to a thread of their own).
class TestStore {
 public:
  TestStore() {
    if (test::postgres_store_selected()) {
      database_.emplace();
      url_ = database_->url();
    } else {
      url_ = dir_.file("jobs.db");
    }
  }
  TestStore(const TestStore&) = delete;
  TestStore& operator=(const TestStore&) = delete;

  /// What open_store() and Tracker take: a file path on SQLite, postgresql://... otherwise.
  const std::string& url() const { return url_; }
  /// True when this is a PostgreSQL database.
  bool postgres() const { return database_.has_value(); }
  /// A new connection to the store; the first creates and migrates it (unless read-only).
  std::unique_ptr<Store> open(const OpenOptions& options = {}) const { return open_store(url_, options); }
  /// A scratch directory that lives as long as the store, whatever the backend.
  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_;
  std::optional<test::TempPgDatabase> database_;
  std::string url_;
};

/// The rows `sql` returns on the PostgreSQL database at `url`, NULL as ""; throws with the
/// server's message on an error. For tests that look beneath the store's interface.
inline std::vector<std::vector<std::string>> pg_rows(const std::string& url, const std::string& sql) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> connection(PQconnectdb(url.c_str()), &PQfinish);
  if (PQstatus(connection.get()) != CONNECTION_OK) {
    throw std::runtime_error("cannot connect to " + url + ": " + PQerrorMessage(connection.get()));
  }
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(connection.get(), sql.c_str()), &PQclear);
  const ExecStatusType status = PQresultStatus(result.get());
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    throw std::runtime_error(sql + ": " + PQresultErrorMessage(result.get()));
  }
  std::vector<std::vector<std::string>> rows;
  for (int row = 0; row < PQntuples(result.get()); ++row) {
    auto& values = rows.emplace_back();
    for (int column = 0; column < PQnfields(result.get()); ++column) {
      values.emplace_back(PQgetvalue(result.get(), row, column));
    }
  }
  return rows;
}

}  // namespace jobtrail::testing
