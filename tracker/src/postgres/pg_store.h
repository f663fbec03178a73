#pragma once
// The fleet store: one PostgreSQL database shared by the workers of many hosts.

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "batch_planner.h"
#include "jobtrail/store.h"
#include "jobtrail/drivers/pg_connection.h"

namespace jobtrail {

/// The PostgreSQL implementation of Store. Not thread-safe: one per thread. Many of them, in
/// many processes on many hosts, may write one store at once: each append locks the rows of the
/// jobs it touches, so a job enqueued on one host and run on another folds correctly.
/// A lost connection is a transient StoreError; the next call connects again.
class PostgresStore final : public Store {
 public:
  /// How an append sends its events: COPY, or one INSERT of unnest()ed array parameters.
  /// tracker_bench measures both; open_store uses the faster (see BENCHMARKS.md).
  enum class EventInsert { copy, unnest };

  PostgresStore(const std::string& url, const OpenOptions& options, EventInsert method = EventInsert::copy);
  ~PostgresStore() override;

  AppendResult append(const std::vector<Event>& events) override;
  AppendResult append_checked(const CheckedEvents& events) override;
  std::optional<JobRecord> find_job(const std::string& job_id) override;
  std::vector<EventRecord> events_of(const std::string& job_id) override;
  std::vector<JobRecord> jobs_in_trace(const std::string& correlation_id) override;
  std::vector<JobRecord> list_jobs(const JobFilter& filter) override;
  std::int64_t count_jobs(const JobFilter& filter, std::int64_t at_most) override;
  ChangePosition last_change() override;
  ChangedJobs changed_jobs(const JobFilter& filter, const ChangePosition& after) override;
  std::vector<std::string> job_ids_with_prefix(const std::string& prefix, std::size_t limit) override;
  std::vector<std::string> job_ids_near(const std::string& job_id, std::size_t limit) override;
  std::vector<JobStats> stats(const StatsFilter& filter) override;
  ImpactReport impact(const ImpactFilter& filter) override;
  std::vector<AnomalyRecord> anomalies(const std::string& job_id, std::size_t limit) override;
  PruneResult prune(Micros cutoff) override;
  PruneResult prunable(Micros cutoff) override;
  SpaceReport reclaim_space() override;
  void register_schedule(const Schedule& schedule) override;
  std::vector<Schedule> schedules() override;
  std::vector<ActiveJobs> active_jobs() override;
  std::vector<JobTally> tally(const std::vector<Micros>& bounds) override;
  JobFindings stuck_jobs(const JobDeadlines& deadlines, Micros now, std::size_t limit) override;
  JobFindings lost_jobs(const JobDeadlines& deadlines, Micros now, std::size_t limit) override;
  JobFindings duplicate_executions(Micros since, std::size_t limit) override;
  JobFindings dead_jobs(Micros since, std::size_t limit) override;
  std::int64_t record_check_run(const CheckRunRecord& run) override;
  std::vector<CheckViolation> check_violations(const std::string& check, std::int64_t run) override;
  std::vector<CheckResultRecord> check_history(const std::string& check, std::size_t limit) override;
  std::vector<std::string> check_names() override;
  std::optional<Micros> last_check_success(const std::string& check) override;
  int schema_version() override;
  /// The URL with its password, if any, replaced by "***".
  std::string location() const override;

 private:
  struct Batch;
  class History;  ///< the store's answers to the batch planner

  /// The open connection, connecting again if the last one was lost. Throws StoreError.
  pg::Connection& connection();
  /// Runs `work` and turns a lost connection into a transient error for the caller, after
  /// which the next call reconnects.
  template <typename Work>
  auto guarded(Work&& work) -> decltype(work(std::declval<pg::Connection&>()));
  void require_writable() const;

  AppendResult append_once(pg::Connection& db, const std::vector<Event>& events, bool& conflict);
  /// Adds the labels of `events` that are not known yet (ids stay in the batch until commit).
  void intern_labels(pg::Connection& db, const std::vector<Event>& events, Batch& batch);
  std::int64_t label_id(const Batch& batch, const std::string& text) const;
  /// Locks the rows of the batch's jobs (loading those that exist), gives the others ids.
  void load_rows(pg::Connection& db, const std::vector<Event>& events, Batch& batch);
  /// The idempotency keys of the jobs the batch's successes belong to (stored or sent with it).
  static std::vector<std::string> keys_of_successes(const std::vector<Event>& events, const Batch& batch);
  /// Reads which stored jobs already succeeded under `keys`.
  void load_stored_successes(pg::Connection& db, const std::vector<std::string>& keys, Batch& batch);
  /// Writes the batch; false when another writer created one of its new jobs meanwhile.
  bool write_batch(pg::Connection& db, const detail::BatchPlan& plan);
  void write_events(pg::Connection& db, const detail::BatchPlan& plan);

  /// The jobs of a query of job_columns, with their entity tags (every list shows them).
  std::vector<JobRecord> read_jobs(const pg::Result& rows);
  /// Runs one built-in check's candidate query (pg_check_queries.h) in one snapshot.
  JobFindings run_check_query(std::string_view sql, Micros bound, const JobDeadlines* deadlines, Micros now,
                              std::size_t limit);
  JobFindings findings_of(pg::Connection& db, const pg::Result& candidates, const JobDeadlines* deadlines,
                          Micros now, std::size_t limit);

  std::string url_;
  std::string where_;  ///< the redacted URL, for messages
  OpenOptions options_;
  EventInsert method_;
  std::unique_ptr<pg::Connection> db_;
  bool prepared_ = false;  ///< the store's schema was checked (and migrated) once
  bool lock_keyed_successes_ = false;  ///< jobs here have idempotency keys: always take the lock
  /// Label ids: labels are never deleted, so ids stay true across transactions and writers.
  std::unordered_map<std::string, std::int64_t> labels_;
};

}  // namespace jobtrail
