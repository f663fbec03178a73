#pragma once
// Running one SQL check: a fresh read-only connection per check and a deadline. On SQLite the
// jobtrail store is attached read-only beside the application database; on PostgreSQL the
// query runs in a read-only transaction through a cursor.

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "jobtrail/event.h"

struct sqlite3;

namespace jobtrail::check {

/// The longest `timeout` a check may have: a day. checks.yaml refuses more at load time (a
/// longer one is a typo: `jobtrail check` runs from cron, and PostgreSQL's statement_timeout
/// holds at most 24.8 days); the runners clamp to it as well, for callers that build a Config
/// in code, so no deadline arithmetic can overflow.
inline constexpr Micros longest_timeout = 24LL * 3'600'000'000LL;

/// When a check starting now with `timeout` must end, `timeout` clamped to 0..longest_timeout.
std::chrono::steady_clock::time_point check_deadline(Micros timeout);

/// The bounds on one value a check's SQLite connection may read or build (SQLITE_LIMIT_LENGTH),
/// on its SQL text and on a LIKE/GLOB pattern. See make_check_connection_safe().
inline constexpr int longest_check_value = 1 << 20;
inline constexpr int longest_check_sql = 1 << 20;
inline constexpr int longest_like_pattern = 1000;

/// Hardens a connection the checker opened, before anything is attached or read:
/// SQLITE_DBCONFIG_DEFENSIVE on, the FTS3 tokenizer's pointer interface and trusted_schema
/// off, and the limits above. Throws CheckFailure if SQLite refuses one of them.
void make_check_connection_safe(sqlite3* db);

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
