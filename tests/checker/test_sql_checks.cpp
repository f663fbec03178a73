#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "checker_fixture.h"
#include "sql_check.h"

using namespace jobtrail;
using namespace jobtrail::testing;

namespace {

/// The seed story: user 42 signed up, its welcome email was enqueued and never ran; user 43's
/// email failed once and then succeeded; user 44 is validated.
void signup_story(CheckerFixture& f) {
  exec_sql(f.app_path, R"SQL(
    CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, validated INTEGER NOT NULL);
    INSERT INTO users VALUES (42, 'ann@example.com', 0), (43, 'bob@example.com', 0), (44, 'cy@example.com', 1);
  )SQL");
  auto enqueue42 = event("welcome-email-42", State::enqueued, test_now - 3 * hour);
  enqueue42.entities = {"user:42"};
  auto enqueue43 = event("welcome-email-43", State::enqueued, test_now - 2 * hour);
  enqueue43.entities = {"user:43"};
  auto failed43 = event("welcome-email-43", State::failed, test_now - 2 * hour + 5 * second);
  failed43.error = {"Net::ReadTimeout", "SMTP timed out", ""};
  f.store->append({enqueue42, enqueue43, event("welcome-email-43", State::started, test_now - 2 * hour + second), failed43,
                   event("welcome-email-43", State::started, test_now - 2 * hour + 10 * second, "WelcomeEmailJob", 2),
                   event("welcome-email-43", State::succeeded, test_now - 2 * hour + 11 * second, "WelcomeEmailJob", 2)});
}

const std::string unvalidated_check = app_only + R"(
checks:
  - name: unvalidated_users_without_welcome_email
    description: Signed up, never validated, and no welcome email went out
    database: app
    entity: user
    query: |
      SELECT u.id, u.email FROM users u
      WHERE u.validated = 0
        AND NOT EXISTS (SELECT 1 FROM jobtrail.job_entities e JOIN jobtrail.jobs j ON j.job_id = e.job_id
                        WHERE e.entity = 'user:' || u.id AND j.job = 'WelcomeEmailJob' AND j.state = 'succeeded')
      ORDER BY u.id
)";

}  // namespace

// The application database attaches a SQLite store as `jobtrail`; on PostgreSQL the store's
// schema joins an application database on the same server (test_pg_checks.cpp).
TEST_CASE("an SQL check joins application rows with the job history and links each row to its jobs",
          "[checker][sql][sqlite]") {
  CheckerFixture f;
  signup_story(f);
  auto report = f.run(f.config(unvalidated_check));
  const auto& result = CheckerFixture::result(report, "unvalidated_users_without_welcome_email");
  INFO(result.error);
  CHECK(result.status == CheckStatus::fail);
  CHECK(result.violations == 1);
  REQUIRE(result.samples.size() == 1);
  const auto& sample = result.samples[0];
  CHECK(sample.columns[0] == std::pair<std::string, std::optional<std::string>>{"id", "42"});
  CHECK(sample.entity == "user:42");
  REQUIRE(sample.jobs.size() == 1);
  CHECK(sample.jobs[0].job_id == "welcome-email-42");
  CHECK(sample.jobs[0].state == State::enqueued);
  CHECK(report.exit_code() == 2);
  // The row's entity is kept in the history, so the console can link the row to these jobs.
  const auto stored = f.store->last_check_result("unvalidated_users_without_welcome_email");
  REQUIRE(stored);
  REQUIRE(stored->failing.size() == 1);
  CHECK(stored->failing[0].entity == "user:42");
}

