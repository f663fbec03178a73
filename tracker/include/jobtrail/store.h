#pragma once
/// \file
/// The durable history of jobs. One interface, one implementation per database; the
/// public face names neither SQLite nor libpq.

#include <compare>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "jobtrail/event.h"
#include "jobtrail/history_writer.h"

namespace jobtrail {

/// Impossible sequences the store keeps and flags instead of dropping.
/// The numeric values are stored on disk: never renumber them.
enum class AnomalyKind : std::uint8_t {
  duplicate_success = 1,          ///< one job succeeded more than once
  duplicate_idempotency_key = 2,  ///< two jobs succeeded under one idempotency key
};
std::string_view to_string(AnomalyKind kind) noexcept;

/// The derived, one-row-per-job view of a job's events.
struct JobRecord {
  std::string job_id;
  std::string job;
  std::string queue;
  std::string correlation_id;
  std::string parent_job_id;
  std::string idempotency_key;
  State state = State::enqueued;       ///< never `heartbeat`
  std::optional<Micros> enqueued_at;   ///< enqueue of the latest attempt (a retry waits again)
  std::optional<Micros> started_at;    ///< start of the latest attempt
  std::optional<Micros> finished_at;   ///< end of the latest attempt
  std::optional<Micros> heartbeat_at;  ///< latest heartbeat
  Micros first_event_at = 0;
  Micros last_event_at = 0;
  std::int32_t attempts = 0;           ///< highest attempt number seen
  std::int32_t event_count = 0;
  std::string worker;                  ///< worker of the latest event that named one
  ErrorInfo last_error;
  std::uint32_t anomalies = 0;         ///< bit (1 << AnomalyKind) per kind flagged
  std::vector<std::string> entities;   ///< entity tags ("type:id"), sorted byte by byte
  /// The store's own number for the row: with first_event_at, the job's place in list order
  /// (ListPosition), and increasing in the order jobs were first recorded.
  std::int64_t row = 0;
};

/// Where a page of `list_jobs` ends: the last job shown, in list order (newest first_event_at
/// first, then highest row). A position stays valid while jobs are added: the next page starts
/// right after it, so no job is shown twice or skipped because new ones arrived meanwhile.
struct ListPosition {
  Micros first_event_at = 0;
  std::int64_t row = 0;
  bool operator==(const ListPosition&) const = default;
};

/// The opaque text of a position, safe in a URL and a shell ("j1...": base64url, no padding).
std::string to_cursor(const ListPosition& position);
/// The position a cursor from to_cursor names; nothing for any other text.
std::optional<ListPosition> parse_cursor(std::string_view cursor);

/// A place in the order the store wrote job rows: the write's number (SQLite: a store-wide
/// counter taken by each append; PostgreSQL: the writing transaction's ID), then the row.
/// Written jobs come after every position taken before they were committed.
struct ChangePosition {
  std::int64_t change = 0;
  std::int64_t row = 0;
  auto operator<=>(const ChangePosition&) const = default;
};

/// One stored event, as `show` prints it.
struct EventRecord {
  State state = State::enqueued;
  Micros at = 0;
  std::int32_t attempt = 0;
  std::string worker;
  ErrorInfo error;
};

/// A flagged impossible sequence.
struct AnomalyRecord {
  std::string job_id;
  AnomalyKind kind = AnomalyKind::duplicate_success;
  std::string other_job_id;  ///< the job that already succeeded under the same key, if any
  std::string detail;        ///< e.g. the idempotency key
  Micros at = 0;             ///< when the offending event happened
};

/// What `list_jobs` selects. Empty strings and empty optionals mean "any".
struct JobFilter {
  std::vector<State> states;        ///< any of these; empty: any state
  std::string job;
  std::string queue;
  std::string entity;               ///< "type:id"
  std::optional<Micros> since;      ///< first event at or after
  std::optional<Micros> until;      ///< first event before
  bool anomalies_only = false;
  std::optional<ListPosition> after;  ///< only jobs after this one in list order (the next page)
  std::size_t limit = 50;           ///< newest first
};

/// Most matching jobs a page counts beyond itself: counting is a walk of the same index range
/// the page reads, so it is bounded, whatever the store holds (docs/cli.md, "Pages").
inline constexpr std::int64_t page_count_limit = 10000;

/// One page of a job list and what it leaves out.
struct JobPage {
  std::vector<JobRecord> jobs;
  std::string next_cursor;  ///< where the next page starts (JobFilter::after); empty on the last page
  /// Matching jobs from this page's first on (this page included), counted up to
  /// jobs.size() + count_limit; `total_exact` is false when there are more than that.
  std::int64_t total = 0;
  bool total_exact = true;
  bool partial() const noexcept { return !next_cursor.empty(); }
};


/// What Store::changed_jobs answers: the jobs, and where the next call starts (after every
/// write it looked at, matching or not, so a filter that matches nothing costs nothing twice).
struct ChangedJobs {
  std::vector<JobRecord> jobs;
  ChangePosition next;
};

/// Per job class: counts by current state and wait/run time percentiles.
/// What `stats` groups jobs by.
enum class StatsGroup { job_class, queue };

/// What `stats` summarises. Empty strings and empty optionals mean "any".
struct StatsFilter {
  std::optional<Micros> since;  ///< first event at or after
  std::optional<Micros> until;  ///< first event before
  std::string job;              ///< only this job class
  StatsGroup by = StatsGroup::job_class;
};

/// Per job class (or per queue): counts by current state and wait/run time percentiles.
struct JobStats {
  std::string job;    ///< the job class; empty when grouped by queue
  std::string queue;  ///< the queue when grouped by queue, else empty
  std::int64_t total = 0;
  std::int64_t enqueued = 0, running = 0, succeeded = 0, failed = 0, dead = 0, cancelled = 0;
  /// failed + dead over finished jobs (succeeded, failed, dead); 0 when none finished.
  double failure_rate = 0;
  std::optional<Micros> wait_p50, wait_p95;  ///< enqueued -> started of the latest attempt
  std::optional<Micros> run_p50, run_p95;    ///< started -> finished of the latest attempt
};

/// The expected schedule of a cron-like job class (registered by `jobtrail exec --every`).
struct Schedule {
  std::string job;          ///< job class
  Micros every = 0;         ///< expected interval between runs
  Micros grace = 0;         ///< how late a run may start before it counts as missed
  Micros updated_at = 0;    ///< when it was last registered
  std::optional<Micros> last_run_at;  ///< first event of the newest job of the class (schedules())
};

/// Jobs now waiting or running of one (job class, queue), for the gauges of `jobtrail serve`.
struct ActiveJobs {
  std::string job;    ///< job class, "" when none was named
  std::string queue;  ///< "" when none was named
  std::int64_t waiting = 0;  ///< in state enqueued
  std::int64_t running = 0;  ///< in state started
  std::optional<Micros> oldest_waiting_since;  ///< enqueue time of the longest-waiting job
  std::optional<Micros> oldest_running_since;  ///< start time of the longest-running job
  /// The earliest last sign of life (start or latest heartbeat) among running jobs: a job that
  /// heartbeats is alive however long it runs, one that went silent may be stuck.
  std::optional<Micros> longest_silent_since;
};

/// The console's throughput chart counts jobs by the bucket of time their first event falls in.
/// The SQLite store keeps those counts as it writes (table job_tally), so a chart reads a few
/// hundred rows whatever the store's size; a chart's slices are whole buckets.
constexpr Micros tally_bucket_length = 5LL * 60 * 1'000'000;
/// The start of the bucket `at` falls in (rounded down, also before 1970).
constexpr Micros tally_bucket_start(Micros at) noexcept {
  const Micros rest = at % tally_bucket_length;
  return rest < 0 ? at - rest - tally_bucket_length : at - rest;
}

/// How many jobs of one class, first seen in one slice of time, are now in one state.
struct JobTally {
  std::string job;        ///< job class, "" when none was named
  std::size_t slice = 0;  ///< index into the slices asked for
  State state = State::enqueued;
  std::int64_t jobs = 0;
};

struct PruneResult {
  std::int64_t jobs = 0;
  std::int64_t events = 0;
  std::int64_t check_results = 0;  ///< results of check runs older than the cutoff
};

/// The store's size around a `reclaim_space` call, in bytes as the database counts them
/// (SQLite: pages of the file; PostgreSQL: the relations of the schema "jobtrail").
struct SpaceReport {
  std::int64_t bytes_before = 0;
  std::int64_t bytes_after = 0;
  /// What was done, or why nothing was, and how to give back the rest (one sentence).
  std::string note;
};

/// Which jobs `impact` looks at. At least the time window bounds the jobs read.
struct ImpactFilter {
  std::string job;                  ///< only this job class; empty: any
  std::vector<State> states;        ///< only jobs now in one of these states; empty: any
  std::optional<Micros> since;      ///< first event at or after
  std::optional<Micros> until;      ///< first event before
  /// Only entities of this type ("customer" for customer:42); empty: every type. A matching
  /// job counts as tagged only when it has a tag of the type.
  std::string entity_type;
  std::size_t limit = 50;           ///< entities returned, most-hit first
  std::size_t jobs_per_entity = 5;  ///< job IDs named per entity, newest first
  /// Most matching jobs whose tags are read, the newest first; 0: all of them. A bound on the
  /// work, whatever the window holds: the count of matching jobs stays exact (ImpactReport).
  std::size_t max_jobs = 0;
};

/// One business entity the matching jobs touched.
struct EntityImpact {
  std::string entity;                ///< "type:id"
  std::int64_t jobs = 0;             ///< matching jobs tagged with it
  std::vector<std::string> job_ids;  ///< the newest of them, at most ImpactFilter::jobs_per_entity
  Micros first_at = 0;               ///< first event of the oldest of them
  Micros last_at = 0;                ///< first event of the newest of them
};

/// What `impact` found: every count is exact, `entities` the first `limit` of them. The counts
/// after `matching_jobs` are of the jobs read: all of them unless ImpactFilter::max_jobs cut
/// the read short (complete() is false), then of the newest `read_jobs`.
struct ImpactReport {
  std::int64_t matching_jobs = 0;   ///< jobs the filter selects
  std::int64_t read_jobs = 0;       ///< of those, the jobs whose tags were read (the newest)
  std::int64_t tagged_jobs = 0;     ///< of the jobs read, those with at least one entity tag
  std::int64_t entity_count = 0;    ///< distinct entities, of which `entities` lists the first
  std::vector<std::pair<std::string, std::int64_t>> by_type;  ///< entity type -> distinct entities
  std::vector<EntityImpact> entities;  ///< most jobs first, then by name
  /// Whether every matching job was read.
  bool complete() const noexcept { return read_jobs == matching_jobs; }
};

/// What the built-in checks over the job history look for. Deadlines may differ per job class.
struct JobDeadlines {
  Micros deadline = 0;                                    ///< for every class not listed below
  std::vector<std::pair<std::string, Micros>> per_class;  ///< job class -> its own deadline
  /// The deadline that applies to `job_class`.
  Micros for_class(const std::string& job_class) const noexcept {
    for (const auto& [name, own] : per_class) {
      if (name == job_class) return own;
    }
    return deadline;
  }
  /// The shortest deadline of any class: no job younger than that can be past its own.
  Micros shortest() const noexcept {
    Micros result = deadline;
    for (const auto& [name, own] : per_class) result = own < result ? own : result;
    return result;
  }
};

/// Jobs a built-in check flags: how many in all, and the first `limit` of them, oldest first.
struct JobFindings {
  std::int64_t total = 0;
  std::vector<JobRecord> jobs;
  /// Per entry of `jobs`: the anomaly kind for duplicate executions, else empty (the caller
  /// words the reason from the job's times).
  std::vector<std::string> reasons;
};

/// How one check ended in one run. The numeric values are stored on disk: never renumber them.
enum class CheckStatus : std::uint8_t { pass = 0, warn = 1, fail = 2, error = 3 };
inline std::string_view to_string(CheckStatus status) noexcept {
  switch (status) {
    case CheckStatus::pass: return "pass";
    case CheckStatus::warn: return "warn";
    case CheckStatus::fail: return "fail";
    case CheckStatus::error: return "error";
  }
  return "error";
}

/// One failing row a check run kept: its stable fingerprint, since when it fails, and (for the
/// first `samples` rows) the row itself as the checker serialized it (JSON text).
struct CheckViolation {
  std::string fingerprint;
  Micros first_seen_at = 0;  ///< start of the first run in the current streak that found it
  std::string sample;        ///< empty when the row was not kept as a sample
  /// The business entity of the row ("user:42") for a check with `entity:` (its sampled rows),
  /// so a reader can show the jobs that touched it; "" when none (or read from a store older
  /// than schema 5).
  std::string entity;
};

/// One check's result in one run, as stored in the check history.
struct CheckResultRecord {
  std::int64_t run_id = 0;   ///< filled when read back
  std::string check;
  CheckStatus status = CheckStatus::pass;
  std::string severity;      ///< "warn" or "error", as configured
  std::int64_t violations = 0;      ///< rows the check returned
  std::int64_t new_violations = 0;  ///< fingerprints not failing in the previous run
  std::int64_t resolved = 0;        ///< fingerprints of the previous run no longer failing
  bool fingerprints_complete = true;  ///< false when more rows failed than were fingerprinted
  Micros started_at = 0;
  Micros duration = 0;
  std::string error;         ///< why the check could not run (status error)
  std::vector<CheckViolation> failing;  ///< written by record_check_run; read back by last_check_result
};

/// One run of `jobtrail check`.
struct CheckRunRecord {
  Micros started_at = 0;
  Micros finished_at = 0;
  std::string config;  ///< the config file it ran
  std::vector<CheckResultRecord> results;
};

/// How to open a store.
struct OpenOptions {
  bool read_only = false;    ///< queries only; never creates or migrates
  bool create = true;        ///< create the store if it does not exist (ignored when read_only)
  int busy_timeout_ms = 10000;
  /// PostgreSQL: a server that cannot be reached yet is no error here; every call tries to
  /// connect (and to create the store) until one succeeds, and fails transiently until then.
  /// The tracker opens its store this way, so a worker starts while the database is down.
  bool wait_for_server = false;
};

/// The history of jobs: its writer face (history_writer.h) and everything readers ask.
/// Implementations: SQLite (embedded default) and PostgreSQL (a fleet).
/// Not thread-safe: one Store per thread (the tracker's writer owns its own).
class Store : public HistoryWriter {
 public:
  /// append_checked(CheckedEvents(events)): the edge for a caller with plain events, where
  /// they are validated and stamped. Throws StoreError; on a throw nothing is stored.
  virtual AppendResult append(const std::vector<Event>& events) = 0;
  /// A store that implements only append (a test's fake) checks the events again there.
  AppendResult append_checked(const CheckedEvents& events) override { return append(events.events()); }

