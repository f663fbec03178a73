#pragma once
// The meaning of a batch of events, defined once for every store. The planner folds a batch
// into the rows of the jobs it touches and says what to write: the events to store, the rows to
// insert or update, the anomalies to flag and the transitions for metrics. A store only loads
// rows, answers a few questions about what it holds (BatchHistory) and lands the plan.
// No I/O here, so every rule is tested without a database (tests/tracker/test_batch_planner.cpp).

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "derive.h"
#include "jobtrail/event.h"
#include "jobtrail/store.h"

namespace jobtrail::detail {

/// A job's row as the planner reads and changes it. Identity is kept in the store's terms:
/// label ids (0 = none) for names, texts for IDs and keys.
struct JobRow {
  std::string job_id;
  std::int64_t id = 0;  ///< the store's row id, given before planning (new rows too)
  bool stored = false;  ///< the row exists in the store
  Lifecycle life;
  std::int64_t job = 0, queue = 0, worker = 0;  ///< label ids, 0 = none
  std::string correlation_id, parent_job_id, idempotency_key;
  /// The store's own id for correlation_id where it keeps one (SQLite interns them), so that a
  /// row written batch after batch is not looked up again each time. The planner leaves it alone.
  std::int64_t correlation = 0;
  /// The store's reference to the last error among stored events (SQLite: an error id,
  /// PostgreSQL: an event seq); superseded by `last_error_pending` when set.
  std::optional<std::int64_t> last_error_stored;
  std::optional<std::size_t> last_error_pending;  ///< index into the plan's pending events
  std::uint32_t anomalies = 0;
  std::uint32_t anomalies_stored = 0;  ///< as loaded, to tell whether the row changed
  /// Internal to the planner: the row's index in the plan being made, -1 outside planning.
  std::int32_t plan_slot = -1;
};

/// An event of the batch to store, for one job.
struct PendingEvent {
  std::int32_t seq = 0;
  State state = State::enqueued;
  std::int32_t attempt = 0;  ///< resolved (never 0)
  Micros at = 0;
  std::int64_t worker = 0;           ///< label id, 0 = none
  const ErrorInfo* error = nullptr;  ///< points into the batch's events; null when none
};

/// A stored event, as a refold reads it back.
struct StoredEvent {
  State state = State::enqueued;
  std::int32_t attempt = 0;
  Micros at = 0;
  std::int32_t seq = 0;
  std::optional<std::int64_t> error;  ///< the store's reference to its error, if it had one
};

/// What the planner asks of the store while it plans. Events of the batch itself are never
/// asked about: the planner knows them (they are pending in its plan).
class BatchHistory {
 public:
  virtual ~BatchHistory() = default;
  /// The row of `job_id`: loaded if stored, else a new row with its id given. The reference
  /// must stay valid until the plan is landed.
  virtual JobRow& row(const std::string& job_id) = 0;
  /// The id of a name (job class, queue, worker), 0 for an empty one.
  virtual std::int64_t label_id(const std::string& text) = 0;
  /// Whether the stored row `row` has an event of `state` at `at` (of `attempt`, if given).
  virtual bool has_event(const JobRow& row, State state, std::optional<std::int32_t> attempt, Micros at) = 0;
  /// A stored job other than `except_id` that succeeded under `key`; 0 when none.
  virtual std::int64_t success_under_key(const std::string& key, std::int64_t except_id) = 0;
  /// The stored events of the stored row `row`, in any order.
  virtual std::vector<StoredEvent> stored_events(const JobRow& row) = 0;
};

/// One job's part of a plan. Its events and tags are ranges of the plan's own arrays: one
/// allocation per batch rather than a few per job (the per-job vectors took the SQLite store's
/// append from 1.12 to 1.34 s of CPU per 200,000 events; see the commit that made them ranges).
struct JobPlan {
  JobRow* row = nullptr;                     ///< changed in place by the planner
  std::span<PendingEvent> pending;           ///< to insert, in arrival order
  std::span<const std::string*> entities;    ///< to tag the job with, sorted, without repeats
  bool needs_refold = false;                 ///< internal: an event came out of lifecycle order

  /// Whether the row must be written (new events, or a new anomaly flag).
  bool changed() const noexcept { return !pending.empty() || row->anomalies != row->anomalies_stored; }
  /// Whether the write is one `ls --follow` reports, so the job moves to the end of the
  /// store's order of writes (job_by_change): a new job, a new anomaly flag, or any event but
  /// a heartbeat. A heartbeat only says the job still runs; a fleet's running jobs send one
  /// every few seconds, and a follower would otherwise print each of them again and again.
  bool noticeable() const noexcept {
    return !row->stored || row->anomalies != row->anomalies_stored ||
           std::any_of(pending.begin(), pending.end(), [](const PendingEvent& e) { return e.state != State::heartbeat; });
  }
};

/// An anomaly to insert.
struct PlannedAnomaly {
  std::int64_t job = 0;
  AnomalyKind kind = AnomalyKind::duplicate_success;
  std::int64_t other_job = 0;  ///< 0 = none
  std::string detail;
  Micros at = 0;
};

/// A change of the store's job counts per class, bucket of first time and state (job_tally):
/// a job's row moving from one (class, bucket, state) to another is -1 there and +1 here.
struct TallyChange {
  std::int64_t job = 0;  ///< label id, 0 = none
  Micros bucket = 0;     ///< tally_bucket_start() of the jobs' first event
  State state = State::enqueued;
  std::int64_t delta = 0;  ///< never 0

  friend bool operator==(const TallyChange&, const TallyChange&) = default;
};

/// Everything one append writes. Move-only: the jobs' ranges point into its arrays.
struct BatchPlan {
  BatchPlan() = default;
  BatchPlan(BatchPlan&&) = default;
  BatchPlan& operator=(BatchPlan&&) = default;
  BatchPlan(const BatchPlan&) = delete;
  BatchPlan& operator=(const BatchPlan&) = delete;

  std::vector<JobPlan> jobs;  ///< in order of first appearance in the batch
  std::vector<PendingEvent> events;             ///< every job's pending events, job by job
  std::vector<const std::string*> entity_tags;  ///< every job's tags, into the batch's events
  std::vector<PlannedAnomaly> anomalies;
  /// Jobs outside the batch that join an anomaly: OR this bit into their stored flags.
  std::vector<std::int64_t> flag_others;
  /// What the batch does to the job counts, one entry per (bucket, job, state) in that order
  /// (job_tally's key order), without zero changes. The SQLite store lands it; PostgreSQL
  /// counts when asked instead (pg_schema.cpp, version 5), so its writers ignore it.
  std::vector<TallyChange> tally;
  AppendResult result;
};

constexpr std::uint32_t anomaly_bit(AnomalyKind kind) { return 1u << static_cast<unsigned>(kind); }

/// Plans `events` (validated, every time given) against `history`. Not thread-safe in the
/// sense that `history` is used from the calling thread only; the function keeps no state.
BatchPlan plan_batch(const std::vector<Event>& events, BatchHistory& history);

}  // namespace jobtrail::detail
