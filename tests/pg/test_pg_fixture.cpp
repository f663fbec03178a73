// The PostgreSQL test infrastructure itself: the fixture server, a database per test, and
// private clusters that survive a restart.

#include <libpq-fe.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <utility>

#include "pg_test_database.h"

using namespace jobtrail::test;

namespace {

using Connection = std::unique_ptr<PGconn, decltype(&PQfinish)>;

Connection connect(const std::string& url) {
  Connection connection(PQconnectdb(url.c_str()), &PQfinish);
  INFO(url << ": " << PQerrorMessage(connection.get()));
  REQUIRE(PQstatus(connection.get()) == CONNECTION_OK);
  return connection;
}

// The first column of the first row, or "<no rows>"; fails the test on an SQL error.
std::string query(PGconn* connection, const std::string& sql) {
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(connection, sql.c_str()), &PQclear);
  const ExecStatusType status = PQresultStatus(result.get());
  INFO(sql << ": " << PQresultErrorMessage(result.get()));
  REQUIRE((status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK));
  if (status != PGRES_TUPLES_OK || PQntuples(result.get()) == 0) return "<no rows>";
  return PQgetvalue(result.get(), 0, 0);
}

bool database_exists(const std::string& server_url, const std::string& name) {
  auto server = connect(server_url);
  return query(server.get(), "SELECT count(*) FROM pg_database WHERE datname = '" + name + "'") == "1";
}

}  // namespace

TEST_CASE("the tests run against the PostgreSQL store with the fixture's server", "[postgres]") {
  CHECK(postgres_store_selected());
  CHECK(test_pg_url().rfind("postgresql:///postgres?host=/", 0) == 0);
}

TEST_CASE("a test database is a fresh database on the fixture server, dropped after the test", "[postgres]") {
  std::string name;
  // Outlives the database: the drop must not wait for the test to close its connections.
  Connection still_open(nullptr, &PQfinish);
  {
    TempPgDatabase database;
    name = database.name();
    CHECK(database.url() == pg_url_with_database(test_pg_url(), name));
    auto connection = connect(database.url());
    CHECK(query(connection.get(), "SELECT current_database()") == name);
    CHECK(query(connection.get(), "SELECT version()").rfind("PostgreSQL ", 0) == 0);
    query(connection.get(), "CREATE TABLE jobs (id text PRIMARY KEY)");
    query(connection.get(), "INSERT INTO jobs VALUES ('a')");
    CHECK(query(connection.get(), "SELECT id FROM jobs") == "a");
    CHECK(database_exists(test_pg_url(), name));
    TempPgDatabase other;
    CHECK(other.name() != name);
    still_open = std::move(connection);
  }
  CHECK_FALSE(database_exists(test_pg_url(), name));
}

TEST_CASE("the database name in a URL is replaced, the parameters kept", "[postgres]") {
  CHECK(pg_url_with_database("postgresql:///postgres?host=/tmp/x&port=5432&user=jobtrail", "t1") ==
        "postgresql:///t1?host=/tmp/x&port=5432&user=jobtrail");
  CHECK(pg_url_with_database("postgresql://localhost:5433/postgres", "t1") == "postgresql://localhost:5433/t1");
  CHECK(pg_url_with_database("postgresql://localhost?user=u", "t1") == "postgresql://localhost/t1?user=u");
}

TEST_CASE("a private cluster keeps its data across a restart, a crash and a stop", "[postgres]") {
  PgCluster cluster;
  {
    auto connection = connect(cluster.url());
    query(connection.get(), "CREATE TABLE kept (value int)");
    query(connection.get(), "INSERT INTO kept VALUES (42)");
  }
  cluster.restart();
  CHECK(query(connect(cluster.url()).get(), "SELECT value FROM kept") == "42");

  cluster.kill();
  cluster.kill();  // idempotent
  cluster.restart();
  CHECK(query(connect(cluster.url()).get(), "SELECT value FROM kept") == "42");

  cluster.stop();
  cluster.stop();  // idempotent
  Connection refused(PQconnectdb(cluster.url().c_str()), &PQfinish);
  CHECK(PQstatus(refused.get()) == CONNECTION_BAD);
  cluster.restart();
  CHECK(query(connect(cluster.url()).get(), "SELECT value FROM kept") == "42");

  TempPgDatabase database(cluster.url());
  CHECK(database.url() == pg_url_with_database(cluster.url(), database.name()));
  CHECK(query(connect(database.url()).get(), "SELECT current_database()") == database.name());
}
