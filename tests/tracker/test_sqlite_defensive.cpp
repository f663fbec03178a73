// Every connection the SQLite store opens is defensive (sqlite_db.cpp): a store file or SQL
// that reaches the connection may be hostile, and Debian's SQLite leaves the dangerous parts on.
// Each test has a control on a plain connection, so it fails if the setting stops mattering.

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <string>

#include "jobtrail/event.h"
#include "jobtrail/store.h"
#include "jobtrail/drivers/sqlite_db.h"
#include "temp_dir.h"

using namespace jobtrail;

namespace {

/// A plain connection with SQLite's defaults, as any other program would open the file.
class PlainConnection {
 public:
  explicit PlainConnection(const std::string& path) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) == SQLITE_OK);
  }
  ~PlainConnection() { sqlite3_close_v2(db_); }
  PlainConnection(const PlainConnection&) = delete;
  PlainConnection& operator=(const PlainConnection&) = delete;

  /// SQLite's error message, or "" when `sql` ran.
  std::string run(const std::string& sql) {
    char* error = nullptr;
    const int code = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    std::string message = code == SQLITE_OK ? "" : (error ? error : sqlite3_errstr(code));
    sqlite3_free(error);
    return message;
  }
  sqlite3* handle() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

/// What the statement failed with, or "" if it ran (through the store's own Connection).
std::string error_of(sqlite::Connection& connection, const std::string& sql) {
  try {
    connection.execute(sql);
  } catch (const StoreError& error) {
    return error.what();
  }
  return "";
}

std::string text_of(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* statement = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK);
  std::string text;
  if (sqlite3_step(statement) == SQLITE_ROW && sqlite3_column_text(statement, 0)) {
    text = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
  }
  sqlite3_finalize(statement);
  return text;
}

int setting_of(sqlite3* db, int option) {
  int value = -1;
  REQUIRE(sqlite3_db_config(db, option, -1, &value) == SQLITE_OK);
  return value;
}

/// A new store at `path`, made through the store's own code.
void create_store(const std::string& path) { open_store("sqlite:" + path); }

Event started_event(const std::string& job_id) {
  Event event;
  event.job_id = job_id;
  event.state = State::started;
  event.job = "DefensiveJob";
  event.queue = "default";
  event.worker = "test";
  event.at = now_micros();
  return event;
}

}  // namespace

TEST_CASE("the store's SQLite connections are defensive, read-write and read-only",
          "[tracker][sqlite][defensive]") {
  testing::TempDir dir;
  const std::string path = dir.file("store.db");
  create_store(path);
  for (int flags : {SQLITE_OPEN_READWRITE, SQLITE_OPEN_READONLY}) {
    INFO("flags " << flags);
    sqlite::Connection connection(path, flags, 1000);
    CHECK(setting_of(connection.handle(), SQLITE_DBCONFIG_DEFENSIVE) == 1);
    CHECK(setting_of(connection.handle(), SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER) == 0);
    CHECK(setting_of(connection.handle(), SQLITE_DBCONFIG_TRUSTED_SCHEMA) == 0);
  }
}

TEST_CASE("a connection the store opens refuses the pointer form of fts3_tokenizer",
          "[tracker][sqlite][defensive]") {
  testing::TempDir dir;
  const std::string path = dir.file("store.db");
  create_store(path);
  // Registering a tokenizer at 0x4141414141414141: the next FTS3 table using it would jump there.
  const std::string register_pointer = "SELECT fts3_tokenizer('simple', x'4141414141414141')";

  sqlite::Connection connection(path, SQLITE_OPEN_READWRITE, 1000);
  CHECK_THAT(error_of(connection, register_pointer), Catch::Contains("fts3tokenize disabled"));

  // Control: with SQLite's defaults (Debian's build) the same call is accepted; asking only
  // for the registered pointer is harmless. If SQLite ever refuses it by default, this test
  // says so rather than passing for the wrong reason.
  PlainConnection plain(path);
  const bool enabled_by_default = setting_of(plain.handle(), SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER) == 1;
  INFO("this SQLite enables the FTS3 tokenizer by default: " << enabled_by_default);
  if (enabled_by_default) CHECK(plain.run("SELECT fts3_tokenizer('simple')").empty());
}

