#pragma once
// The embedded store: one SQLite file in WAL mode, shared safely by several processes.

#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "batch_planner.h"
#include "jobtrail/store.h"
#include "jobtrail/drivers/sqlite_db.h"
#include "store_rules.h"

namespace jobtrail {

/// The SQLite implementation of Store. Not thread-safe: one per thread.
class SqliteStore final : public Store {
 public:
  /// `sync_full`: fsync at every commit, so a committed event survives a power loss.
  SqliteStore(const std::string& path, const OpenOptions& options, bool sync_full = false);
  ~SqliteStore() override;

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
  std::string location() const override;

 private:
  struct Statements;
  class History;  ///< the store's answers to the batch planner

  void forget_cache() noexcept;
  void sync_cache_with_database();
  detail::JobRow& job_row(const std::string& job_id);
  /// A table of unique strings (names, entities, correlation IDs) with its writer-side cache.
  struct Dictionary {
    sqlite::Statement find, insert;
    std::unordered_map<std::string, std::int64_t> ids;
    bool compact_ids = false;  ///< the strings are IDs, stored compactly when hex
  };
  /// The id of `text` in `dictionary`, added if new; 0 for an empty text.
  std::int64_t intern(Dictionary& dictionary, const std::string& text);
  /// Writes what `plan` says, and keeps the cached rows true to what was written.
  void land(detail::BatchPlan& plan);
  /// Deletes check results older than the cutoff but each check's newest and newest pass.
  std::int64_t prune_check_history(Micros stored_cutoff);
  /// `noticeable`: the row takes the append's change number (JobPlan::noticeable).
  void write_row(const detail::JobRow& row, bool noticeable);
  /// Lands tally changes (BatchPlan::tally's shape) in job_tally; a count that reaches 0 goes.
  void change_tally(const std::vector<detail::TallyChange>& changes);
  /// The jobs `statement` steps to, with their entity tags (every list shows them). `extra`,
  /// when given, gets each row's column after the job's (22).
  std::vector<JobRecord> read_jobs(sqlite::Statement& statement, std::vector<std::int64_t>* extra = nullptr);
  /// " FROM job j [JOIN job_entity ...] WHERE ..." for `filter` and one of its states (or
  /// any state), with the page position when `with_after`; binds with bind_filter.
  static std::string filter_sql(const JobFilter& filter, std::optional<State> state, bool with_after);
  void bind_filter(sqlite::Statement& statement, const JobFilter& filter) const;
  /// The findings of a built-in check, its jobs read in full by row id (checks select ids first).
  JobFindings read_findings(detail::FindingsBuilder& found);
  /// Steps `candidates` (columns: row id, job class, time of interest relative to the epoch,
  /// in that order) and keeps the jobs whose time is before `now` minus their class's deadline.
  JobFindings jobs_past_deadline(sqlite::Statement& candidates, const JobDeadlines& deadlines, Micros now,
                                 std::size_t limit);

  std::string path_;
  OpenOptions options_;
  std::unique_ptr<sqlite::Connection> db_;
  std::unique_ptr<Statements> statements_;  ///< only on a writable store
  std::int64_t change_ = 0;  ///< the number of the append being landed (meta.change_seq)
  Micros epoch_ = 0;

  // Write-side caches. They are only trusted while no other connection has written
  // (PRAGMA data_version unchanged); otherwise they are dropped at the next append.
  std::int64_t data_version_ = -1;
  std::int64_t next_job_id_ = 0;
  std::unordered_map<std::string, detail::JobRow> jobs_;
  Dictionary labels_, entities_, correlations_;
};

}  // namespace jobtrail