  virtual std::optional<JobRecord> find_job(const std::string& job_id) = 0;
  /// The job's events in lifecycle order (attempt, then phase, then time).
  virtual std::vector<EventRecord> events_of(const std::string& job_id) = 0;
  /// Every job of one correlation ID, oldest first.
  virtual std::vector<JobRecord> jobs_in_trace(const std::string& correlation_id) = 0;
  /// Jobs matching `filter`, newest first, from `filter.after` on. An index range per state.
  virtual std::vector<JobRecord> list_jobs(const JobFilter& filter) = 0;
  /// How many jobs match `filter` (its `after` included, its `limit` ignored), counting at most
  /// `at_most`: a walk of at most that many index entries per state, never the whole table.
  virtual std::int64_t count_jobs(const JobFilter& filter, std::int64_t at_most) = 0;
  /// Where `ls --follow` has read the store's writes up to (changed_jobs): the first position.
  virtual ChangePosition last_change() = 0;
  /// `ls --follow`: every job written (recorded, or changed by a new event or a flag) after
  /// `after`, in the order written, that matches `filter` after the write (all its terms; its
  /// `after` ignored), at most `filter.limit`; and where the next call starts. A job written
  /// several times in between comes once, as it is now. A range of the index of writes
  /// (job_by_change): it costs the writes since `after`, however big the store.
  /// A store whose schema predates that index (read-only, not migrated) throws StoreError.
  virtual ChangedJobs changed_jobs(const JobFilter& filter, const ChangePosition& after) = 0;
  /// IDs of jobs whose ID starts with `prefix`, in byte order, at most `limit`: one index range.
  virtual std::vector<std::string> job_ids_with_prefix(const std::string& prefix, std::size_t limit) = 0;
  /// Up to `limit` recorded IDs on each side of `job_id` in byte order (it need not exist):
  /// among them are those sharing the longest start with it, for "did you mean".
  virtual std::vector<std::string> job_ids_near(const std::string& job_id, std::size_t limit) = 0;
  /// Per job class (or queue) statistics over the jobs `filter` selects, ordered by name.
  virtual std::vector<JobStats> stats(const StatsFilter& filter) = 0;
  /// Per job class statistics over jobs first seen at or after `since` (all if empty).
  std::vector<JobStats> stats(std::optional<Micros> since) {
    StatsFilter filter;
    filter.since = since;
    return stats(filter);
  }
  /// Jobs per class and state, first seen in each slice [bounds[i], bounds[i + 1]); the bounds
  /// ascend and each is a multiple of tally_bucket_length (else std::invalid_argument).
  /// Only slices and states with jobs are listed, by class, slice and state.
  virtual std::vector<JobTally> tally(const std::vector<Micros>& bounds) = 0;
  /// The business entities the jobs `filter` selects are tagged with, from the entity index:
  /// of every matching job, or of the newest filter.max_jobs; the matching jobs are counted
  /// all the same, from the kept counts (tally) and the window's two partial buckets.
  virtual ImpactReport impact(const ImpactFilter& filter) = 0;
  /// Flagged anomalies, newest first, at most `limit`. Of one job if `job_id` is not empty:
  /// those flagged on it, and those flagged on another job that names it as the other job
  /// (a later success under its idempotency key), whose `job_id` is then that other job.
  virtual std::vector<AnomalyRecord> anomalies(const std::string& job_id, std::size_t limit) = 0;
  /// Deletes jobs (with their events and tags) whose last event is older than `cutoff`
  /// and which are no longer running or waiting, and check results of runs started before
  /// `cutoff`, except each check's newest result and its newest pass (what the next run
  /// compares with, and when the check last passed).
  virtual PruneResult prune(Micros cutoff) = 0;
  /// What `prune(cutoff)` would delete now, deleting nothing (the same rule, counted).
  virtual PruneResult prunable(Micros cutoff) = 0;
  /// Gives the space of deleted rows back to the file system where the database can do so
  /// without blocking writers for long, and measures the store before and after.
  virtual SpaceReport reclaim_space() = 0;

