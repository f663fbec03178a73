// SQL checks on PostgreSQL: a read-only transaction, a statement_timeout that ends at the
// check's deadline, and a server-side cursor, so a query that finds millions of rows is
// counted on the server while only the rows kept cross the wire.

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>

#include "jobtrail/view/time_format.h"
#include "jobtrail/drivers/pg_connection.h"
#include "sql_check.h"

namespace jobtrail::check {

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* cursor_name = "jobtrail_check";
/// Rows per FETCH while filling the samples: few round trips, little memory.
constexpr std::size_t fetch_batch = 1000;

/// libpq's messages span lines ("...failed: Connection refused\n\tIs the server running...");
/// a report line holds one.
std::string one_line(std::string text) {
  std::string out;
  bool blank = false;
  for (char c : text) {
    if (c == '\n' || c == '\t' || c == '\r' || c == ' ') {
      blank = true;
      continue;
    }
    if (blank && !out.empty()) out += ' ';
    blank = false;
    out += c;
  }
  return out;
}

/// The first word of the query, upper-cased, past blanks, comments and parentheses: for a
/// message naming what a refused statement would have done.
std::string first_keyword(const std::string& query) {
  std::size_t i = 0;
  while (i < query.size()) {
    const auto c = static_cast<unsigned char>(query[i]);
    if (std::isspace(c) || c == '(') {
      ++i;
    } else if (query.compare(i, 2, "--") == 0) {
      i = query.find('\n', i);
      if (i == std::string::npos) return "";
    } else if (query.compare(i, 2, "/*") == 0) {
      i = query.find("*/", i + 2);
      if (i == std::string::npos) return "";
      i += 2;
    } else {
      break;
    }
  }
  std::string word;
  for (; i < query.size() && std::isalpha(static_cast<unsigned char>(query[i])); ++i) {
    word += static_cast<char>(std::toupper(static_cast<unsigned char>(query[i])));
  }
  return word;
}

/// Statements that change data, schema, settings or the transaction: a cursor cannot hold
/// them (a syntax error), and the read-only transaction would refuse most anyway.
bool is_writing_keyword(const std::string& word) {
  static const char* const writing[] = {"INSERT", "UPDATE",   "DELETE",  "MERGE",  "UPSERT",  "CREATE", "DROP",
                                        "ALTER",  "TRUNCATE", "GRANT",   "REVOKE", "COPY",    "CALL",   "DO",
                                        "SET",    "RESET",    "LOCK",    "VACUUM", "ANALYZE", "REINDEX",
                                        "CLUSTER", "COMMENT", "REFRESH", "BEGIN",  "START",   "COMMIT", "END",
                                        "ROLLBACK", "ABORT",  "SAVEPOINT", "RELEASE", "PREPARE", "EXECUTE",
                                        "DISCARD", "NOTIFY",  "LISTEN",  "SECURITY", "IMPORT", "REASSIGN"};
  return std::find(std::begin(writing), std::end(writing), word) != std::end(writing);
}

/// One check's statements on one connection: each error of PostgreSQL turned into a message
/// for the report. Not thread-safe (it is one connection).
class PostgresCheck {
 public:
  PostgresCheck(pg::Connection& connection, const std::string& query, Micros timeout)
      : connection_(connection), query_(query), timeout_(timeout),
        deadline_(check_deadline(timeout)) {}

  /// The milliseconds left until the deadline, at least 1 (0 would turn the timeout off).
  std::string remaining_ms(const std::string& while_doing) const {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
    if (left <= 0) throw timed_out(while_doing);
    return std::to_string(std::max<std::int64_t>(left, 1));
  }

  /// Throws the timeout if the deadline has passed: a statement the server did not cancel in
  /// time (work between its checks for interrupts) makes the check an error, never a pass.
  void within_deadline(const std::string& while_doing) const {
    if (Clock::now() >= deadline_) throw timed_out(while_doing);
  }

  /// Runs our own statement(s). Throws CheckFailure.
  pg::Result exec(const std::string& sql, const std::string& while_doing) {
    return checked(PQexec(connection_.handle(), sql.c_str()), while_doing);
  }

  /// Declares the cursor over the check's query. The extended protocol takes exactly one
  /// statement: "SELECT 1; COMMIT; DELETE ..." is refused whole instead of run in part.
  void declare() {
    const std::string sql = std::string("DECLARE ") + cursor_name + " NO SCROLL CURSOR FOR " + query_;
    checked(PQexecParams(connection_.handle(), sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0),
            "while planning the query");
  }

  /// The cursor's column names, without fetching a row.
  std::vector<std::string> columns() {
    auto description = checked(PQdescribePortal(connection_.handle(), cursor_name), "while describing the query");
    std::vector<std::string> names;
    for (int c = 0; c < description.columns(); ++c) names.push_back(description.column_name(c));
    return names;
  }

  std::int64_t rows_read = 0;

 private:
  CheckFailure timed_out(const std::string& while_doing) const {
    return CheckFailure("timed out after " + view::format_duration(timeout_) +
                        " (its timeout, enforced as the statement_timeout of the PostgreSQL transaction) " +
                        while_doing + "; " + std::to_string(rows_read) + " rows read by then");
  }

  static CheckFailure read_only(const std::string& message) {
    const bool says_why = message.find("read-only transaction") != std::string::npos;
    return CheckFailure("a check may only read: " + message +
                        (says_why ? " (nothing was changed)"
                                  : " (the database is opened in a read-only transaction; nothing was changed)"));
  }