TEST_CASE("samples keep the first rows, every row is counted", "[checker][sql]") {
  CheckerFixture f;
  exec_sql(f.app_path, "CREATE TABLE t (id INTEGER); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                       "WHERE i < 25) INSERT INTO t SELECT i FROM n;");
  auto report = f.run(f.config(app_only + R"(
checks:
  - name: many
    database: app
    query: SELECT id FROM t ORDER BY id
    samples: 3
    severity: warn
)"));
  const auto& result = CheckerFixture::result(report, "many");
  CHECK(result.status == CheckStatus::warn);
  CHECK(result.violations == 25);
  REQUIRE(result.samples.size() == 3);
  CHECK(*result.samples[2].columns[0].second == "3");
  CHECK(report.exit_code() == 1);
}

TEST_CASE("a check that tries to write fails cleanly and changes nothing", "[checker][sql][read-only][sqlite]") {
  CheckerFixture f;
  signup_story(f);
  const auto jobs_before = query_integer(f.sqlite_store_path(), "SELECT count(*) FROM job");
  auto report = f.run(f.config(app_only + R"(
checks:
  - name: sneaky_update
    database: app
    query: UPDATE users SET validated = 1 RETURNING id
  - name: sneaky_delete_in_store
    database: jobtrail
    query: DELETE FROM job RETURNING id
  - name: sneaky_pragma
    database: app
    query: PRAGMA query_only = 0
  - name: sneaky_attach
    database: app
    query: ATTACH 'other.db' AS other
  - name: two_statements
    database: app
    query: SELECT 1 WHERE 0; DELETE FROM users
  - name: still_runs
    database: app
    query: SELECT id FROM users WHERE validated = 1
    severity: warn
)"));
  const auto& update = CheckerFixture::result(report, "sneaky_update");
  CHECK(update.status == CheckStatus::error);
  CHECK(update.error ==
        "a check may only read, but this query would update users.validated (the databases are opened read-only; "
        "nothing was changed)");
  CHECK(CheckerFixture::result(report, "sneaky_delete_in_store").status == CheckStatus::error);
  CHECK(CheckerFixture::result(report, "sneaky_pragma").status == CheckStatus::error);
  CHECK(CheckerFixture::result(report, "sneaky_attach").status == CheckStatus::error);
  CHECK(CheckerFixture::result(report, "two_statements").error ==
        "a check is one SELECT statement; this query holds more than one");
  // The others still ran.
  CHECK(CheckerFixture::result(report, "still_runs").status == CheckStatus::warn);
  CHECK(report.exit_code() == 3);
  // Nothing changed, and no file appeared.
  CHECK(query_integer(f.app_path, "SELECT count(*) FROM users WHERE validated = 1") == 1);
  CHECK(query_integer(f.sqlite_store_path(), "SELECT count(*) FROM job") == jobs_before);
  CHECK_FALSE(std::filesystem::exists(f.dir.file("other.db")));
}

TEST_CASE("a check past its timeout is an error and the next check still runs", "[checker][sql][timeout]") {
  CheckerFixture f;
  exec_sql(f.app_path, "CREATE TABLE t (id INTEGER)");
  const auto started = std::chrono::steady_clock::now();
  auto report = f.run(f.config(app_only + R"(
checks:
  - name: endless
    database: app
    timeout: 200ms
    query: WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n WHERE i < 0
  - name: broken_sql
    database: app
    query: SELECT nope FROM nowhere
  - name: fine
    database: app
    query: SELECT id FROM t
)"));
  const auto elapsed = std::chrono::steady_clock::now() - started;
  CHECK(elapsed < std::chrono::seconds(5));
  const auto& endless = CheckerFixture::result(report, "endless");
  CHECK(endless.status == CheckStatus::error);
  CHECK(endless.error.rfind("timed out after 200ms (its timeout)", 0) == 0);
  CHECK(CheckerFixture::result(report, "broken_sql").error == "the query is not valid SQL: no such table: nowhere");
  CHECK(CheckerFixture::result(report, "fine").status == CheckStatus::pass);
  CHECK(report.exit_code() == 3);
}

TEST_CASE("a missing application database is an error of its checks only", "[checker][sql]") {
  CheckerFixture f;
  auto report = f.run(f.config(app_only + "checks:\n  - name: a\n    database: app\n    query: SELECT 1 WHERE 0\n"
                                          "  - name: b\n    database: jobtrail\n    query: SELECT job_id FROM jobs\n"));
  CHECK(CheckerFixture::result(report, "a").error == "cannot open the database " + f.app_path + ": no such file");
  CHECK(CheckerFixture::result(report, "b").status == CheckStatus::pass);
  CHECK_FALSE(std::filesystem::exists(f.app_path));  // opening read-only never creates it
}

TEST_CASE("fingerprints tell new rows from persisting and resolved ones across runs",
          "[checker][history][store]") {
  CheckerFixture f;
  exec_sql(f.app_path, "CREATE TABLE users (id INTEGER PRIMARY KEY, validated INTEGER, seen_at TEXT);"
                       "INSERT INTO users VALUES (1, 0, 'a'), (2, 0, 'a');");
  auto config = f.config(app_only + R"(
checks:
  - name: unvalidated
    database: app
    query: SELECT id, seen_at FROM users WHERE validated = 0 ORDER BY id
    key: id
)");
  auto first = f.run(config, test_now);
  const auto& one = CheckerFixture::result(first, "unvalidated");
  CHECK(one.violations == 2);
  CHECK(one.new_violations == 2);
  CHECK_FALSE(one.compared);
  CHECK(first.run_id > 0);

  // User 1 is fixed; user 2 still fails (its non-key column changed); user 3 is new.
  exec_sql(f.app_path, "UPDATE users SET validated = 1 WHERE id = 1; UPDATE users SET seen_at = 'b' WHERE id = 2;"
                       "INSERT INTO users VALUES (3, 0, 'b');");
  auto second_run = f.run(config, test_now + hour);
  const auto& two = CheckerFixture::result(second_run, "unvalidated");
  CHECK(two.compared);
  CHECK(two.violations == 2);
  CHECK(two.new_violations == 1);
  CHECK(two.persisting == 1);
  CHECK(two.resolved == 1);
  REQUIRE(two.samples.size() == 2);
  CHECK_FALSE(two.samples[0].is_new);
  CHECK(two.samples[0].failing_since == test_now);  // user 2, failing since the first run
  CHECK(two.samples[1].is_new);
  CHECK(two.samples[1].failing_since == test_now + hour);
  REQUIRE(two.resolved_samples.size() == 1);
  CHECK(two.resolved_samples[0] == R"({"id":"1","seen_at":"a"})");

  // A run in error carries the failing rows over: the streak of user 2 survives it.
  exec_sql(f.app_path, "ALTER TABLE users RENAME TO people");
  auto third = f.run(config, test_now + 2 * hour);
  CHECK(CheckerFixture::result(third, "unvalidated").status == CheckStatus::error);
  exec_sql(f.app_path, "ALTER TABLE people RENAME TO users");
  auto fourth = f.run(config, test_now + 3 * hour);
  const auto& four = CheckerFixture::result(fourth, "unvalidated");
  CHECK(four.new_violations == 0);
  CHECK(four.persisting == 2);
  CHECK(four.samples[0].failing_since == test_now);

  // The history, newest first.
  auto history = f.store->check_history("unvalidated", 10);
  REQUIRE(history.size() == 4);
  CHECK(history[0].status == CheckStatus::fail);
  CHECK(history[1].status == CheckStatus::error);
  CHECK(history[1].error == "the query is not valid SQL: no such table: users");
  CHECK(history[2].new_violations == 1);
  CHECK(history[2].resolved == 1);
  CHECK(history[3].started_at == test_now);
  CHECK_FALSE(f.store->last_check_success("unvalidated"));

  exec_sql(f.app_path, "UPDATE users SET validated = 1");
  auto fifth = f.run(config, test_now + 4 * hour);
  const auto& five = CheckerFixture::result(fifth, "unvalidated");
  CHECK(five.status == CheckStatus::pass);
  CHECK(five.resolved == 2);
  CHECK(f.store->last_check_success("unvalidated") == test_now + 4 * hour);
  CHECK(five.last_success == test_now + 4 * hour);
}

TEST_CASE("the history keeps every run's summary but the failing rows of the newest 30 runs only",
          "[checker][history][store]") {
  CheckerFixture f;
  exec_sql(f.app_path, "CREATE TABLE t (id INTEGER); INSERT INTO t VALUES (1), (2);");
  auto config = f.config(app_only + "checks:\n  - name: rows\n    database: app\n    query: SELECT id FROM t\n");
  for (int run = 0; run < 33; ++run) f.run(config, test_now + run * hour);
  CHECK(f.store->check_history("rows", 100).size() == 33);
  CHECK(f.store_integer("SELECT count(DISTINCT run) FROM check_violation WHERE check_name = 'rows'") == 30);
  // The streak still starts at the first run: it is carried from run to run.
  auto last = f.store->last_check_result("rows");
  REQUIRE(last);
  REQUIRE(last->failing.size() == 2);
  CHECK(last->failing[0].first_seen_at == test_now);
}

TEST_CASE("without recording, a run compares with the history and stores nothing",
          "[checker][history][store]") {
  CheckerFixture f;
  exec_sql(f.app_path, "CREATE TABLE t (id INTEGER); INSERT INTO t VALUES (1);");
  auto config = f.config(app_only + "checks:\n  - name: rows\n    database: app\n    query: SELECT id FROM t\n");
  f.run(config, test_now);
  OpenOptions read_only;
  read_only.read_only = true;
  auto reader = f.backend.open(read_only);
  check::RunOptions options;
  options.now = test_now + hour;
  options.record_history = false;
  auto report = check::run_checks(config, *reader, options);
  CHECK(report.run_id == 0);
  CHECK(report.history_error.empty());
  CHECK(CheckerFixture::result(report, "rows").persisting == 1);
  CHECK(f.store->check_history("rows", 10).size() == 1);
}

TEST_CASE("without a key, a row keeps its fingerprint when the query's columns are reordered",
          "[checker][history][store]") {
  CheckerFixture f;
  exec_sql(f.app_path, "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, validated INTEGER);"
                       "INSERT INTO users VALUES (1, 'a@example.com', 0), (2, NULL, 0);");
  const auto check_with = [](const std::string& columns) {
    return app_only + "checks:\n  - name: unvalidated\n    database: app\n    query: SELECT " + columns +
           " FROM users WHERE validated = 0 ORDER BY id\n";
  };
  auto first = f.run(f.config(check_with("id, email")), test_now);
  auto second_run = f.run(f.config(check_with("email, id")), test_now + hour);
  const auto& before = CheckerFixture::result(first, "unvalidated");
  const auto& after = CheckerFixture::result(second_run, "unvalidated");
  REQUIRE(before.samples.size() == 2);
  REQUIRE(after.samples.size() == 2);
  CHECK(after.samples[0].fingerprint == before.samples[0].fingerprint);
  CHECK(after.samples[1].fingerprint == before.samples[1].fingerprint);
  // Still failing since the first run: neither new nor resolved.
  CHECK(after.new_violations == 0);
  CHECK(after.persisting == 2);
  CHECK(after.resolved == 0);
  CHECK(after.samples[0].failing_since == test_now);

  // The same values under other names are another row.
  auto renamed = f.run(f.config(check_with("id AS user_id, email")), test_now + 2 * hour);
  CHECK(CheckerFixture::result(renamed, "unvalidated").new_violations == 2);
}

TEST_CASE("a pass that is not stored does not move the last success",
          "[checker][history][store]") {
  CheckerFixture f;
  exec_sql(f.app_path, "CREATE TABLE t (id INTEGER);");
  auto config = f.config(app_only + "checks:\n  - name: rows\n    database: app\n    query: SELECT id FROM t\n");
  OpenOptions read_only;
  read_only.read_only = true;
  auto reader = f.backend.open(read_only);
  check::RunOptions unrecorded;
  unrecorded.record_history = false;

  // Never stored a pass: none to show, although this run passed.
  unrecorded.now = test_now - hour;
  auto never = check::run_checks(config, *reader, unrecorded);
  CHECK(CheckerFixture::result(never, "rows").status == CheckStatus::pass);
  CHECK_FALSE(CheckerFixture::result(never, "rows").last_success);

  CHECK(CheckerFixture::result(f.run(config, test_now), "rows").last_success == test_now);
  // Passing again unrecorded: the stored success stands, so the next recorded run cannot
  // report an older time than this one did.
  unrecorded.now = test_now + hour;
  auto later = check::run_checks(config, *reader, unrecorded);
  CHECK(later.run_id == 0);
  CHECK(CheckerFixture::result(later, "rows").last_success == test_now);
}

namespace {
/// Holds an exclusive lock on a SQLite file (rollback journal: readers are locked out too)
/// until released or destroyed.
class ExclusiveLock {
 public:
  explicit ExclusiveLock(const std::string& path) {
    REQUIRE(sqlite3_open(path.c_str(), &db_) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db_, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
  }
  ~ExclusiveLock() { release(); }
  ExclusiveLock(const ExclusiveLock&) = delete;
  ExclusiveLock& operator=(const ExclusiveLock&) = delete;
  void release() {
    if (!db_) return;
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
    db_ = nullptr;
  }

 private:
  sqlite3* db_ = nullptr;
};
}  // namespace

TEST_CASE("a check waiting for a lock gives up at its own timeout", "[checker][sql][timeout]") {
  CheckerFixture f;
  exec_sql(f.app_path, "CREATE TABLE t (id INTEGER); INSERT INTO t VALUES (1);");
  const auto config = [&](const std::string& timeout) {
    return f.config(app_only + "checks:\n  - name: locked\n    database: app\n    timeout: " + timeout +
                    "\n    query: SELECT id FROM t\n");
  };

  SECTION("a lock held past the timeout: a timeout error, in about the timeout") {
    ExclusiveLock lock(f.app_path);
    const auto started = std::chrono::steady_clock::now();
    auto report = f.run(config("300ms"));
    const auto elapsed = std::chrono::steady_clock::now() - started;
    const auto& locked = CheckerFixture::result(report, "locked");
    INFO(locked.error);
    CHECK(locked.status == CheckStatus::error);
    CHECK(locked.error.rfind("timed out after 300ms (its timeout)", 0) == 0);
    CHECK(elapsed >= std::chrono::milliseconds(300));
    CHECK(elapsed < std::chrono::seconds(3));
  }
  SECTION("a lock released before the timeout: the check waits and runs") {
    ExclusiveLock lock(f.app_path);
    std::thread releaser([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      lock.release();
    });
    auto report = f.run(config("10s"));
    releaser.join();
    const auto& locked = CheckerFixture::result(report, "locked");
    INFO(locked.error);
    CHECK(locked.status == CheckStatus::fail);
    CHECK(locked.violations == 1);
  }
}

TEST_CASE("work inside one SQL function cannot outlast the timeout as a pass", "[checker][sql][timeout][limits]") {
  CheckerFixture f;
  exec_sql(f.app_path, "CREATE TABLE t (id INTEGER)");
  const auto run_one = [&](const std::string& timeout, const std::string& query) {
    const auto started = std::chrono::steady_clock::now();
    auto report =
        f.run(f.config(app_only + "checks:\n  - name: costly\n    database: app\n    timeout: " + timeout +
                       "\n    query: " + query + "\n"));
    const auto elapsed = std::chrono::steady_clock::now() - started;
    return std::make_pair(CheckerFixture::result(report, "costly"), elapsed);
  };

  SECTION("a value past the length limit is refused at once (it ran 31 s and passed before)") {
    const auto [costly, elapsed] =
        run_one("1s", "SELECT 1 WHERE length(replace(replace(hex(zeroblob(5e7)), '0', '00'), '0', '00')) < 0");
    INFO(costly.error);
    CHECK(costly.status == CheckStatus::error);
    CHECK(costly.error.rfind("the query reads or builds a value longer than a check may (1024 KiB, SQLITE_LIMIT_LENGTH)", 0) == 0);
    CHECK(elapsed < std::chrono::seconds(3));
  }
  SECTION("a stored value past the limit is a clear error; its length is still readable") {
    exec_sql(f.app_path, "CREATE TABLE docs (id INTEGER, body BLOB); INSERT INTO docs VALUES (1, zeroblob(2000000))");
    const auto [whole, whole_elapsed] = run_one("5s", "SELECT id, body FROM docs");
    CHECK(whole.status == CheckStatus::error);
    CHECK(whole.error.rfind("the query reads or builds a value longer than a check may", 0) == 0);
    const auto [length, length_elapsed] = run_one("5s", "SELECT id FROM docs WHERE length(body) > 1000000");
    INFO(length.error);
    CHECK(length.status == CheckStatus::fail);
    CHECK(length.violations == 1);
  }
  SECTION("one step that outlives the timeout within the limits ends as an error, not a pass") {
    // instr() of a 64 KB needle that fails at its last byte, at every offset of a 256 KB
    // haystack: about 1 s in a single virtual-machine step, where no handler runs.
    const auto [costly, elapsed] = run_one(
        "200ms", "SELECT 1 WHERE instr(hex(zeroblob(131062)), substr(hex(zeroblob(32768)), 1, 65536) || '1') > 0");
    INFO(costly.error);
    CHECK(costly.status == CheckStatus::error);
    CHECK(costly.error.rfind("timed out after 200ms (its timeout)", 0) == 0);
    CHECK(elapsed < std::chrono::seconds(10));
  }
}

TEST_CASE("a check may not call fts3_tokenizer, SQLite's pointer primitive", "[checker][sql][read-only][sqlite]") {
  CheckerFixture f;
  exec_sql(f.app_path, "CREATE TABLE t (id INTEGER)");
  for (const std::string query : {"SELECT fts3_tokenizer('simple', x'4141414141414141')",
                                  "SELECT FTS3_Tokenizer('simple')", "SELECT id FROM t WHERE fts3_tokenizer('x') IS NULL"}) {
    INFO(query);
    auto report = f.run(f.config(app_only + "checks:\n  - name: pointer\n    database: app\n    query: \"" + query + "\"\n"));
    const auto& pointer = CheckerFixture::result(report, "pointer");
    CHECK(pointer.status == CheckStatus::error);
    CHECK(pointer.error ==
          "a check may not call fts3_tokenizer(), which can register code at any memory address (refused; nothing "
          "was run)");
  }
}

TEST_CASE("the checks' SQLite connections are defensive and bounded", "[checker][sql][sqlite][limits]") {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(":memory:", &db) == SQLITE_OK);
  check::make_check_connection_safe(db);
  const auto setting = [&](int option) {
    int value = -1;
    REQUIRE(sqlite3_db_config(db, option, -1, &value) == SQLITE_OK);
    return value;
  };
  CHECK(setting(SQLITE_DBCONFIG_DEFENSIVE) == 1);
  CHECK(setting(SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER) == 0);
  CHECK(setting(SQLITE_DBCONFIG_TRUSTED_SCHEMA) == 0);
  CHECK(setting(SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION) == 0);
  CHECK(sqlite3_limit(db, SQLITE_LIMIT_LENGTH, -1) == check::longest_check_value);
  CHECK(sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, -1) == check::longest_check_sql);
  CHECK(sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, -1) == check::longest_like_pattern);

  const auto fails = [&](const char* sql) {
    const bool failed = sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK;
    INFO(sql << ": " << sqlite3_errmsg(db));
    return failed;
  };
  // What the settings do, without the checks' authorizer in the way: the two-argument
  // tokenizer call is refused by SQLite itself, and so is editing the schema by hand.
  CHECK(fails("SELECT fts3_tokenizer('simple', x'4141414141414141')"));
  CHECK(fails("CREATE TABLE t (id); PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = 'x'"));
  CHECK(fails("SELECT length(hex(zeroblob(1048576)))"));
  CHECK_FALSE(fails("SELECT length(hex(zeroblob(1000)))"));
  sqlite3_close(db);
}
