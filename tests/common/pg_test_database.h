#pragma once
// PostgreSQL for the tests: a database of its own per test on the server the `postgres` ctest
// fixture starts (tests/pg), and private clusters for tests that stop and restart the server.
// Tests registered with jobtrail_postgres_tests() (tests/pg/CMakeLists.txt) get the environment
// these read.

#include <libpq-fe.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>

#include "temp_dir.h"

#ifndef JOBTRAIL_PG_CLUSTER_SCRIPT
#error "JOBTRAIL_PG_CLUSTER_SCRIPT is not defined: link the test to test_main (tests/pg sets it)"
#endif

namespace jobtrail::test {

/// True when the store tests should run against PostgreSQL (JOBTRAIL_TEST_STORE=postgresql),
/// as jobtrail_postgres_tests() registers them; false for the plain (SQLite) registration.
inline bool postgres_store_selected() {
  const char* store = std::getenv("JOBTRAIL_TEST_STORE");
  return store != nullptr && std::string(store) == "postgresql";
}

/// tests/pg/pg_cluster.sh: `start|restart|stop|kill|url DIR`.
inline std::string pg_cluster_script() { return JOBTRAIL_PG_CLUSTER_SCRIPT; }

/// The fixture server's maintenance-database URL (JOBTRAIL_TEST_PG); throws when unset.
inline std::string test_pg_url() {
  const char* url = std::getenv("JOBTRAIL_TEST_PG");
  if (url == nullptr || *url == '\0') {
    throw std::runtime_error("JOBTRAIL_TEST_PG is not set: run the PostgreSQL tests through ctest");
  }
  return url;
}

/// `url` with its database replaced by `database`: postgresql:///DB?host=...&port=...&user=...
inline std::string pg_url_with_database(const std::string& url, const std::string& database) {
  const std::string scheme_end = "://";
  const auto authority = url.find(scheme_end);
  if (authority == std::string::npos) throw std::invalid_argument("not a postgresql:// URL: " + url);
  const auto query = url.find('?', authority);
  const auto path = url.find('/', authority + scheme_end.size());
  const auto host_end = path != std::string::npos && (query == std::string::npos || path < query) ? path : query;
  const std::string rest = query == std::string::npos ? "" : url.substr(query);
  return url.substr(0, host_end == std::string::npos ? url.size() : host_end) + "/" + database + rest;
}

namespace detail {

// A libpq connection closed on scope exit. Not thread-safe.
class PgConnection {
 public:
  explicit PgConnection(const std::string& url) : connection_(PQconnectdb(url.c_str())) {}
  ~PgConnection() { PQfinish(connection_); }
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  bool ok() const { return connection_ != nullptr && PQstatus(connection_) == CONNECTION_OK; }
  std::string error() const { return connection_ == nullptr ? "out of memory" : PQerrorMessage(connection_); }

  // Empty on success, else the server's message.
  std::string try_execute(const std::string& sql) {
    PGresult* result = PQexec(connection_, sql.c_str());
    const ExecStatusType status = PQresultStatus(result);
    std::string message;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      message = result != nullptr ? PQresultErrorMessage(result) : error();
      if (message.empty()) message = "failed";
    }
    PQclear(result);
    return message;
  }

 private:
  PGconn* connection_;
};

inline std::string shell_quote(const std::string& word) {
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// Runs pg_cluster.sh; returns its stdout's last line (the URL, for start and restart) or
// throws with everything it printed.
inline std::string run_pg_cluster(const std::string& command, const std::string& dir) {
  const std::string line = "JOBTRAIL_PG_BINDIR=" + shell_quote(JOBTRAIL_PG_BINDIR) + " bash " +
                           shell_quote(pg_cluster_script()) + " " + command + " " + shell_quote(dir) + " 2>&1";
  FILE* pipe = popen(line.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run " + pg_cluster_script());
  std::string output;
  char buffer[4096];
  size_t count = 0;
  while ((count = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, count);
  const int status = pclose(pipe);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("pg_cluster.sh " + command + " " + dir + " failed:\n" + output);
  }
  while (!output.empty() && output.back() == '\n') output.pop_back();
  const auto last_line = output.rfind('\n');
  return last_line == std::string::npos ? output : output.substr(last_line + 1);
}

}  // namespace detail

/// A fresh, empty database on the fixture server (JOBTRAIL_TEST_PG), dropped at scope exit even
/// if connections to it remain. Throws at construction when the server is unreachable.
/// Not thread-safe; one per test.
class TempPgDatabase {
 public:
  TempPgDatabase() : TempPgDatabase(test_pg_url()) {}

  /// On the server of `server_url` (any database there; e.g. a PgCluster's url()).
  explicit TempPgDatabase(std::string server_url) : server_url_(std::move(server_url)) {
    // Unique across parallel test processes (pid), tests in one process (counter), and pid
    // reuse after a crashed run left its database behind (random).
    static std::atomic<unsigned> counter{0};
    std::random_device random;
    name_ = "jobtrail_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" +
            std::to_string(random() % 1000000);
    detail::PgConnection server(server_url_);
    if (!server.ok()) {
      throw std::runtime_error("cannot connect to the test PostgreSQL server " + server_url_ + ": " + server.error());
    }
    const std::string failure = server.try_execute("CREATE DATABASE " + name_);
    if (!failure.empty()) throw std::runtime_error("CREATE DATABASE " + name_ + ": " + failure);
    url_ = pg_url_with_database(server_url_, name_);
  }

  ~TempPgDatabase() {
    // Never throws: a server that is gone takes its databases with it.
    try {
      detail::PgConnection server(server_url_);
      if (server.ok()) server.try_execute("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (...) {
    }
  }
  TempPgDatabase(const TempPgDatabase&) = delete;
  TempPgDatabase& operator=(const TempPgDatabase&) = delete;

  /// postgresql:///<name>?host=...&port=...&user=jobtrail
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }

 private:
  std::string server_url_;
  std::string name_;
  std::string url_;
};

/// A PostgreSQL server of the test's own, in a temporary directory, for tests that stop, kill
/// or restart the server (the fixture server is shared by every test). Started at construction
/// (about a second), killed and removed at scope exit. Not thread-safe.
class PgCluster {
 public:
  PgCluster() : url_(detail::run_pg_cluster("start", dir_.path().string())) {}
  ~PgCluster() {
    try {
      detail::run_pg_cluster("kill", dir_.path().string());
    } catch (...) {
    }
  }
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  /// The maintenance database: postgresql:///postgres?host=<dir>&port=5432&user=jobtrail
  const std::string& url() const { return url_; }
  /// Fast shutdown: clients are disconnected, data stays.
  void stop() { detail::run_pg_cluster("stop", dir_.path().string()); }
  /// Immediate shutdown, as if the server crashed; data stays.
  void kill() { detail::run_pg_cluster("kill", dir_.path().string()); }
  /// Stops the server if it runs and starts it again on the same data; returns when it
  /// accepts connections.
  void restart() { detail::run_pg_cluster("restart", dir_.path().string()); }

 private:
  jobtrail::testing::TempDir dir_;
  std::string url_;
};

}  // namespace jobtrail::test
