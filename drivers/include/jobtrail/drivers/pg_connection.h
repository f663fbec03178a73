#pragma once
// A thin RAII layer over libpq for the PostgreSQL store and the checker: connections, results,
// text-format parameters, COPY, and PostgreSQL's errors turned into StoreError.

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "jobtrail/store.h"

namespace jobtrail::pg {

/// The URL with any password replaced by "***", for messages and location().
std::string redact(const std::string& url);

/// `text` (a message, often libpq's, which quotes the connection string it could not parse,
/// password and all) with every secret of `url` hidden: the URL itself shown as redact()
/// shows it, then any remaining occurrence of its password, raw or percent-decoded, as "***".
/// The one function every message that may hold a connection string goes through.
std::string without_secrets(std::string_view text, const std::string& url);

/// The StoreError that fits an error of `connection` (and `result`, if any), with `what`:
/// lost connections, deadlocks, serialization failures and an overloaded server are transient
/// (StoreError::Kind::io or busy), everything else is not.
StoreError error_of(PGconn* connection, const PGresult* result, std::string_view what);

/// One query's result. Values are read as text (the text protocol); ints are parsed.
class Result {
 public:
  Result() = default;
  explicit Result(PGresult* result) noexcept : result_(result) {}
  int rows() const noexcept { return result_ ? PQntuples(result_.get()) : 0; }
  int columns() const noexcept { return result_ ? PQnfields(result_.get()) : 0; }
  std::string column_name(int column) const { return PQfname(result_.get(), column); }
  bool is_null(int row, int column) const noexcept { return PQgetisnull(result_.get(), row, column) != 0; }
  /// The value as text; "" for NULL.
  std::string_view text(int row, int column) const noexcept;
  std::string string(int row, int column) const { return std::string(text(row, column)); }
  /// The value as an integer; 0 for NULL.
  std::int64_t integer(int row, int column) const noexcept;
  std::optional<std::int64_t> optional_integer(int row, int column) const noexcept;
  /// A bytea column (hex output format) decoded to its bytes.
  std::string bytes(int row, int column) const;
  /// A one-dimensional text[] column's elements ({} and NULL: none; NULL elements are left out).
  std::vector<std::string> text_array(int row, int column) const;
  /// Number of rows a command changed (DELETE, UPDATE, INSERT).
  std::int64_t affected() const noexcept;
  PGresult* get() const noexcept { return result_.get(); }

 private:
  struct Clear {
    void operator()(PGresult* result) const noexcept { PQclear(result); }
  };
  std::unique_ptr<PGresult, Clear> result_;
};

/// A PostgreSQL array literal ("{1,NULL,\"text\"}") built element by element, for passing a
/// whole batch as one parameter (INSERT ... SELECT FROM unnest($1::bigint[], $2::text[], ...)).
class ArrayLiteral {
 public:
  ArrayLiteral& add(std::int64_t value);
  ArrayLiteral& add(std::optional<std::int64_t> value);
  ArrayLiteral& add(std::string_view text);  ///< quoted and escaped; "" stays an empty string
  ArrayLiteral& add_text_or_null(std::string_view text);
  ArrayLiteral& add_null();
  std::string finish() const { return text_ + "}"; }

 private:
  void separate() {
    if (text_.size() > 1) text_ += ',';
  }
  std::string text_ = "{";
};

/// Text-format parameters $1, $2, ... for Connection::exec. Empty optionals are NULL.
class Params {
 public:
  Params& add(std::int64_t value);
  Params& add(std::string_view text);
  Params& add(const char* text) { return add(std::string_view(text)); }
  Params& add(std::optional<std::int64_t> value);
  Params& add_null();
  /// An empty text as NULL, any other as itself.
  Params& add_text_or_null(std::string_view text);
  /// A text[] or bigint[] array literal of the elements, each quoted and escaped.
  Params& add_array(const std::vector<std::string>& elements);
  Params& add_array(const std::vector<std::int64_t>& elements);
  Params& add(const ArrayLiteral& array) { return add(std::string_view(array.finish())); }
  std::size_t size() const noexcept { return values_.size(); }

 private:
  friend class Connection;
  std::vector<std::optional<std::string>> values_;
};

/// One connection. Not thread-safe.
class Connection {
 public:
  /// Connects to `url` (a libpq connection URI or key=value string). A server that cannot be
  /// reached is a transient StoreError (io); a refused login or a missing database is not.
  explicit Connection(const std::string& url);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Runs one or more statements without parameters. Throws StoreError.
  Result execute(std::string_view sql);
  /// Runs one statement with text parameters. Throws StoreError.
  Result exec(const std::string& sql, const Params& params);
  /// Runs `copy_sql` (COPY ... FROM STDIN) and sends `data` in COPY's text format.
  /// Returns the rows copied. Throws StoreError.
  std::int64_t copy_in(const std::string& copy_sql, std::string_view data);
  /// Whether the connection is still usable (not lost).
  bool ok() const noexcept { return PQstatus(connection_) == CONNECTION_OK; }
  /// Whether a transaction is open (or failed and awaits ROLLBACK).
  bool in_transaction() const noexcept;
  PGconn* handle() const noexcept { return connection_; }
  const std::string& url() const noexcept { return url_; }
  /// The SQLSTATE of the last command's failure ("23505": a unique violation), "" if none.
  const std::string& last_sqlstate() const noexcept { return last_sqlstate_; }

 private:
  Result checked(PGresult* result, std::string_view what);
  void remember_sqlstate(const PGresult* result);
  std::string last_sqlstate_;
  PGconn* connection_ = nullptr;
  std::string url_;
};

/// A transaction: BEGIN on construction, ROLLBACK in the destructor unless committed (never
/// throws from there; a lost connection needs no rollback).
class Transaction {
 public:
  /// `begin`: e.g. "BEGIN" or "BEGIN READ ONLY".
  explicit Transaction(Connection& connection, std::string_view begin = "BEGIN");
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Connection& connection_;
  bool done_ = false;
};

/// Appends `value` to `out` escaped for COPY's text format (backslash, tab, newline, CR).
void append_copy_text(std::string& out, std::string_view value);

/// Rows for COPY ... FROM STDIN in its text format, built value by value.
class CopyBuffer {
 public:
  CopyBuffer& add(std::int64_t value);
  CopyBuffer& add(std::optional<std::int64_t> value);
  CopyBuffer& add_text(std::string_view text);  ///< escaped; "" stays an empty string
  CopyBuffer& add_text_or_null(std::string_view text);
  CopyBuffer& add_null();
  void end_row();
  const std::string& data() const noexcept { return data_; }
  bool empty() const noexcept { return data_.empty(); }

 private:
  void separate() {
    if (in_row_) data_ += '\t';
    in_row_ = true;
  }
  std::string data_;
  bool in_row_ = false;
};

}  // namespace jobtrail::pg
