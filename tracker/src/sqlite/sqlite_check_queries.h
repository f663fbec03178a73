#pragma once
// The SQL of the built-in checks, in one place so the test that proves each is answered from
// an index (EXPLAIN QUERY PLAN) reads exactly the text the store runs.
// States are inlined, never bound: SQLite uses a partial index only when it can see that the
// query implies the index's WHERE.

#include <string_view>

namespace jobtrail::sqlite::check_queries {

/// ?1: the loosest cutoff (relative to the epoch). The expression is exactly that of the index
/// job_started_by_activity, so the range is a seek on it.
inline constexpr std::string_view stuck = R"SQL(
SELECT j.id, c.text, j.first_at + max(coalesce(j.started_at, 0), coalesce(j.heartbeat_at, 0))
FROM job j LEFT JOIN label c ON c.id = j.job
WHERE j.state = 2 AND j.first_at + max(coalesce(j.started_at, 0), coalesce(j.heartbeat_at, 0)) < ?1
ORDER BY j.first_at + max(coalesce(j.started_at, 0), coalesce(j.heartbeat_at, 0)))SQL";

/// ?1: the loosest cutoff. An enqueued job's first event is (nearly always) its enqueue, so
/// first_at bounds the range of job_by_state and the enqueue time decides. SQLite sees that a
/// query implies a partial index's WHERE only when it holds the same term, hence the redundant
/// "state != 4"; INDEXED BY because with statistics saying few jobs wait, the planner would
/// otherwise walk job_by_first_at for the ORDER BY and read every job in the range.
inline constexpr std::string_view lost = R"SQL(
SELECT j.id, c.text, j.first_at + coalesce(j.enqueued_at, 0)
FROM job j INDEXED BY job_by_state LEFT JOIN label c ON c.id = j.job
WHERE j.state = 1 AND j.state != 4 AND j.first_at < ?1
ORDER BY j.first_at)SQL";

/// ?1: since. The partial index job_with_anomalies holds only flagged jobs.
inline constexpr std::string_view duplicates = R"SQL(
SELECT j.id, j.anomalies FROM job j
WHERE j.anomalies != 0 AND j.first_at >= ?1 ORDER BY j.first_at)SQL";

/// ?1: since. job_dead_by_last_at: dead jobs by the time of their last event.
inline constexpr std::string_view dead = R"SQL(
SELECT j.id FROM job j WHERE j.state = 6 AND j.first_at + j.last_at >= ?1
ORDER BY j.first_at + j.last_at)SQL";

}  // namespace jobtrail::sqlite::check_queries
