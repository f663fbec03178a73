#pragma once
// The SQL of the built-in checks on PostgreSQL, in one place so the test that proves each is
// answered from an index (EXPLAIN) reads exactly the text the store runs. Each returns
// candidate rows (id, job class, time of interest[, anomaly bits]); $1 is a time bound.

#include <string_view>

namespace jobtrail::pg::check_queries {

/// $1: the loosest cutoff. The expression is exactly that of the index job_started_by_activity,
/// so the range is a seek on it.
inline constexpr std::string_view stuck = R"SQL(
SELECT j.id, c.text, greatest(j.started_at, j.heartbeat_at, j.first_at)
FROM job j LEFT JOIN label c ON c.id = j.job
WHERE j.state = 2 AND greatest(j.started_at, j.heartbeat_at, j.first_at) < $1
ORDER BY greatest(j.started_at, j.heartbeat_at, j.first_at), j.id)SQL";

/// $1: the loosest cutoff. An enqueued job's first event is (nearly always) its enqueue:
/// first_at bounds the range of job_by_state and the enqueue time decides.
inline constexpr std::string_view lost = R"SQL(
SELECT j.id, c.text, coalesce(j.enqueued_at, j.first_at)
FROM job j LEFT JOIN label c ON c.id = j.job
WHERE j.state = 1 AND j.first_at < $1
ORDER BY j.first_at, j.id)SQL";

/// $1: since. The partial index job_with_anomalies holds only flagged jobs.
inline constexpr std::string_view duplicates = R"SQL(
SELECT j.id, '', 0, j.anomalies FROM job j WHERE j.anomalies <> 0 AND j.first_at >= $1
ORDER BY j.first_at, j.id)SQL";

/// $1: since. job_dead_by_last_at: dead jobs by the time of their last event.
inline constexpr std::string_view dead = R"SQL(
SELECT j.id, '', j.last_at FROM job j WHERE j.state = 6 AND j.last_at >= $1 ORDER BY j.last_at, j.id)SQL";

}  // namespace jobtrail::pg::check_queries
