#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <thread>

#include "jobtrail/store.h"
#include "temp_dir.h"

using namespace jobtrail;

namespace {
void exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* error = nullptr;
  int code = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  INFO((error ? error : ""));
  sqlite3_free(error);
  sqlite3_close(db);
  REQUIRE(code == SQLITE_OK);
}

StoreError::Kind open_error(const std::string& path, OpenOptions options = {}) {
  try {
    open_store(path, options);
  } catch (const StoreError& error) {
    return error.kind();
  }
  FAIL("the store opened");
  return StoreError::Kind::other;
}
}  // namespace

TEST_CASE("a new store is at the latest schema version", "[tracker][migrations]") {
  testing::TempDir dir;
  auto store = open_store(dir.file("jobs.db"));
  CHECK(store->schema_version() == latest_schema_version());
  // Reopening does not migrate again.
  CHECK(open_store(dir.file("jobs.db"))->schema_version() == latest_schema_version());
}

TEST_CASE("a store from a newer jobtrail is a clear error", "[tracker][migrations]") {
  testing::TempDir dir;
  auto path = dir.file("jobs.db");
  open_store(path);
  exec(path, "PRAGMA user_version = 99");
  CHECK(open_error(path) == StoreError::Kind::schema_too_new);
  OpenOptions read_only;
  read_only.read_only = true;
  CHECK(open_error(path, read_only) == StoreError::Kind::schema_too_new);
  try {
    open_store(path);
  } catch (const StoreError& error) {
    CHECK(std::string(error.what()) ==
          path + " has schema version 99, newer than this jobtrail understands (3); upgrade jobtrail to read it");
  }
}

TEST_CASE("another application's database is refused, not migrated", "[tracker][migrations]") {
  testing::TempDir dir;
  auto path = dir.file("app.db");
  exec(path, "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)");
  CHECK(open_error(path) == StoreError::Kind::not_a_store);
  // Untouched: still readable and still in its own journal mode, not switched to WAL.
  exec(path, "SELECT count(*) FROM users");
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* mode = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &mode, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(mode) == SQLITE_ROW);
  CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(mode, 0))) == "delete");
  sqlite3_finalize(mode);
  sqlite3_close(db);
  auto garbage = dir.file("garbage.db");
  {
    std::FILE* file = std::fopen(garbage.c_str(), "w");
    std::fputs("this is not a database at all, just some text long enough to be read", file);
    std::fclose(file);
  }
  CHECK(open_error(garbage) == StoreError::Kind::not_a_store);
}

TEST_CASE("processes opening a new store at once migrate it once", "[tracker][migrations]") {
  testing::TempDir dir;
  auto path = dir.file("jobs.db");
  std::vector<std::thread> openers;
  std::atomic<int> failures{0};
  for (int i = 0; i < 8; ++i) {
    openers.emplace_back([&, i] {
      try {
        Event event;
        event.job_id = "job-" + std::to_string(i);
        event.state = State::started;
        open_store(path)->append({event});
      } catch (const std::exception&) {
        failures += 1;
      }
    });
  }
  for (auto& opener : openers) opener.join();
  CHECK(failures == 0);
  auto store = open_store(path);
  for (int i = 0; i < 8; ++i) CHECK(store->find_job("job-" + std::to_string(i)));
}

TEST_CASE("the jobs view shows names and absolute times for SQL checks", "[tracker][migrations]") {
  testing::TempDir dir;
  auto path = dir.file("jobs.db");
  Event event;
  event.job_id = "email-1";
  event.job = "WelcomeEmailJob";
  event.state = State::failed;
  event.at = 1'790'000'000'123'456;
  event.error = {"Net::ReadTimeout", "timed out", ""};
  event.entities = {"user:42"};
  open_store(path)->append({event});

  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  REQUIRE(sqlite3_prepare_v2(db,
                             "SELECT j.job, j.state, j.finished_at, j.error_class, e.entity_type, e.entity_id "
                             "FROM jobs j JOIN job_entities e USING (job_id)",
                             -1, &statement, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(statement) == SQLITE_ROW);
  auto text = [&](int column) { return std::string(reinterpret_cast<const char*>(sqlite3_column_text(statement, column))); };
  CHECK(text(0) == "WelcomeEmailJob");
  CHECK(text(1) == "failed");
  CHECK(sqlite3_column_int64(statement, 2) == 1'790'000'000'123'456);
  CHECK(text(3) == "Net::ReadTimeout");
  CHECK(text(4) == "user");
  CHECK(text(5) == "42");
  sqlite3_finalize(statement);
  sqlite3_close(db);
}

TEST_CASE("a store of an older schema can be read without migrating it", "[tracker][migrations]") {
  testing::TempDir dir;
  auto path = dir.file("jobs.db");
  Event event;
  event.job_id = "job-1";
  event.state = State::started;
  open_store(path)->append({event});
  exec(path, "PRAGMA user_version = 1");
  OpenOptions read_only;
  read_only.read_only = true;
  auto reader = open_store(path, read_only);
  CHECK(reader->find_job("job-1"));
  CHECK(reader->schema_version() == 1);  // read as it is, not migrated
}
