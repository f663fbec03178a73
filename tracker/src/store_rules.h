#pragma once
// The rules by which every store shapes its answers, defined once: a store's query only selects
// rows, these turn them into what Store promises (per job class statistics are in job_stats.h).
// No I/O here.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "jobtrail/store.h"

namespace jobtrail::detail {

/// Runs per check whose failing-row fingerprints and samples are kept: older ones are dropped,
/// so a nightly cron does not grow the store forever (the per-run summaries stay).
constexpr int kept_violation_runs = 30;

/// The columns check_history reads, in its order, from the check_result table.
constexpr std::string_view check_result_columns =
    "SELECT run, check_name, status, severity, violations, new_violations, resolved, complete, "
    "started_at, duration_us, error FROM check_result ";

/// The columns check_violations reads, in read_check_violation's order, from check_violation.
/// A store read as it is from before version 5 has no entity column: NULL stands in for it.
std::string check_violation_columns(int schema_version);

/// Throws StoreError invalid_event unless `schedule` can be registered.
void check_schedule(const Schedule& schedule);

/// The error of a read that needs schema version `needed` on a store at an older `version`
/// (a read-only opening never migrates): which data is missing and how to get it.
StoreError older_schema(const std::string& location, int version, int needed, std::string_view what);

/// The error of a follow (Store::last_change) on a store whose schema predates the order of
/// writes (version 4): a read-only opening never migrates, so a command that records must.
StoreError no_change_order(const std::string& location, int version);

/// Throws std::invalid_argument unless `bounds` may be asked of Store::tally: at least two,
/// ascending, each a multiple of tally_bucket_length.
void check_tally_bounds(const std::vector<Micros>& bounds);

/// Folds counted rows into Store::tally's answer: summed per (class, slice, state), ordered.
class TallyBuilder {
 public:
  /// `jobs` of class `job` in `state`, first seen in slice `slice`.
  void add(std::string job, std::size_t slice, State state, std::int64_t jobs);
  std::vector<JobTally> finish();

 private:
  std::vector<JobTally> rows_;
};

/// The states a list walks, each its own index range: the filter's states once each, or one
/// "any state" entry when it names none.
std::vector<std::optional<State>> states_to_scan(const JobFilter& filter);

/// Where a job filter's values stand in one store's SQL: their placeholders ("?3", "$2"),
/// empty where the filter leaves a value out.
struct FilterPlaceholders {
  std::string job, queue, since, until, after_first, after_row;
};

/// The conditions `filter` puts on the job table `j`, for one of its states (or any state),
/// with its page position or not: the same terms on both stores, so that each picks the same
/// index. Its entity is not among them: each store joins its tags in its own way. Caller
/// values appear only as the placeholders; states as numbers of the State enum.
std::vector<std::string> job_filter_conditions(const JobFilter& filter, const FilterPlaceholders& at,
                                               std::optional<State> state, bool with_after);

/// The states as a list of their numbers for SQL's IN ("5, 6"), never caller text.
std::string state_numbers(const std::vector<State>& states);

/// Folds the rows of an active-jobs query, one per (job class, queue, state) and ordered by
/// class and queue, into one ActiveJobs per pair. Not thread-safe.
class ActiveJobsBuilder {
 public:
  /// `state` is enqueued or started; `oldest` the oldest enqueue (or start) time among them;
  /// `silent`, for started jobs, the earliest last sign of life.
  void add(std::string job, std::string queue, State state, std::int64_t count, Micros oldest,
           std::optional<Micros> silent);
  std::vector<ActiveJobs> finish() { return std::move(result_); }

 private:
  std::vector<ActiveJobs> result_;
};

/// Gathers what a built-in check finds from its candidate rows: how many in all, and the row ids
/// (with their reasons) of the first `limit`, which the store then reads in full. Not thread-safe.
class FindingsBuilder {
 public:
  explicit FindingsBuilder(std::size_t limit) : limit_(limit) {}

  /// A candidate of a deadline check: found when `at` is before `now` minus its class's deadline.
  void add_if_past(std::int64_t id, const std::string& job_class, Micros at, const JobDeadlines& deadlines, Micros now);
  /// A job found as it is.
  void add(std::int64_t id);
  /// A job with anomaly flags: one finding per kind (it may have succeeded twice and also under
  /// a key another job used), the kind's name its reason.
  void add_anomalies(std::int64_t id, std::uint32_t bits);

  /// The row ids to read in full, in the order found.
  const std::vector<std::int64_t>& ids() const noexcept { return ids_; }
  /// The findings, reading each id with `read`; a job gone meanwhile (nothing read) is left out.
  JobFindings finish(const std::function<std::optional<JobRecord>(std::int64_t id)>& read);

 private:
  std::size_t limit_;
  std::int64_t total_ = 0;
  std::vector<std::int64_t> ids_;
  std::vector<std::string> reasons_;
};

}  // namespace jobtrail::detail
