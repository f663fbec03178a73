#include "sql_check.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <strings.h>
#include <thread>

#include "jobtrail/drivers/sqlite_db.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::check {

namespace {

using Clock = std::chrono::steady_clock;

using sqlite::ConnectionHandle;
using sqlite::StatementHandle;

/// A file: URI for `path`, so ATTACH can ask for mode=ro. Every byte outside the unreserved
/// set is escaped, so a path with '?', '#' or '%' names the same file.
std::string read_only_uri(const std::string& path) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string uri = "file:";
  for (unsigned char c : std::filesystem::absolute(path).string()) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      uri += static_cast<char>(c);
    } else {
      uri += '%';
      uri += hex[c >> 4];
      uri += hex[c & 15];
    }
  }
  return uri + "?mode=ro";
}

/// What the authorizer saw that a check may not do, for a clear message.
struct Guard {
  std::string refused;
  bool refused_function = false;  // `refused` names a function, not a write
  Clock::time_point deadline;
  bool timed_out = false;

  /// Whether the deadline has passed: seen by a handler, or by the watchdog's interrupt.
  bool is_past() const { return timed_out || Clock::now() >= deadline; }
};

/// fts3_tokenizer(name, pointer) registers a tokenizer at any memory address: SQLite's
/// pointer primitive. Debian builds SQLite with it; a check has no use for it.
bool is_refused_function(const char* name) { return name && strcasecmp(name, "fts3_tokenizer") == 0; }

std::string describe_action(int action, const char* a, const char* b) {
  auto name = [](const char* text) { return std::string(text ? text : "?"); };
  switch (action) {
    case SQLITE_FUNCTION: return name(b) + "(), which can register code at any memory address";
    case SQLITE_INSERT: return "insert into " + name(a);
    case SQLITE_UPDATE: return "update " + name(a) + "." + name(b);
    case SQLITE_DELETE: return "delete from " + name(a);
    case SQLITE_ATTACH: return "attach a database";
    case SQLITE_DETACH: return "detach a database";
    case SQLITE_PRAGMA: return "run PRAGMA " + name(a);
    case SQLITE_TRANSACTION: return "begin or end a transaction";
    default: return "change the database or its schema";
  }
}

/// Checks only read: SELECT, reading columns, functions and recursive CTEs. Anything else is
/// refused while the statement is prepared, before it can touch a row (the connection is
/// read-only as well; this turns SQLite's "attempt to write a readonly database" into words).
int authorize(void* user, int action, const char* a, const char* b, const char*, const char*) {
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_RECURSIVE:
      return SQLITE_OK;
    case SQLITE_FUNCTION:
      if (!is_refused_function(b)) return SQLITE_OK;
      break;
    default:
      break;
  }
  auto* guard = static_cast<Guard*>(user);
  if (guard->refused.empty()) {
    guard->refused = describe_action(action, a, b);
    guard->refused_function = action == SQLITE_FUNCTION;
  }
  return SQLITE_DENY;
}

int past_deadline(void* user) {
  auto* guard = static_cast<Guard*>(user);
  if (Clock::now() < guard->deadline) return 0;
  guard->timed_out = true;
  return 1;  // interrupts the statement with SQLITE_INTERRUPT
}

/// Called while another connection holds a lock, when the progress handler does not run:
/// waits in short naps up to the check's deadline, then gives up (the step returns
/// SQLITE_BUSY, reported as the timeout it is). Returns non-zero to try again.
int wait_for_lock(void* user, int) {
  auto* guard = static_cast<Guard*>(user);
  const auto now = Clock::now();
  if (now >= guard->deadline) {
    guard->timed_out = true;
    return 0;
  }
  const auto nap = std::min<Clock::duration>(std::chrono::milliseconds(10), guard->deadline - now);
  std::this_thread::sleep_for(nap);
  return 1;
}