TEST_CASE("writable_schema and other deliberate corruption are refused by the store's connections",
          "[tracker][sqlite][defensive]") {
  testing::TempDir dir;
  const std::string path = dir.file("store.db");
  create_store(path);
  const std::string rewrite_schema = "UPDATE sqlite_schema SET sql = 'CREATE TABLE job (x)' WHERE name = 'job'";
  std::string schema_before;
  {
    PlainConnection plain(path);
    schema_before = text_of(plain.handle(), "SELECT sql FROM sqlite_schema WHERE name = 'job'");
  }
  REQUIRE_FALSE(schema_before.empty());
  {
    sqlite::Connection connection(path, SQLITE_OPEN_READWRITE, 1000);
    connection.execute("PRAGMA writable_schema = ON");
    CHECK_THAT(error_of(connection, rewrite_schema), Catch::Contains("may not be modified"));
    // Turning the journal off would let a crash corrupt the file; DEFENSIVE keeps it (WAL).
    CHECK(text_of(connection.handle(), "PRAGMA journal_mode = OFF") == "wal");
    const std::string version = text_of(connection.handle(), "PRAGMA schema_version");
    connection.execute("PRAGMA schema_version = 12345");
    CHECK(text_of(connection.handle(), "PRAGMA schema_version") == version);
  }
  {
    PlainConnection plain(path);
    CHECK(text_of(plain.handle(), "SELECT sql FROM sqlite_schema WHERE name = 'job'") == schema_before);
  }
  // The store still opens and takes events.
  auto store = open_store("sqlite:" + path);
  CHECK(store->append({started_event("after-the-attempt")}).stored == 1);

  // Control: a plain connection may rewrite the schema (on a copy of nothing we keep).
  const std::string scratch = dir.file("scratch.db");
  create_store(scratch);
  PlainConnection plain(scratch);
  REQUIRE(plain.run("PRAGMA writable_schema = ON").empty());
  CHECK(plain.run(rewrite_schema).empty());
}

TEST_CASE("views and triggers planted in a store file cannot use unsafe functions through the store",
          "[tracker][sqlite][defensive]") {
  testing::TempDir dir;
  const std::string path = dir.file("store.db");
  create_store(path);
  {
    // What a hostile file could carry: a view and a trigger that read the connection's state
    // (pragma_database_list shows the paths of every attached file).
    PlainConnection plain(path);
    REQUIRE(plain.run("CREATE TABLE planted_leak (file TEXT)").empty());
    REQUIRE(plain.run("CREATE VIEW planted_view AS SELECT file FROM pragma_database_list").empty());
    REQUIRE(plain.run("CREATE TRIGGER planted_trigger AFTER INSERT ON job BEGIN "
                      "INSERT INTO planted_leak SELECT file FROM pragma_database_list; END")
                .empty());
    // Control: SQLite's default trusts the schema, and the view runs.
    CHECK(plain.run("SELECT * FROM planted_view").empty());
  }
  sqlite::Connection connection(path, SQLITE_OPEN_READWRITE, 1000);
  CHECK_THAT(error_of(connection, "SELECT * FROM planted_view"), Catch::Contains("unsafe use"));

  // Through the store's API: the trigger never runs; the store refuses to open the file (it
  // prepares its INSERT INTO job, trigger included, when it opens).
  CHECK_THROWS_WITH(open_store("sqlite:" + path)->append({started_event("planted")}), Catch::Contains("unsafe use"));
  PlainConnection plain(path);
  CHECK(text_of(plain.handle(), "SELECT count(*) FROM planted_leak") == "0");
}
