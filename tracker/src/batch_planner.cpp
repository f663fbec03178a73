#include "batch_planner.h"

#include <algorithm>
#include <optional>
#include <tuple>
#include <unordered_map>

namespace jobtrail::detail {

namespace {

/// The planner's working state for one batch.
class Planner {
 public:
  explicit Planner(BatchHistory& history) : history_(history) {}

  BatchPlan run(const std::vector<Event>& events) {
    // First the jobs and how many events and tags each has, so that every job's part of the
    // plan is a range of two arrays sized once.
    std::vector<std::int32_t> slots;
    slots.reserve(events.size());
    std::vector<std::size_t> event_counts, tag_counts;
    {
      // Rows leave marked by nobody, also on a throw: a store keeps them across batches.
      struct Unmark {
        std::vector<JobPlan>& jobs;
        ~Unmark() {
          for (auto& job : jobs) job.row->plan_slot = -1;
        }
      } unmark{plan_.jobs};
      for (const auto& event : events) {
        JobRow& row = history_.row(event.job_id);
        if (row.plan_slot < 0) {
          row.plan_slot = static_cast<std::int32_t>(plan_.jobs.size());
          plan_.jobs.push_back(JobPlan{&row, {}, {}, false});
          counted_before_.push_back(row.stored ? std::optional<TallyChange>(tally_entry(row, -1)) : std::nullopt);
          event_counts.push_back(0);
          tag_counts.push_back(0);
        }
        slots.push_back(row.plan_slot);
        event_counts[static_cast<std::size_t>(row.plan_slot)] += 1;
        tag_counts[static_cast<std::size_t>(row.plan_slot)] += event.entities.size();
      }
    }
    plan_.events.resize(events.size());
    std::size_t tags = 0;
    for (auto count : tag_counts) tags += count;
    plan_.entity_tags.resize(tags);
    for (std::size_t j = 0, event_offset = 0, tag_offset = 0; j < plan_.jobs.size(); ++j) {
      // Empty ranges that start where the job's part starts; apply() grows them.
      plan_.jobs[j].pending = {plan_.events.data() + event_offset, 0};
      plan_.jobs[j].entities = {plan_.entity_tags.data() + tag_offset, 0};
      event_offset += event_counts[j];
      tag_offset += tag_counts[j];
    }
    for (std::size_t i = 0; i < events.size(); ++i) apply(plan_.jobs[static_cast<std::size_t>(slots[i])], events[i]);
    for (auto& job : plan_.jobs) {
      if (job.needs_refold) refold(job);
      std::sort(job.entities.begin(), job.entities.end(),
                [](const std::string* a, const std::string* b) { return *a < *b; });
      const auto last = std::unique(job.entities.begin(), job.entities.end(),
                                    [](const std::string* a, const std::string* b) { return *a == *b; });
      job.entities = job.entities.first(static_cast<std::size_t>(last - job.entities.begin()));
    }
    count_changes();
    return std::move(plan_);
  }

 private:
  /// Whether the job holds an event of `state` at `at` (of `attempt`, if given), pending in
  /// this batch or stored: what a store writing as it goes would find in its own rows.
  bool holds(const JobPlan& job, State state, std::optional<std::int32_t> attempt, Micros at) {
    for (const auto& pending : job.pending) {
      if (pending.state == state && pending.at == at && (!attempt || pending.attempt == *attempt)) return true;
    }
    return job.row->stored && history_.has_event(*job.row, state, attempt, at);
  }

  void flag(JobRow& row, AnomalyKind kind, std::int64_t other, std::string detail, Micros at) {
    plan_.anomalies.push_back({row.id, kind, other, std::move(detail), at});
    row.anomalies |= anomaly_bit(kind);
    plan_.result.anomalies += 1;
  }

  void apply(JobPlan& job, const Event& event) {
    JobRow& row = *job.row;
    auto& result = plan_.result;
    const Micros at = event.at;
    if (may_be_resend(row.life, event.attempt, at) && holds(job, event.state, std::nullopt, at)) {
      result.duplicates += 1;
      return;
    }
    const auto attempt = resolve_attempt(row.life, event.state, event.attempt, at);
    const auto key = lifecycle_key(event.state, attempt, at);
    const bool in_order = row.life.empty || key > row.life.tail;
    if (!in_order) {
      // Equal to the last event in lifecycle order, or to any held one: a redelivery.
      if (key == row.life.tail || holds(job, event.state, attempt, at)) {
        result.duplicates += 1;
        return;
      }
      job.needs_refold = true;
    }

    // Identity fields keep their first value; where the job runs may change with the attempt.
    if (row.job == 0) row.job = history_.label_id(event.job);
    if (row.correlation_id.empty()) row.correlation_id = event.correlation_id;
    if (row.parent_job_id.empty()) row.parent_job_id = event.parent_job_id;
    if (row.idempotency_key.empty()) row.idempotency_key = event.idempotency_key;
    if (!event.queue.empty() && (in_order || row.queue == 0)) row.queue = history_.label_id(event.queue);
    const std::int64_t worker = history_.label_id(event.worker);
    if (worker != 0 && (in_order || row.worker == 0)) row.worker = worker;

    PendingEvent pending;
    pending.seq = row.life.event_count;
    pending.state = event.state;
    pending.attempt = attempt;
    pending.at = at;
    pending.worker = worker;
    if (!event.error.empty()) {
      pending.error = &event.error;
      if (in_order) row.last_error_pending = job.pending.size();
    }
    job.pending = {job.pending.data(), job.pending.size() + 1};
    job.pending.back() = pending;
    result.stored += 1;
    auto* tags = job.entities.data() + job.entities.size();
    for (const auto& entity : event.entities) *tags++ = &entity;
    job.entities = {job.entities.data(), job.entities.size() + event.entities.size()};

    const std::int32_t successes_before = row.life.successes;
    fold_arrival(row.life, event, attempt, in_order, result.transitions);
    if (event.state == State::succeeded) check_success(row, successes_before, at);
  }

