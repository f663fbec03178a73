#pragma once
// A thin RAII layer over the SQLite C API for the store and the checker: connections,
// prepared statements, transactions, SQLite's result codes turned into StoreError, and the
// defensive settings every connection gets.

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "jobtrail/store.h"

namespace jobtrail::sqlite {

/// Applies the defensive settings (SQLITE_DBCONFIG_DEFENSIVE on; the FTS3 tokenizer's pointer
/// form, trusted_schema and load_extension off) to `db` and reads each back: "" when all hold,
/// else what failed (a SQLite older than 3.31 knows no TRUSTED_SCHEMA).
std::string make_defensive(sqlite3* db);

/// Owners of raw handles, for code that drives the C API itself (the checker's guarded
/// connections, with their authorizer, progress handler and interrupts).
struct CloseConnection {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct FinalizeStatement {
  void operator()(sqlite3_stmt* statement) const noexcept { sqlite3_finalize(statement); }
};
using ConnectionHandle = std::unique_ptr<sqlite3, CloseConnection>;
using StatementHandle = std::unique_ptr<sqlite3_stmt, FinalizeStatement>;

/// Throws the StoreError that fits `code`, with `what` and SQLite's message.
[[noreturn]] void throw_error(sqlite3* db, int code, std::string_view what);

/// One prepared statement. Not thread-safe. Reset and cleared before each use by `reset()`.
class Statement {
 public:
  Statement() = default;
  Statement(sqlite3* db, std::string_view sql);
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& reset() noexcept;
  /// Binds by 1-based index; empty strings and empty optionals bind NULL.
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, std::string_view text);  // empty → NULL
  Statement& bind(int index, std::optional<std::int64_t> value);
  Statement& bind_null(int index);
  Statement& bind_blob(int index, std::string_view bytes);
  /// Steps once: true if a row is available, false when done. Throws StoreError.
  bool step();
  /// Steps to completion, expecting no rows.
  void run();
  /// Steps once and returns column 0 of the first row, then resets so that no read
  /// snapshot lingers (a lingering one makes the next write transaction fail as busy).
  std::optional<std::int64_t> first_integer();

  bool is_null(int column) const noexcept;
  std::int64_t integer(int column) const noexcept;
  std::optional<std::int64_t> optional_integer(int column) const noexcept;
  std::string text(int column) const;
  /// The column's text without a copy: valid until the next step, reset or read of the column.
  std::string_view text_view(int column) const noexcept;
  bool is_blob(int column) const noexcept;
  std::string_view blob(int column) const noexcept;
  std::string_view sql() const noexcept;

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* statement_ = nullptr;
};

/// One connection. Not thread-safe.
class Connection {
 public:
  /// Opens `path` defensively (SQLITE_DBCONFIG_DEFENSIVE on, the FTS3 tokenizer's pointer form
  /// and trusted_schema off); throws StoreError if the SQLite library cannot do that.
  Connection(const std::string& path, int flags, int busy_timeout_ms);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void execute(std::string_view sql);
  std::int64_t query_integer(std::string_view sql);
  sqlite3* handle() const noexcept { return db_; }
  std::int64_t last_insert_rowid() const noexcept { return sqlite3_last_insert_rowid(db_); }
  std::int64_t changes() const noexcept { return sqlite3_changes64(db_); }

 private:
  sqlite3* db_ = nullptr;
};

/// A write transaction. It begins IMMEDIATE: the write lock is taken up front, so two
/// writers never deadlock upgrading from a read lock, and the busy timeout applies to the
/// wait. Rolls back in the destructor unless committed; never throws from there.
class WriteTransaction {
 public:
  explicit WriteTransaction(Connection& connection);
  ~WriteTransaction();
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;
  void commit();

 private:
  Connection& connection_;
  bool done_ = false;
};

/// A read transaction: one consistent snapshot for a multi-statement query.
class ReadTransaction {
 public:
  explicit ReadTransaction(Connection& connection);
  ~ReadTransaction();
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;

 private:
  Connection& connection_;
};

}  // namespace jobtrail::sqlite
