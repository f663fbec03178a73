#pragma once
// Running one SQL check: a fresh read-only connection per check and a deadline. On SQLite the
// jobtrail store is attached read-only beside the application database; on PostgreSQL the
// query runs in a read-only transaction through a cursor.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "jobtrail/event.h"

namespace jobtrail::check {

/// Why a check could not run; its message goes into the report as is. Immutable, thread-safe.
class CheckFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What a check query returned: every row counted, the first `keep` kept.
struct QueryRows {
  std::vector<std::string> columns;
  std::int64_t count = 0;
  std::vector<std::vector<std::optional<std::string>>> rows;
};

/// Runs `query` on the SQLite database `database_path` (empty: an empty in-memory main
/// database) with the SQLite store at `store_path` attached as `jobtrail` (empty: nothing is
/// attached). Both are opened read-only; the query must be one statement that only reads.
/// Throws CheckFailure on any failure, including `timeout`.
QueryRows run_sql_check(const std::string& database_path, const std::string& store_path, const std::string& query,
                        Micros timeout, std::size_t keep);

/// Whether `database` names a PostgreSQL database: a postgresql:// or postgres:// URL.
bool is_postgres_url(const std::string& database);

/// Runs `query` on the PostgreSQL database at `url` in a read-only transaction whose
/// statement_timeout ends at `timeout`, through a server-side cursor: the first `keep` rows
/// are fetched, the rest only counted on the server. `search_path`, when not empty, is set for
/// the transaction (the store's schema for `database: jobtrail`). Always rolls back. Throws
/// CheckFailure on any failure (messages name the database with its password redacted).
QueryRows run_postgres_check(const std::string& url, const std::string& search_path, const std::string& query,
                             Micros timeout, std::size_t keep);

}  // namespace jobtrail::check
