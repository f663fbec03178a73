// Schema versions and migrations, on SQLite and (jobtrail_postgres_tests) on PostgreSQL.
// Tags as in test_store.cpp: [store] both backends, [sqlite] SQLite only, [.postgres] PostgreSQL only.

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "jobtrail/store.h"
#include "pg_test_database.h"
#include "temp_dir.h"
#include "test_store.h"

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

// Makes the store at `store` claim schema version `version`, the way that backend records it.
void set_schema_version(const testing::TestStore& store, int version) {
  if (store.postgres()) {
    testing::pg_rows(store.url(), "UPDATE jobtrail.meta SET value = '" + std::to_string(version) +
                                      "' WHERE key = 'schema_version'");
  } else {
    exec(store.url(), "PRAGMA user_version = " + std::to_string(version));
  }
}

OpenOptions read_only() {
  OpenOptions options;
  options.read_only = true;
  return options;
}
}  // namespace

TEST_CASE("a new store is at the latest schema version", "[tracker][migrations][store]") {
  testing::TestStore test_store;
  auto store = test_store.open();
  CHECK(store->schema_version() == latest_schema_version());
  // Reopening does not migrate again.
  CHECK(test_store.open()->schema_version() == latest_schema_version());
  CHECK(test_store.open(read_only())->schema_version() == latest_schema_version());
}

TEST_CASE("a store from a newer jobtrail is a clear error", "[tracker][migrations][store]") {
  testing::TestStore test_store;
  test_store.open();
  set_schema_version(test_store, 99);
  CHECK(open_error(test_store.url()) == StoreError::Kind::schema_too_new);
  CHECK(open_error(test_store.url(), read_only()) == StoreError::Kind::schema_too_new);
  try {
    open_store(test_store.url());
    FAIL("opened a store of a newer schema");
  } catch (const StoreError& error) {
    // Where: the path of a SQLite file, the URL (password hidden) of a PostgreSQL database.
    CHECK(std::string(error.what()) == test_store.url() +
                                           " has schema version 99, newer than this jobtrail understands (" +
                                           std::to_string(latest_schema_version()) + "); upgrade jobtrail to read it");
  }
}

TEST_CASE("another application's database is refused, not migrated", "[tracker][migrations][sqlite]") {
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

TEST_CASE("processes opening a new store at once migrate it once", "[tracker][migrations][store]") {
  testing::TestStore test_store;
  const auto& path = test_store.url();
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

TEST_CASE("the jobs view shows names and absolute times for SQL checks", "[tracker][migrations][store]") {
  testing::TestStore test_store;
  const auto& path = test_store.url();
  Event event;
  event.job_id = "email-1";
  event.job = "WelcomeEmailJob";
  event.state = State::failed;
  event.at = 1'790'000'000'123'456;
  event.error = {"Net::ReadTimeout", "timed out", ""};
  event.entities = {"user:42"};
  open_store(path)->append({event});

  const std::string query =
      "SELECT j.job, j.state, j.finished_at, j.error_class, e.entity_type, e.entity_id "
      "FROM jobs j JOIN job_entities e USING (job_id)";
  if (test_store.postgres()) {
    // SQL checks on PostgreSQL find the views through search_path.
    const auto rows = testing::pg_rows(path, "SET search_path = jobtrail; " + query);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0] == std::vector<std::string>{"WelcomeEmailJob", "failed", "1790000000123456", "Net::ReadTimeout",
                                              "user", "42"});
    return;
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, query.c_str(), -1, &statement, nullptr) == SQLITE_OK);
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

TEST_CASE("a store of an older schema can be read without migrating it", "[tracker][migrations][store]") {
  testing::TestStore test_store;
  Event event;
  event.job_id = "job-1";
  event.state = State::started;
  test_store.open()->append({event});
  set_schema_version(test_store, 1);
  auto reader = test_store.open(read_only());
  CHECK(reader->find_job("job-1"));
  CHECK(reader->schema_version() == 1);  // read as it is, not migrated
}

