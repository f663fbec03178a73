#pragma once
// The records both stores read back, decoded from their columns in one place: each store's
// SELECT lists the columns in the order a decoder here reads them, so which column holds what
// is written once, not once per store.
//
// A decoder reads a `Row`, the store's adapter over one result row:
//   text(i)               the column's text, "" for NULL
//   id(i)                 a job or correlation ID as the store keeps it, back to its text
//   integer(i)            the column's integer, 0 for NULL
//   optional_integer(i)   the integer, or nothing for NULL
//   time(i), optional_time(i)  an absolute time in microseconds (the store adds its epoch)
//   boolean(i)            a flag

#include <cstdint>

#include "batch_planner.h"
#include "derive.h"
#include "jobtrail/store.h"

namespace jobtrail::detail {

/// Columns: job_id, job, queue, correlation_id, parent_job_id, idempotency_key, state,
/// enqueued_at, started_at, finished_at, heartbeat_at, first_at, last_at, attempts, events,
/// worker, error class, message, backtrace, anomalies, row id.
template <typename Row>
JobRecord read_job_record(const Row& row) {
  JobRecord job;
  job.job_id = row.id(0);
  job.job = row.text(1);
  job.queue = row.text(2);
  job.correlation_id = row.id(3);
  job.parent_job_id = row.id(4);
  job.idempotency_key = row.text(5);
  job.state = static_cast<State>(row.integer(6));
  job.enqueued_at = row.optional_time(7);
  job.started_at = row.optional_time(8);
  job.finished_at = row.optional_time(9);
  job.heartbeat_at = row.optional_time(10);
  job.first_event_at = row.time(11);
  job.last_event_at = row.time(12);
  job.attempts = static_cast<std::int32_t>(row.integer(13));
  job.event_count = static_cast<std::int32_t>(row.integer(14));
  job.worker = row.text(15);
  job.last_error = {row.text(16), row.text(17), row.text(18)};
  job.anomalies = static_cast<std::uint32_t>(row.integer(19));
  job.row = row.integer(20);
  return job;
}

/// The planner's view of a stored job. Columns: id, job, queue, parent_job_id,
/// idempotency_key, state, enqueued_at, started_at, finished_at, heartbeat_at, first_at,
/// last_at, attempts, events, successes, worker, last error (the store's reference),
/// tail_state, tail_attempt, tail_at, anomalies. `row.job_id` and the correlation are the
/// caller's: each store keeps them in its own way.
template <typename Row>
void read_job_row(const Row& row, JobRow& job) {
  job.id = row.integer(0);
  job.stored = true;
  job.job = row.integer(1);
  job.queue = row.integer(2);
  job.parent_job_id = row.id(3);
  job.idempotency_key = row.text(4);
  Lifecycle& life = job.life;
  life.empty = false;
  life.state = static_cast<State>(row.integer(5));
  life.enqueued_at = row.optional_time(6);
  life.started_at = row.optional_time(7);
  life.finished_at = row.optional_time(8);
  life.heartbeat_at = row.optional_time(9);
  life.first_event_at = row.time(10);
  life.last_event_at = row.time(11);
  life.attempts = static_cast<std::int32_t>(row.integer(12));
  life.event_count = static_cast<std::int32_t>(row.integer(13));
  life.successes = static_cast<std::int32_t>(row.integer(14));
  job.worker = row.integer(15);
  job.last_error_stored = row.optional_integer(16);
  life.tail = lifecycle_key(static_cast<State>(row.integer(17)), static_cast<std::int32_t>(row.integer(18)), row.time(19));
  job.anomalies = job.anomalies_stored = static_cast<std::uint32_t>(row.integer(20));
}

/// Columns: state, attempt, at, worker, error class, message, backtrace.
template <typename Row>
EventRecord read_event_record(const Row& row) {
  EventRecord event;
  event.state = static_cast<State>(row.integer(0));
  event.attempt = static_cast<std::int32_t>(row.integer(1));
  event.at = row.time(2);
  event.worker = row.text(3);
  event.error = {row.text(4), row.text(5), row.text(6)};
  return event;
}

/// Columns: job_id, kind, the other job's job_id, detail, at.
template <typename Row>
AnomalyRecord read_anomaly_record(const Row& row) {
  return {row.id(0), static_cast<AnomalyKind>(row.integer(1)), row.id(2), row.text(3), row.time(4)};
}

/// Columns: those of check_result_columns (store_rules.h).
template <typename Row>
CheckResultRecord read_check_result(const Row& row) {
  CheckResultRecord result;
  result.run_id = row.integer(0);
  result.check = row.text(1);
  result.status = static_cast<CheckStatus>(row.integer(2));
  result.severity = row.text(3);
  result.violations = row.integer(4);
  result.new_violations = row.integer(5);
  result.resolved = row.integer(6);
  result.fingerprints_complete = row.boolean(7);
  result.started_at = row.time(8);
  result.duration = row.integer(9);
  result.error = row.text(10);
  return result;
}

/// Columns: those of check_violation_columns (store_rules.h): fingerprint, first_seen_at,
/// sample, entity.
template <typename Row>
CheckViolation read_check_violation(const Row& row) {
  return {row.text(0), row.time(1), row.text(2), row.text(3)};
}

/// Columns: the job class, every_us, grace_us, updated_at, the class's newest first_at.
template <typename Row>
Schedule read_schedule(const Row& row) {
  Schedule schedule;
  schedule.job = row.text(0);
  schedule.every = row.integer(1);
  schedule.grace = row.integer(2);
  schedule.updated_at = row.time(3);
  schedule.last_run_at = row.optional_time(4);
  return schedule;
}

}  // namespace jobtrail::detail