  /// Registers or updates the expected schedule of `schedule.job` (updated_at: now if 0).
  virtual void register_schedule(const Schedule& schedule) = 0;
  /// Every registered schedule with the time of the class's newest job, by job class.
  virtual std::vector<Schedule> schedules() = 0;

  /// Waiting and running jobs per (job class, queue), only pairs that have some.
  virtual std::vector<ActiveJobs> active_jobs() = 0;

  /// Built-in checks over the job history. Each is answered from an index, never a full scan
  /// of the jobs. `now`: the time the check runs at; `limit`: how many jobs to return in full.
  /// Started jobs with neither a terminal event nor a heartbeat within their deadline.
  virtual JobFindings stuck_jobs(const JobDeadlines& deadlines, Micros now, std::size_t limit) = 0;
  /// Enqueued jobs that have not started within their deadline.
  virtual JobFindings lost_jobs(const JobDeadlines& deadlines, Micros now, std::size_t limit) = 0;
  /// Jobs first seen at or after `since` that succeeded twice or succeeded under an
  /// idempotency key another job already succeeded under (reason: the AnomalyKind name).
  virtual JobFindings duplicate_executions(Micros since, std::size_t limit) = 0;
  /// Dead jobs whose last event is at or after `since`.
  virtual JobFindings dead_jobs(Micros since, std::size_t limit) = 0;