/// Interrupts the connection at the deadline from a thread of its own. The progress handler
/// runs only between virtual-machine instructions (and not at all while a busy handler waits);
/// sqlite3_interrupt is the documented way to stop a connection from outside, honoured
/// wherever SQLite looks for it. Stopped and joined before the connection closes (declare it
/// after the connection). Not thread-safe itself: one owner.
class Watchdog {
 public:
  Watchdog(sqlite3* db, Clock::time_point deadline)
      : thread_([this, db, deadline] {
          std::unique_lock lock(mutex_);
          if (!wake_.wait_until(lock, deadline, [this] { return done_; })) sqlite3_interrupt(db);
        }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;  // last: starts once the members it uses exist
};

void exec(sqlite3* db, const char* sql, const std::string& what) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message ? message : sqlite3_errmsg(db);
    sqlite3_free(message);
    throw CheckFailure(what + ": " + text);
  }
}

}  // namespace

Clock::time_point check_deadline(Micros timeout) {
  return Clock::now() + std::chrono::microseconds(std::clamp<Micros>(timeout, 0, longest_timeout));
}

void make_check_connection_safe(sqlite3* db) {
  // The store's own settings: DEFENSIVE refuses writable_schema and other ways of corrupting
  // a file; TRUSTED_SCHEMA off keeps functions with side effects out of views and triggers
  // the application database defines.
  if (std::string problem = sqlite::make_defensive(db); !problem.empty()) {
    throw CheckFailure("cannot make the SQLite connection of the check safe: " + problem);
  }
  // Limits bound what one value may hold, so one function call cannot build gigabytes:
  // nested replace(hex(zeroblob(5e7))) ran 31 s inside a single step before (measured).
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, longest_check_value);
  sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, longest_check_sql);
  sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, longest_like_pattern);
}