  pg::Result checked(PGresult* raw, const std::string& while_doing) {
    pg::Result result(raw);
    const auto status = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
    std::string state;
    std::string message;
    if (raw) {
      if (const char* field = PQresultErrorField(raw, PG_DIAG_SQLSTATE)) state = field;
      if (const char* field = PQresultErrorField(raw, PG_DIAG_MESSAGE_PRIMARY)) message = field;
    }
    if (message.empty()) message = PQerrorMessage(connection_.handle());
    message = one_line(message);
    if (!connection_.ok() || state.rfind("08", 0) == 0) {
      throw CheckFailure("lost the connection to the database " + pg::redact(connection_.url()) + " " +
                         while_doing + ": " + message);
    }
    if (state == "57014" && message.find("statement timeout") != std::string::npos) throw timed_out(while_doing);
    if (state == "55P03") throw timed_out(while_doing + " (waiting for a lock)");
    if (state == "25006") throw read_only(message);
    // "DECLARE CURSOR must not contain data-modifying statements in WITH"
    if (state == "0A000" && message.find("data-modifying") != std::string::npos) throw read_only(message);
    if (state == "42601") {
      if (message.find("multiple commands") != std::string::npos) {
        throw CheckFailure("a check is one SELECT statement; this query holds more than one (nothing was run)");
      }
      const auto keyword = first_keyword(query_);
      if (is_writing_keyword(keyword)) {
        throw CheckFailure("a check may only read, but this query is " + keyword + ", not a SELECT (the database is "
                           "opened in a read-only transaction; nothing was changed)");
      }
      throw CheckFailure("the query is not valid SQL: " + message);
    }
    throw CheckFailure("the query failed: " + message);
  }

  pg::Connection& connection_;
  const std::string& query_;
  Micros timeout_;
  Clock::time_point deadline_;
};

}  // namespace

bool is_postgres_url(const std::string& database) {
  return database.rfind("postgresql://", 0) == 0 || database.rfind("postgres://", 0) == 0;
}

QueryRows run_postgres_check(const std::string& url, const std::string& search_path, const std::string& query,
                             Micros timeout, std::size_t keep) {
  std::unique_ptr<pg::Connection> connection;
  try {
    connection = std::make_unique<pg::Connection>(url);
  } catch (const StoreError& error) {
    // "cannot connect to postgresql://app:***@db/shop: ..." (the wrapper redacts the password)
    throw CheckFailure(one_line(error.what()));
  }
  PostgresCheck check(*connection, query, timeout);
  std::unique_ptr<pg::Transaction> transaction;
  try {
    // Rolled back when `transaction` goes, whatever happens: a check never commits.
    transaction = std::make_unique<pg::Transaction>(*connection, "BEGIN READ ONLY");
  } catch (const StoreError& error) {
    throw CheckFailure("cannot begin a read-only transaction on " + pg::redact(url) + ": " + one_line(error.what()));
  }
  const auto ms = check.remaining_ms("while connecting");
  // The idle timeout ends the transaction on the server if this process hangs between fetches.
  // UTC and UTF-8, so a timestamptz or a text reads the same from every host: fingerprints
  // must not depend on where the checker runs.
  std::string settings = "SET LOCAL statement_timeout = " + ms + "; SET LOCAL idle_in_transaction_session_timeout = " +
                         ms + "; SET LOCAL TimeZone = 'UTC'; SET LOCAL client_encoding = 'UTF8'";
  if (!search_path.empty()) {
    char* quoted = PQescapeIdentifier(connection->handle(), search_path.c_str(), search_path.size());
    if (!quoted) throw CheckFailure("bad schema name " + search_path);
    settings += std::string("; SET LOCAL search_path = ") + quoted;
    PQfreemem(quoted);
  }
  check.exec(settings, "while setting up the transaction");
  check.declare();

  QueryRows result;
  result.columns = check.columns();
  if (result.columns.empty()) throw CheckFailure("the query returns no columns; a check returns the rows that must not exist");
  bool exhausted = false;
  while (result.rows.size() < keep) {
    const auto want = std::min(fetch_batch, keep - result.rows.size());
    check.exec("SET LOCAL statement_timeout = " + check.remaining_ms("while reading rows"), "while reading rows");
    const auto batch = check.exec("FETCH FORWARD " + std::to_string(want) + " FROM " + cursor_name, "while reading rows");
    for (int r = 0; r < batch.rows(); ++r) {
      std::vector<std::optional<std::string>> row;
      row.reserve(result.columns.size());
      for (int c = 0; c < batch.columns(); ++c) {
        row.emplace_back(batch.is_null(r, c) ? std::nullopt : std::optional<std::string>(batch.string(r, c)));
      }
      result.rows.push_back(std::move(row));
    }
    result.count += batch.rows();
    check.rows_read = result.count;
    if (static_cast<std::size_t>(batch.rows()) < want) {
      exhausted = true;
      break;
    }
  }
  if (!exhausted) {
    // The rest is counted where it is: MOVE reports how many rows it skipped, sending none.
    check.exec("SET LOCAL statement_timeout = " + check.remaining_ms("while counting rows"), "while counting rows");
    result.count += check.exec(std::string("MOVE FORWARD ALL FROM ") + cursor_name, "while counting rows").affected();
    check.rows_read = result.count;
  }
  check.within_deadline("while reading rows");
  return result;
}

}  // namespace jobtrail::check
