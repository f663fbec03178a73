#pragma once
// Running one SQL check: a fresh read-only connection per check, the jobtrail store attached
// read-only beside the application database, and a deadline.

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

/// Runs `query` on `database_path` (empty: an empty in-memory main database) with the store at
/// `store_path` attached as `jobtrail`. Both are opened read-only; the query must be one
/// statement that only reads. Throws CheckFailure on any failure, including `timeout`.
QueryRows run_sql_check(const std::string& database_path, const std::string& store_path, const std::string& query,
                        Micros timeout, std::size_t keep);

}  // namespace jobtrail::check
