#pragma once
// A Store that keeps appended events in memory and fails on command, for testing how the
// tracker copes with a store that is busy, refuses events or is slow.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "jobtrail/store.h"

namespace jobtrail::testing {

/// What the test sets up and inspects; shared with the FakeStore the tracker's writer owns.
/// Thread-safe: every member is guarded by `mutex`.
struct FakeStoreState {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<Event> events;                 ///< everything committed, in commit order
  std::vector<std::size_t> batch_sizes;      ///< one entry per successful append
  int transient_failures_left = 0;           ///< the next appends that throw a busy StoreError
  std::string poison_job_id;                 ///< a batch holding this job is refused
  bool poison_throws_runtime_error = false;  ///< refuse with std::runtime_error, not StoreError
  bool blocked = false;                      ///< append waits while true

  void block() {
    std::lock_guard lock(mutex);
    blocked = true;
  }
  void unblock() {
    {
      std::lock_guard lock(mutex);
      blocked = false;
    }
    changed.notify_all();
  }
  std::vector<Event> committed() {
    std::lock_guard lock(mutex);
    return events;
  }
  std::vector<Event> committed_of(const std::string& job_id) {
    std::lock_guard lock(mutex);
    std::vector<Event> of_job;
    for (const Event& event : events) {
      if (event.job_id == job_id) of_job.push_back(event);
    }
    return of_job;
  }
};

/// Not thread-safe, like every Store; the state it shares is.
class FakeStore : public Store {
 public:
  explicit FakeStore(std::shared_ptr<FakeStoreState> state) : state_(std::move(state)) {}

  AppendResult append(const std::vector<Event>& events) override {
    std::unique_lock lock(state_->mutex);
    state_->changed.wait(lock, [&] { return !state_->blocked; });
    if (state_->transient_failures_left > 0) {
      --state_->transient_failures_left;
      throw StoreError(StoreError::Kind::busy, "database is locked (fake)");
    }
    for (const Event& event : events) {
      if (!state_->poison_job_id.empty() && event.job_id == state_->poison_job_id) {
        if (state_->poison_throws_runtime_error) throw std::runtime_error("fake store cannot take " + event.job_id);
        throw StoreError(StoreError::Kind::invalid_event, "fake store refuses " + event.job_id);
      }
    }
    state_->events.insert(state_->events.end(), events.begin(), events.end());
    state_->batch_sizes.push_back(events.size());
    AppendResult result;
    result.stored = events.size();
    return result;
  }

  std::optional<JobRecord> find_job(const std::string&) override { return std::nullopt; }
  std::vector<EventRecord> events_of(const std::string&) override { return {}; }
  std::vector<JobRecord> jobs_in_trace(const std::string&) override { return {}; }
  std::vector<JobRecord> list_jobs(const JobFilter&) override { return {}; }
  std::int64_t count_jobs(const JobFilter&, std::int64_t) override { return 0; }
  ChangePosition last_change() override { return {}; }
  ChangedJobs changed_jobs(const JobFilter&, const ChangePosition& after) override { return {{}, after}; }
  std::vector<std::string> job_ids_with_prefix(const std::string&, std::size_t) override { return {}; }
  std::vector<std::string> job_ids_near(const std::string&, std::size_t) override { return {}; }
  std::vector<JobStats> stats(const StatsFilter&) override { return {}; }
  ImpactReport impact(const ImpactFilter&) override { return {}; }
  std::vector<AnomalyRecord> anomalies(const std::string&, std::size_t) override { return {}; }
  PruneResult prune(Micros) override { return {}; }
  PruneResult prunable(Micros) override { return {}; }
  SpaceReport reclaim_space() override { return {}; }
  void register_schedule(const Schedule&) override {}
  std::vector<Schedule> schedules() override { return {}; }
  std::vector<ActiveJobs> active_jobs() override { return {}; }
  std::vector<JobTally> tally(const std::vector<Micros>&) override { return {}; }
  JobFindings stuck_jobs(const JobDeadlines&, Micros, std::size_t) override { return {}; }
  JobFindings lost_jobs(const JobDeadlines&, Micros, std::size_t) override { return {}; }
  JobFindings duplicate_executions(Micros, std::size_t) override { return {}; }
  JobFindings dead_jobs(Micros, std::size_t) override { return {}; }
  std::int64_t record_check_run(const CheckRunRecord&) override { return 0; }
  std::vector<CheckViolation> check_violations(const std::string&, std::int64_t) override { return {}; }
  std::vector<CheckResultRecord> check_history(const std::string&, std::size_t) override { return {}; }
  std::vector<std::string> check_names() override { return {}; }
  std::optional<Micros> last_check_success(const std::string&) override { return std::nullopt; }
  int schema_version() override { return latest_schema_version(); }
  std::string location() const override { return "fake:"; }

 private:
  std::shared_ptr<FakeStoreState> state_;
};

/// Collects what a tracker's error handler is given. Thread-safe.
class CapturedMessages {
 public:
  std::function<void(std::string_view)> handler() {
    return [this](std::string_view message) {
      std::lock_guard lock(mutex_);
      messages_.emplace_back(message);
    };
  }
  std::vector<std::string> all() const {
    std::lock_guard lock(mutex_);
    return messages_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> messages_;
};

}  // namespace jobtrail::testing
