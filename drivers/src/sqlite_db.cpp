#include "jobtrail/drivers/sqlite_db.h"

#include <string>
#include <utility>

namespace jobtrail::sqlite {

void throw_error(sqlite3* db, int code, std::string_view what) {
  using Kind = StoreError::Kind;
  std::string message(what);
  message += ": ";
  message += db ? sqlite3_errmsg(db) : sqlite3_errstr(code);
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: throw StoreError(Kind::busy, message);
    case SQLITE_IOERR:
    case SQLITE_FULL: throw StoreError(Kind::io, message);
    case SQLITE_CANTOPEN: throw StoreError(Kind::cannot_open, message);
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT: throw StoreError(Kind::not_a_store, message);
    case SQLITE_READONLY: throw StoreError(Kind::read_only, message);
    default: throw StoreError(Kind::other, message);
  }
}

Statement::Statement(sqlite3* db, std::string_view sql) : db_(db) {
  int code = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                &statement_, nullptr);
  if (code != SQLITE_OK) throw_error(db, code, "preparing a statement");
}

Statement::~Statement() { sqlite3_finalize(statement_); }

Statement::Statement(Statement&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), statement_(std::exchange(other.statement_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(statement_);
    db_ = std::exchange(other.db_, nullptr);
    statement_ = std::exchange(other.statement_, nullptr);
  }
  return *this;
}

Statement& Statement::reset() noexcept {
  sqlite3_reset(statement_);
  sqlite3_clear_bindings(statement_);
  return *this;
}

Statement& Statement::bind(int index, std::int64_t value) {
  sqlite3_bind_int64(statement_, index, value);
  return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
  if (text.empty()) return bind_null(index);
  sqlite3_bind_text(statement_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::bind(int index, std::optional<std::int64_t> value) {
  return value ? bind(index, *value) : bind_null(index);
}

Statement& Statement::bind_blob(int index, std::string_view bytes) {
  sqlite3_bind_blob(statement_, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::bind_null(int index) {
  sqlite3_bind_null(statement_, index);
  return *this;
}

bool Statement::step() {
  int code = sqlite3_step(statement_);
  if (code == SQLITE_ROW) return true;
  if (code == SQLITE_DONE) return false;
  // sqlite3_reset returns the same error; reset so the statement can be reused.
  sqlite3_reset(statement_);
  throw_error(db_, code, "running \"" + std::string(sql().substr(0, 80)) + "\"");
}

void Statement::run() {
  while (step()) {
  }
}

std::optional<std::int64_t> Statement::first_integer() {
  std::optional<std::int64_t> value;
  if (step()) value = integer(0);
  sqlite3_reset(statement_);
  return value;
}

bool Statement::is_null(int column) const noexcept {
  return sqlite3_column_type(statement_, column) == SQLITE_NULL;
}

std::int64_t Statement::integer(int column) const noexcept { return sqlite3_column_int64(statement_, column); }

std::optional<std::int64_t> Statement::optional_integer(int column) const noexcept {
  if (is_null(column)) return std::nullopt;
  return integer(column);
}

std::string Statement::text(int column) const { return std::string(text_view(column)); }

std::string_view Statement::text_view(int column) const noexcept {
  auto* data = reinterpret_cast<const char*>(sqlite3_column_text(statement_, column));
  if (!data) return {};
  return std::string_view(data, static_cast<std::size_t>(sqlite3_column_bytes(statement_, column)));
}

bool Statement::is_blob(int column) const noexcept {
  return sqlite3_column_type(statement_, column) == SQLITE_BLOB;
}

std::string_view Statement::blob(int column) const noexcept {
  auto* data = static_cast<const char*>(sqlite3_column_blob(statement_, column));
  if (!data) return {};
  return std::string_view(data, static_cast<std::size_t>(sqlite3_column_bytes(statement_, column)));
}

std::string_view Statement::sql() const noexcept {
  const char* text = statement_ ? sqlite3_sql(statement_) : nullptr;
  return text ? std::string_view(text) : std::string_view();
}

namespace {

// What every connection, the store's and each check's, turns on or off before its first
// statement, whatever the SQLite build's defaults; a database file or SQL that reaches the
// connection may be hostile.
struct DefensiveSetting {
  int option;
  int value;
  const char* name;
};
constexpr DefensiveSetting defensive_settings[] = {
    // No deliberate corruption: writable_schema, journal_mode=OFF, schema_version writes and
    // writes to the shadow tables of virtual tables are refused.
    {SQLITE_DBCONFIG_DEFENSIVE, 1, "DEFENSIVE"},
    // The two-argument fts3_tokenizer('name', pointer) registers a tokenizer at any address in
    // the process. Debian builds SQLite with SQLITE_ENABLE_FTS3_TOKENIZER, which turns it on.
    {SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, 0, "ENABLE_FTS3_TOKENIZER"},
    // Views, triggers, defaults and indexes stored in the file may use only innocuous
    // functions and virtual tables (no load_extension(), no pragma_database_list, ...).
    {SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, "TRUSTED_SCHEMA"},
    // load_extension() would run any shared library's code; off by default, kept off here
    // whatever a future build or another user of the process turns on.
    {SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, "ENABLE_LOAD_EXTENSION"},
};

}  // namespace

std::string make_defensive(sqlite3* db) {
  for (const DefensiveSetting& setting : defensive_settings) {
    int now = -1;
    const int code = sqlite3_db_config(db, setting.option, setting.value, &now);
    if (code != SQLITE_OK || now != setting.value) {
      return std::string("cannot set SQLITE_DBCONFIG_") + setting.name + " to " + std::to_string(setting.value) +
             " (SQLite " + sqlite3_libversion() + "; 3.31 or newer is needed)";
    }
  }
  return {};
}

Connection::Connection(const std::string& path, int flags, int busy_timeout_ms) {
  int code = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (code != SQLITE_OK) {
    std::string message = "cannot open SQLite store " + path;
    // Keep the handle's message before closing it.
    StoreError::Kind kind = (code & 0xff) == SQLITE_CANTOPEN ? StoreError::Kind::cannot_open
                                                             : StoreError::Kind::other;
    message += ": ";
    message += db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(code);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw StoreError(kind, message);
  }
  if (std::string problem = make_defensive(db_); !problem.empty()) {
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw StoreError(StoreError::Kind::other, "cannot open SQLite store " + path + ": " + problem);
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, busy_timeout_ms);
}

Connection::~Connection() { sqlite3_close_v2(db_); }

void Connection::execute(std::string_view sql) {
  std::string statement(sql);
  char* error = nullptr;
  int code = sqlite3_exec(db_, statement.c_str(), nullptr, nullptr, &error);
  if (code != SQLITE_OK) {
    std::string message = error ? error : sqlite3_errstr(code);
    sqlite3_free(error);
    throw_error(nullptr, code, message);
  }
}

std::int64_t Connection::query_integer(std::string_view sql) {
  Statement statement(db_, sql);
  return statement.first_integer().value_or(0);
}

WriteTransaction::WriteTransaction(Connection& connection) : connection_(connection) {
  connection_.execute("BEGIN IMMEDIATE");
}

WriteTransaction::~WriteTransaction() {
  if (!done_) sqlite3_exec(connection_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void WriteTransaction::commit() {
  connection_.execute("COMMIT");
  done_ = true;
}

ReadTransaction::ReadTransaction(Connection& connection) : connection_(connection) {
  connection_.execute("BEGIN");
}

ReadTransaction::~ReadTransaction() {
  sqlite3_exec(connection_.handle(), "COMMIT", nullptr, nullptr, nullptr);
}

}  // namespace jobtrail::sqlite