  /// The check history: stores one run with every check's result and failing fingerprints.
  /// Returns the run's id. Throws StoreError (read_only on a read-only store).
  virtual std::int64_t record_check_run(const CheckRunRecord& run) = 0;
  /// The newest stored result of `check` with its failing fingerprints and samples: its
  /// newest check_history entry, with check_violations of its run.
  std::optional<CheckResultRecord> last_check_result(const std::string& check);
  /// The failing fingerprints and samples one run kept for `check`.
  virtual std::vector<CheckViolation> check_violations(const std::string& check, std::int64_t run) = 0;
  /// Past results of `check`, newest first, without their fingerprints.
  virtual std::vector<CheckResultRecord> check_history(const std::string& check, std::size_t limit) = 0;
  /// Every check with a stored result, by name (the console's list of checks).
  virtual std::vector<std::string> check_names() = 0;
  /// When `check` last passed, if ever.
  virtual std::optional<Micros> last_check_success(const std::string& check) = 0;

  /// The schema version of the open store.
  virtual int schema_version() = 0;
  /// "sqlite:/path/to/file.db", or the PostgreSQL URL with its password replaced by "***"
  virtual std::string location() const = 0;
};

/// The page of `filter` (its `after` and `limit`), with the cursor of the next page and a
/// bounded count. One store call more than list_jobs only when the page is partial.
/// Shared by `jobtrail ls`, GET /v1/jobs and the console, so all three page alike.
JobPage list_page(Store& store, const JobFilter& filter, std::int64_t count_limit = page_count_limit);

/// `url` as it may be printed: a password in a PostgreSQL URL is replaced by "***".
std::string printable_url(const std::string& url);
/// `text` as it may be printed when it may quote `url` (libpq quotes a URL it cannot parse,
/// password and all): the URL as printable_url() shows it, and its password nowhere.
std::string without_secrets(std::string_view text, const std::string& url);

/// The newest schema version this build understands.
int latest_schema_version() noexcept;

/// Opens the store named by `url`: "sqlite:PATH", a bare PATH, or a libpq URL
/// ("postgresql://user@host/db", "postgres://..."; the store lives in the schema "jobtrail").
/// A SQLite URL may end in "?sync=full": every commit is then fsynced and survives a power
/// loss, not only a crash of the process (the default, "?sync=normal"). Throws StoreError.
std::unique_ptr<Store> open_store(const std::string& url, const OpenOptions& options = {});

}  // namespace jobtrail