  /// A success flags the job when it succeeded before, or when another job succeeded under
  /// its idempotency key (in this batch or stored); the other job is flagged too.
  void check_success(JobRow& row, std::int32_t successes_before, Micros at) {
    if (successes_before >= 1) {
      flag(row, AnomalyKind::duplicate_success, 0, "succeeded " + std::to_string(successes_before + 1) + " times",
           at);
      return;
    }
    if (row.idempotency_key.empty()) return;
    std::int64_t other = 0;
    if (auto it = successes_by_key_.find(row.idempotency_key); it != successes_by_key_.end() && it->second != row.id) {
      other = it->second;
    } else {
      other = history_.success_under_key(row.idempotency_key, row.id);
    }
    if (other != 0) {
      flag(row, AnomalyKind::duplicate_idempotency_key, other, row.idempotency_key, at);
      // The first job is half of the anomaly too: mark it, in this batch or in the store.
      bool in_batch = false;
      for (auto& job : plan_.jobs) {
        if (job.row->id == other) {
          job.row->anomalies |= anomaly_bit(AnomalyKind::duplicate_idempotency_key);
          in_batch = true;
        }
      }
      if (!in_batch) plan_.flag_others.push_back(other);
    }
    successes_by_key_.emplace(row.idempotency_key, row.id);
  }

  /// Folds the job again from all its events, stored and pending, in lifecycle order.
  void refold(JobPlan& job) {
    JobRow& row = *job.row;
    struct Folded {
      LifecycleKey key;
      State state;
      std::int32_t seq;
      std::optional<std::int64_t> stored_error;
      std::optional<std::size_t> pending_error;
    };
    std::vector<Folded> events;
    if (row.stored) {
      for (const auto& stored : history_.stored_events(row)) {
        events.push_back({lifecycle_key(stored.state, stored.attempt, stored.at), stored.state, stored.seq,
                          stored.error, std::nullopt});
      }
    }
    for (std::size_t i = 0; i < job.pending.size(); ++i) {
      const auto& pending = job.pending[i];
      events.push_back({lifecycle_key(pending.state, pending.attempt, pending.at), pending.state, pending.seq,
                        std::nullopt, pending.error ? std::optional<std::size_t>(i) : std::nullopt});
    }
    std::sort(events.begin(), events.end(), [](const Folded& a, const Folded& b) {
      return a.key < b.key || (a.key == b.key && a.seq < b.seq);
    });
    Lifecycle life;
    row.last_error_stored.reset();
    row.last_error_pending.reset();
    for (const auto& event : events) {
      detail::apply(life, event.state, event.key.attempt, event.key.at);
      if (event.stored_error) {
        row.last_error_stored = event.stored_error;
        row.last_error_pending.reset();
      } else if (event.pending_error) {
        row.last_error_pending = event.pending_error;
      }
    }
    row.life = life;
    job.needs_refold = false;
  }

  static TallyChange tally_entry(const JobRow& row, std::int64_t delta) {
    return {row.job, tally_bucket_start(row.life.first_event_at), row.life.state, delta};
  }

  /// The tally's changes: each written row leaves where it was counted (if it was stored) and
  /// is counted where it is now; opposite changes of one key cancel out.
  void count_changes() {
    auto& tally = plan_.tally;
    for (std::size_t j = 0; j < plan_.jobs.size(); ++j) {
      const JobPlan& job = plan_.jobs[j];
      if (job.pending.empty()) continue;  // an anomaly flag alone moves no count
      if (counted_before_[j]) tally.push_back(*counted_before_[j]);
      tally.push_back(tally_entry(*job.row, 1));
    }
    auto by_key = [](const TallyChange& a, const TallyChange& b) {
      return std::tie(a.bucket, a.job, a.state) < std::tie(b.bucket, b.job, b.state);
    };
    std::sort(tally.begin(), tally.end(), by_key);
    std::size_t kept = 0;
    for (std::size_t i = 0; i < tally.size();) {
      TallyChange sum = tally[i];
      for (++i; i < tally.size() && !by_key(sum, tally[i]); ++i) sum.delta += tally[i].delta;
      if (sum.delta != 0) tally[kept++] = sum;
    }
    tally.resize(kept);
  }

  BatchHistory& history_;
  BatchPlan plan_;
  std::vector<std::optional<TallyChange>> counted_before_;  ///< per job of the plan: -1 where it was
  std::unordered_map<std::string, std::int64_t> successes_by_key_;  ///< first success in the batch
};

}  // namespace

BatchPlan plan_batch(const std::vector<Event>& events, BatchHistory& history) {
  return Planner(history).run(events);
}

}  // namespace jobtrail::detail

namespace jobtrail {

CheckedEvents::CheckedEvents(const std::vector<Event>& events) : original_(events) {
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (auto problem = validation_error(events[i]); !problem.empty()) {
      throw StoreError(StoreError::Kind::invalid_event,
                       "event " + std::to_string(i) + " (job \"" + events[i].job_id.substr(0, 60) + "\"): " + problem);
    }
  }
  if (std::any_of(events.begin(), events.end(), [](const Event& e) { return e.at == 0 || has_over_long_text(e); })) {
    stamped_ = events;
    const Micros now = now_micros();
    for (auto& event : *stamped_) {
      if (event.at == 0) event.at = now;
      // Callers of Store::append() that did not go through the tracker get the same cut.
      truncate_free_text(event);
    }
  }
}

}  // namespace jobtrail