TEST_CASE("version 4 adds the order of writes and a follower of an older store is told to upgrade it",
          "[tracker][migrations][store]") {
  testing::TestStore test_store;
  Event event;
  event.job_id = "job-1";
  event.state = State::started;
  test_store.open()->append({event});
  // Back to version 3: the job table without its order of writes.
  if (test_store.postgres()) {
    testing::pg_rows(test_store.url(), "ALTER TABLE jobtrail.job DROP COLUMN changed; "
                                       "ALTER TABLE jobtrail.check_violation DROP COLUMN entity");
  } else {
    exec(test_store.url(), "DROP INDEX job_by_change; ALTER TABLE job DROP COLUMN changed; "
                           "DELETE FROM meta WHERE key = 'change_seq'; DROP TABLE job_tally; "
                           "ALTER TABLE check_violation DROP COLUMN entity");
  }
  set_schema_version(test_store, 3);
  auto reader = test_store.open(read_only());
  CHECK(reader->find_job("job-1"));
  try {
    reader->last_change();
    FAIL("followed a store without the order of writes");
  } catch (const StoreError& error) {
    CHECK(std::string(error.what()).find("has schema version 3, which does not keep the order of writes that "
                                         "--follow reads (version 4); any command that records") != std::string::npos);
  }
  // A writer migrates it; the job written before keeps its place before any follower's.
  auto writer = test_store.open();
  CHECK(writer->schema_version() == latest_schema_version());
  const ChangePosition start = writer->last_change();
  CHECK(writer->changed_jobs(JobFilter{}, start).jobs.empty());
  event.state = State::failed;
  writer->append({event});
  std::vector<JobRecord> changed;
  for (int i = 0; i < 500 && changed.empty(); ++i) {  // PostgreSQL: until older transactions end
    changed = writer->changed_jobs(JobFilter{}, start).jobs;
    if (changed.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(changed.size() == 1);
  CHECK(changed.front().state == State::failed);
}

TEST_CASE("version 5 counts the jobs already stored, and a chart of an older store is told to upgrade it",
          "[tracker][migrations][store]") {
  testing::TestStore test_store;
  const Micros hour = 3600LL * 1000000;
  const Micros t0 = tally_bucket_start(1'790'000'000'000'000);
  std::vector<Event> events;
  auto add = [&](const std::string& id, const std::string& job, State state, Micros at) {
    Event event;
    event.job_id = id;
    event.job = job;
    event.state = state;
    event.at = at;
    events.push_back(event);
  };
  add("a", "Mail", State::succeeded, t0 + 1);
  add("b", "Mail", State::failed, t0 + 2);
  add("c", "Mail", State::succeeded, t0 + hour);
  add("d", "", State::dead, t0 + hour + 5);
  add("e", "Bill", State::started, t0 - hour);  // before the chart: not counted in it
  test_store.open()->append(events);
  CheckRunRecord run{t0, t0 + 1, "checks.yaml", {}};
  CheckResultRecord failing;
  failing.check = "users";
  failing.status = CheckStatus::fail;
  failing.started_at = t0;
  failing.failing.push_back({"fp-42", t0, R"({"id":"42"})", "user:42"});
  run.results.push_back(failing);
  test_store.open()->record_check_run(run);
  const std::vector<Micros> bounds{t0, t0 + hour, t0 + 2 * hour};
  const std::vector<JobTally> expected{
      {"", 1, State::dead, 1}, {"Mail", 0, State::succeeded, 1}, {"Mail", 0, State::failed, 1},
      {"Mail", 1, State::succeeded, 1}};
  auto same = [](const std::vector<JobTally>& got, const std::vector<JobTally>& want) {
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      CHECK(got[i].job == want[i].job);
      CHECK(got[i].slice == want[i].slice);
      CHECK(got[i].state == want[i].state);
      CHECK(got[i].jobs == want[i].jobs);
    }
  };
  same(test_store.open()->tally(bounds), expected);
  if (test_store.postgres()) return;  // it counts when asked: version 5 adds nothing there
  // Back to version 4: no kept counts, no entities of failing check rows.
  exec(test_store.url(), "DROP TABLE job_tally; ALTER TABLE check_violation DROP COLUMN entity");
  set_schema_version(test_store, 4);
  try {
    test_store.open(read_only())->tally(bounds);
    FAIL("charted a store without its job counts");
  } catch (const StoreError& error) {
    CHECK(std::string(error.what()).find("has schema version 4, which does not keep the job counts per class and "
                                         "time (job_tally) (version 5); any command that records") != std::string::npos);
  }
  // Its failing rows read back without the entity column they lack.
  const auto stored = test_store.open(read_only())->last_check_result("users");
  REQUIRE(stored);
  REQUIRE(stored->failing.size() == 1);
  CHECK(stored->failing.front().fingerprint == "fp-42");
  CHECK(stored->failing.front().sample == R"({"id":"42"})");
  CHECK(stored->failing.front().entity.empty());
  // A writer migrates it and counts every stored job, the one before the chart too.
  auto writer = test_store.open();
  CHECK(writer->schema_version() == latest_schema_version());
  same(writer->tally(bounds), expected);
  same(writer->tally({t0 - hour, t0}), {{"Bill", 0, State::started, 1}});
}

TEST_CASE("threads opening a new PostgreSQL store at once create one set of tables",
          "[tracker][migrations][.postgres]") {
  test::TempPgDatabase database;
  constexpr int openers = 8;
  // All threads connect first and then migrate together, so the migrations really overlap.
  std::mutex mutex;
  std::condition_variable all_ready;
  int ready = 0;
  std::atomic<int> failures{0};
  std::vector<int> versions(openers, 0);
  std::vector<std::string> errors(openers);
  std::vector<std::thread> threads;
  for (int i = 0; i < openers; ++i) {
    threads.emplace_back([&, i] {
      {
        std::unique_lock lock(mutex);
        if (++ready == openers) all_ready.notify_all();
        all_ready.wait(lock, [&] { return ready == openers; });
      }
      try {
        auto store = open_store(database.url());
        versions[static_cast<std::size_t>(i)] = store->schema_version();
        Event event;
        event.job_id = "job-" + std::to_string(i);
        event.state = State::started;
        store->append({event});
      } catch (const std::exception& error) {
        errors[static_cast<std::size_t>(i)] = error.what();
        failures += 1;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int i = 0; i < openers; ++i) {
    INFO("thread " << i << ": " << errors[static_cast<std::size_t>(i)]);
    CHECK(versions[static_cast<std::size_t>(i)] == latest_schema_version());
  }
  CHECK(failures == 0);
  // One schema, one of each table, one version row.
  CHECK(testing::pg_rows(database.url(), "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'jobtrail%'") ==
        std::vector<std::vector<std::string>>{{"1"}});
  CHECK(testing::pg_rows(database.url(),
                         "SELECT count(*), count(DISTINCT c.relname) FROM pg_class c "
                         "JOIN pg_namespace n ON n.oid = c.relnamespace "
                         "WHERE n.nspname = 'jobtrail' AND c.relkind = 'r'") ==
        std::vector<std::vector<std::string>>{{"10", "10"}});
  CHECK(testing::pg_rows(database.url(), "SELECT value FROM jobtrail.meta WHERE key = 'schema_version'") ==
        std::vector<std::vector<std::string>>{{std::to_string(latest_schema_version())}});
  auto store = open_store(database.url());
  for (int i = 0; i < openers; ++i) CHECK(store->find_job("job-" + std::to_string(i)));
}
