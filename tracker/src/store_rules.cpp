#include "store_rules.h"

#include <algorithm>
#include <stdexcept>
#include <tuple>

#include "batch_planner.h"

namespace jobtrail::detail {

void check_tally_bounds(const std::vector<Micros>& bounds) {
  if (bounds.size() < 2) throw std::invalid_argument("a tally needs at least one slice (two bounds)");
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (bounds[i] % tally_bucket_length != 0) {
      throw std::invalid_argument("a tally's bounds must be whole buckets of " + std::to_string(tally_bucket_length) + " µs");
    }
    if (i > 0 && bounds[i] <= bounds[i - 1]) throw std::invalid_argument("a tally's bounds must ascend");
  }
}

void TallyBuilder::add(std::string job, std::size_t slice, State state, std::int64_t jobs) {
  if (jobs != 0) rows_.push_back({std::move(job), slice, state, jobs});
}

std::vector<JobTally> TallyBuilder::finish() {
  auto key = [](const JobTally& t) { return std::tie(t.job, t.slice, t.state); };
  std::sort(rows_.begin(), rows_.end(), [&](const JobTally& a, const JobTally& b) { return key(a) < key(b); });
  std::vector<JobTally> summed;
  for (auto& row : rows_) {
    if (!summed.empty() && key(summed.back()) == key(row)) {
      summed.back().jobs += row.jobs;
    } else {
      summed.push_back(std::move(row));
    }
  }
  std::erase_if(summed, [](const JobTally& t) { return t.jobs == 0; });
  rows_.clear();
  return summed;
}

void check_schedule(const Schedule& schedule) {
  if (schedule.job.empty() || schedule.job.size() > EventLimits::max_name_length) {
    throw StoreError(StoreError::Kind::invalid_event, "a schedule needs a job class of 1 to 200 bytes");
  }
  if (schedule.every <= 0 || schedule.grace < 0) {
    throw StoreError(StoreError::Kind::invalid_event, "a schedule needs a positive interval and a grace of 0 or more");
  }
}

void ActiveJobsBuilder::add(std::string job, std::string queue, State state, std::int64_t count, Micros oldest,
                            std::optional<Micros> silent) {
  if (result_.empty() || result_.back().job != job || result_.back().queue != queue) {
    ActiveJobs fresh;
    fresh.job = std::move(job);
    fresh.queue = std::move(queue);
    result_.push_back(std::move(fresh));
  }
  ActiveJobs& active = result_.back();
  if (state == State::enqueued) {
    active.waiting = count;
    active.oldest_waiting_since = oldest;
  } else {
    active.running = count;
    active.oldest_running_since = oldest;
    active.longest_silent_since = silent;
  }
}

void FindingsBuilder::add_if_past(std::int64_t id, const std::string& job_class, Micros at,
                                  const JobDeadlines& deadlines, Micros now) {
  if (at < now - deadlines.for_class(job_class)) add(id);
}

void FindingsBuilder::add(std::int64_t id) {
  total_ += 1;
  if (ids_.size() < limit_) {
    ids_.push_back(id);
    reasons_.emplace_back();
  }
}

void FindingsBuilder::add_anomalies(std::int64_t id, std::uint32_t bits) {
  for (auto kind : {AnomalyKind::duplicate_success, AnomalyKind::duplicate_idempotency_key}) {
    if ((bits & anomaly_bit(kind)) == 0) continue;
    total_ += 1;
    if (ids_.size() < limit_) {
      ids_.push_back(id);
      reasons_.emplace_back(to_string(kind));
    }
  }
}

JobFindings FindingsBuilder::finish(const std::function<std::optional<JobRecord>(std::int64_t id)>& read) {
  JobFindings findings;
  findings.total = total_;
  for (std::size_t i = 0; i < ids_.size(); ++i) {
    auto record = read(ids_[i]);
    if (!record) continue;  // pruned meanwhile
    findings.jobs.push_back(std::move(*record));
    findings.reasons.push_back(std::move(reasons_[i]));
  }
  return findings;
}

StoreError older_schema(const std::string& location, int version, int needed, std::string_view what) {
  return StoreError(StoreError::Kind::other,
                    location + " has schema version " + std::to_string(version) + ", which does not keep " +
                        std::string(what) + " (version " + std::to_string(needed) +
                        "); any command that records (emit, exec, serve, prune) upgrades it");
}

StoreError no_change_order(const std::string& location, int version) {
  return older_schema(location, version, 4, "the order of writes that --follow reads");
}

std::vector<std::optional<State>> states_to_scan(const JobFilter& filter) {
  std::vector<std::optional<State>> states;
  for (const State state : filter.states) {
    if (std::find(states.begin(), states.end(), std::optional<State>(state)) == states.end()) states.push_back(state);
  }
  if (states.empty()) states.push_back(std::nullopt);
  return states;
}

std::string check_violation_columns(int schema_version) {
  return std::string("SELECT fingerprint, first_seen_at, sample, ") + (schema_version >= 5 ? "entity" : "NULL") +
         " FROM check_violation ";
}

std::vector<std::string> job_filter_conditions(const JobFilter& filter, const FilterPlaceholders& at,
                                               std::optional<State> state, bool with_after) {
  std::vector<std::string> conditions;
  if (state) {
    conditions.push_back("j.state = " + std::to_string(static_cast<int>(*state)));
    // Both stores use the partial index job_by_state (WHERE state <> 4) only when the query
    // implies that term; SQLite sees that only when the term is there as it is.
    if (*state != State::succeeded) conditions.push_back("j.state <> 4");
  }
  if (!filter.job.empty()) conditions.push_back("j.job = (SELECT id FROM label WHERE text = " + at.job + ")");
  if (!filter.queue.empty()) conditions.push_back("j.queue = (SELECT id FROM label WHERE text = " + at.queue + ")");
  if (filter.since) conditions.push_back("j.first_at >= " + at.since);
  if (filter.until) conditions.push_back("j.first_at < " + at.until);
  if (filter.anomalies_only) conditions.push_back("j.anomalies <> 0");
  if (with_after && filter.after) {
    // Written so that the first term alone bounds the index range (first_at, then the row id).
    conditions.push_back("j.first_at <= " + at.after_first + " AND (j.first_at < " + at.after_first + " OR j.id < " +
                         at.after_row + ")");
  }
  return conditions;
}

std::string state_numbers(const std::vector<State>& states) {
  std::string list;
  for (const State state : states) list += (list.empty() ? "" : ", ") + std::to_string(static_cast<int>(state));
  return list;
}

}  // namespace jobtrail::detail