QueryRows run_sql_check(const std::string& database_path, const std::string& store_path, const std::string& query,
                        Micros timeout, std::size_t keep) {
  std::error_code ignored;
  if (!database_path.empty() && !std::filesystem::is_regular_file(database_path, ignored)) {
    throw CheckFailure("cannot open the database " + database_path + ": no such file");
  }
  // The deadline covers everything from here, waiting for a lock on either database included.
  Guard guard;
  guard.deadline = check_deadline(timeout);
  const auto timed_out = [&](const std::string& while_doing) {
    return CheckFailure("timed out after " + view::format_duration(timeout) + " (its timeout) " + while_doing);
  };
  sqlite3* raw = nullptr;
  // URI filenames let ATTACH ask for mode=ro; the main database is read-only by flag.
  const int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX;
  const std::string main_name = database_path.empty() ? ":memory:" : database_path;
  int code = sqlite3_open_v2(main_name.c_str(), &raw, flags, nullptr);
  ConnectionHandle db(raw);
  if (code != SQLITE_OK) {
    throw CheckFailure("cannot open the database " + main_name + ": " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(code)));
  }
  make_check_connection_safe(db.get());
  const Watchdog watchdog(db.get(), guard.deadline);
  sqlite3_busy_handler(db.get(), wait_for_lock, &guard);
  sqlite3_extended_result_codes(db.get(), 1);
  exec(db.get(), "PRAGMA query_only = 1", "cannot make the connection read-only");
  // Memory: SQLite's heap limits are process-wide (they would starve the store's connection
  // and any other SQLite user of the host program), so the bound is per connection: each
  // value by SQLITE_LIMIT_LENGTH, each database's page cache by its cache_size (SQLite's
  // default, 2 MB), and temporary tables and sorts spill to files past it, not to memory.
  exec(db.get(), "PRAGMA temp_store = FILE", "cannot bound the memory of the check");
  // No SQLite store (it lives in PostgreSQL): the application database alone.
  if (!store_path.empty()) {
    sqlite3_stmt* attach_raw = nullptr;
    if (sqlite3_prepare_v2(db.get(), "ATTACH DATABASE ?1 AS jobtrail", -1, &attach_raw, nullptr) != SQLITE_OK) {
      throw CheckFailure(std::string("cannot attach the jobtrail store: ") + sqlite3_errmsg(db.get()));
    }
    StatementHandle attach(attach_raw);
    const auto uri = read_only_uri(store_path);
    sqlite3_bind_text(attach.get(), 1, uri.c_str(), static_cast<int>(uri.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(attach.get()) != SQLITE_DONE) {
      // Attaching reads the main database's schema too: the lock may be on either database.
      if (guard.is_past()) throw timed_out("waiting for a lock while attaching the jobtrail store");
      throw CheckFailure("cannot attach the jobtrail store " + store_path + ": " + sqlite3_errmsg(db.get()));
    }
  }

  sqlite3_set_authorizer(db.get(), authorize, &guard);
  // Checked every 1000 virtual-machine steps: microseconds apart, cheap next to the work.
  sqlite3_progress_handler(db.get(), 1000, past_deadline, &guard);

  sqlite3_stmt* statement_raw = nullptr;
  const char* tail = nullptr;
  code = sqlite3_prepare_v2(db.get(), query.c_str(), static_cast<int>(query.size()), &statement_raw, &tail);
  StatementHandle statement(statement_raw);
  if (code != SQLITE_OK) {
    if (!guard.refused.empty() && guard.refused_function) {
      throw CheckFailure("a check may not call " + guard.refused + " (refused; nothing was run)");
    }
    if (!guard.refused.empty()) {
      throw CheckFailure("a check may only read, but this query would " + guard.refused +
                         " (the databases are opened read-only; nothing was changed)");
    }
    if (guard.is_past()) throw timed_out("while preparing the query (waiting for a lock, or reading the schema)");
    throw CheckFailure(std::string("the query is not valid SQL: ") + sqlite3_errmsg(db.get()));
  }
  if (!statement) throw CheckFailure("the query is empty");
  {
    // One statement per check: a second one would be silently ignored otherwise.
    sqlite3_stmt* next_raw = nullptr;
    const int next_code = sqlite3_prepare_v2(db.get(), tail, -1, &next_raw, nullptr);
    StatementHandle next(next_raw);
    // A refused second statement (DELETE ...) fails to prepare; comments alone prepare to nothing.
    if (next_code != SQLITE_OK || next) throw CheckFailure("a check is one SELECT statement; this query holds more than one");
  }
  if (!sqlite3_stmt_readonly(statement.get())) {
    throw CheckFailure("a check may only read, but this statement writes (nothing was changed)");
  }

  QueryRows result;
  const int columns = sqlite3_column_count(statement.get());
  if (columns == 0) throw CheckFailure("the query returns no columns; a check returns the rows that must not exist");
  for (int c = 0; c < columns; ++c) result.columns.emplace_back(sqlite3_column_name(statement.get(), c));
  const auto rows_timed_out = [&] {
    return CheckFailure("timed out after " + view::format_duration(timeout) + " (its timeout); " +
                        std::to_string(result.count) + " rows read by then");
  };
  for (;;) {
    code = sqlite3_step(statement.get());
    // One step may outlast the deadline inside a single SQL function, where neither the
    // progress handler nor the interrupt reaches: such a check ends as an error, never a pass.
    if (Clock::now() >= guard.deadline) throw rows_timed_out();
    if (code == SQLITE_DONE) break;
    if (code != SQLITE_ROW) {
      // A busy handler that gave up at the deadline leaves SQLITE_BUSY: a timeout as well.
      if (guard.timed_out || (code & 0xff) == SQLITE_INTERRUPT) throw rows_timed_out();
      if ((code & 0xff) == SQLITE_TOOBIG) {
        throw CheckFailure("the query reads or builds a value longer than a check may (" +
                           std::to_string(longest_check_value / 1024) + " KiB, SQLITE_LIMIT_LENGTH): " +
                           sqlite3_errmsg(db.get()));
      }
      if ((code & 0xff) == SQLITE_NOMEM) throw CheckFailure("the query ran out of memory");
      if ((code & 0xff) == SQLITE_READONLY) {
        throw CheckFailure(std::string("a check may only read: ") + sqlite3_errmsg(db.get()) + " (nothing was changed)");
      }
      throw CheckFailure(std::string("the query failed: ") + sqlite3_errmsg(db.get()));
    }
    result.count += 1;
    if (result.rows.size() < keep) {
      std::vector<std::optional<std::string>> row;
      row.reserve(static_cast<std::size_t>(columns));
      for (int c = 0; c < columns; ++c) {
        if (sqlite3_column_type(statement.get(), c) == SQLITE_NULL) {
          row.emplace_back(std::nullopt);
        } else {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement.get(), c));
          row.emplace_back(std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(statement.get(), c))));
        }
      }
      result.rows.push_back(std::move(row));
    }
  }
  return result;
}

}  // namespace jobtrail::check
