#include "tracker_metrics.h"

namespace jobtrail {

namespace {

using prometheus::Histogram;

// Job run and wait times span milliseconds (an email) to hours (a month close).
const Histogram::BucketBoundaries job_duration_buckets = {
    0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200};
// A batch commit: WAL append plus fsync, up to a busy store.
const Histogram::BucketBoundaries flush_buckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
const Histogram::BucketBoundaries batch_size_buckets = {1,   2,    5,    10,   20,    50,   100,
                                                        200, 500, 1000, 2000, 5000, 10000};

constexpr const char* other_label = "other";

// Outcome index of a state that ends an attempt, or -1.
int outcome_index(State state) noexcept {
  switch (state) {
    case State::succeeded: return 0;
    case State::failed: return 1;
    case State::dead: return 2;
    case State::cancelled: return 3;
    default: return -1;
  }
}

double seconds_from_micros(Micros micros) noexcept { return static_cast<double>(micros) / 1e6; }

void add_growth(prometheus::Counter& counter, std::uint64_t now, std::uint64_t& before) noexcept {
  // Two threads may fold at once (a shutdown started from the error handler): only growth
  // past what was already counted is added.
  if (now > before) {
    counter.Increment(static_cast<double>(now - before));
    before = now;
  }
}

}  // namespace

TrackerMetrics::TrackerMetrics(prometheus::Registry& registry, std::size_t queue_capacity)
    : events_family_(prometheus::BuildCounter()
                         .Name("jobtrail_tracker_events_total")
                         .Help("Events accepted by the tracker, by lifecycle state")
                         .Register(registry)),
      dropped_family_(prometheus::BuildCounter()
                          .Name("jobtrail_tracker_events_dropped_total")
                          .Help("Events the tracker dropped, by reason")
                          .Register(registry)),
      run_family_(prometheus::BuildHistogram()
                      .Name("jobtrail_job_run_duration_seconds")
                      .Help("Time from an attempt's start to its end")
                      .Register(registry)),
      wait_family_(prometheus::BuildHistogram()
                       .Name("jobtrail_job_wait_duration_seconds")
                       .Help("Time from enqueue to the start of the attempt")
                       .Register(registry)),
      finished_family_(prometheus::BuildCounter()
                           .Name("jobtrail_jobs_finished_total")
                           .Help("Attempts that ended, by outcome")
                           .Register(registry)),
      dropped_invalid_(dropped_family_.Add({{"reason", "invalid"}})),
      dropped_queue_full_(dropped_family_.Add({{"reason", "queue_full"}})),
      dropped_shut_down_(dropped_family_.Add({{"reason", "shut_down"}})),
      dropped_store_error_(dropped_family_.Add({{"reason", "store_error"}})),
      store_errors_(prometheus::BuildCounter()
                        .Name("jobtrail_tracker_store_errors_total")
                        .Help("Failed store commits, including ones retried later")
                        .Register(registry)
                        .Add({})),
      duplicates_(prometheus::BuildCounter()
                      .Name("jobtrail_tracker_duplicate_events_total")
                      .Help("Events that repeated one already stored (a redelivery), skipped")
                      .Register(registry)
                      .Add({})),
      anomalies_(prometheus::BuildCounter()
                     .Name("jobtrail_tracker_anomalies_total")
                     .Help("Impossible sequences flagged: a job succeeding twice, two jobs succeeding under one "
                           "idempotency key")
                     .Register(registry)
                     .Add({})),
      queue_depth_(prometheus::BuildGauge()
                       .Name("jobtrail_tracker_queue_depth")
                       .Help("Events accepted and not yet committed")
                       .Register(registry)
                       .Add({})),
      flush_duration_(prometheus::BuildHistogram()
                          .Name("jobtrail_tracker_flush_duration_seconds")
                          .Help("Duration of one batch commit to the store")
                          .Register(registry)
                          .Add({}, flush_buckets)),
      batch_size_(prometheus::BuildHistogram()
                      .Name("jobtrail_tracker_batch_size")
                      .Help("Events per batch commit")
                      .Register(registry)
                      .Add({}, batch_size_buckets)) {
  prometheus::BuildGauge()
      .Name("jobtrail_tracker_queue_capacity")
      .Help("Most events the tracker holds awaiting commit")
      .Register(registry)
      .Add({})
      .Set(static_cast<double>(queue_capacity));
  // Every state up front, so that a rate() over a state that has not happened yet is 0, not absent.
  for (State state : all_states()) {
    events_by_state_[static_cast<std::size_t>(state)] =
        &events_family_.Add({{"state", std::string(to_string(state))}});
  }
}

void TrackerMetrics::fold_counters(const TrackerCounters& counters, const StateCounts& accepted) noexcept {
  std::lock_guard lock(fold_mutex_);
  for (std::size_t i = 0; i < accepted.size(); ++i) {
    if (events_by_state_[i] != nullptr) add_growth(*events_by_state_[i], accepted[i], folded_accepted_[i]);
  }
  add_growth(dropped_invalid_, counters.dropped_invalid, folded_counters_.dropped_invalid);
  add_growth(dropped_queue_full_, counters.dropped_queue_full, folded_counters_.dropped_queue_full);
  add_growth(dropped_shut_down_, counters.dropped_shut_down, folded_counters_.dropped_shut_down);
  add_growth(dropped_store_error_, counters.dropped_store_error, folded_counters_.dropped_store_error);
  add_growth(store_errors_, counters.store_errors, folded_counters_.store_errors);
  add_growth(duplicates_, counters.duplicates, folded_counters_.duplicates);
  add_growth(anomalies_, counters.anomalies, folded_counters_.anomalies);
}

void TrackerMetrics::set_queue_depth(std::size_t depth) noexcept { queue_depth_.Set(static_cast<double>(depth)); }

void TrackerMetrics::observe_commit(std::chrono::steady_clock::duration took, std::size_t batch_size) noexcept {
  flush_duration_.Observe(std::chrono::duration<double>(took).count());
  batch_size_.Observe(static_cast<double>(batch_size));
}

TrackerMetrics::PairSeries& TrackerMetrics::series_for(const std::string& job_class, const std::string& queue) {
  std::string key;
  key.reserve(job_class.size() + queue.size() + 1);
  key.append(job_class).push_back('\0');
  key.append(queue);
  if (auto found = per_pair_.find(key); found != per_pair_.end()) return found->second;
  if (per_pair_.size() >= max_label_pairs) {
    // Over the bound: everything new shares one pair ("other" cannot collide with a real
    // key, which always contains the separator).
    return per_pair_.try_emplace(other_label, PairSeries{other_label, other_label}).first->second;
  }
  // An empty label value would make the label vanish from the series: say so instead.
  return per_pair_
      .try_emplace(std::move(key), PairSeries{job_class.empty() ? "unknown" : job_class,
                                              queue.empty() ? "unknown" : queue})
      .first->second;
}

void TrackerMetrics::observe_transitions(const std::vector<Transition>& transitions) noexcept {
  try {
    for (const Transition& transition : transitions) {
      const int outcome = outcome_index(transition.state);
      if (!transition.wait && !transition.run && outcome < 0) continue;
      PairSeries& series = series_for(transition.job, transition.queue);
      if (transition.wait) {
        if (series.wait == nullptr) {
          series.wait = &wait_family_.Add({{"job_class", series.job_class}, {"queue", series.queue}},
                                          job_duration_buckets);
        }
        series.wait->Observe(seconds_from_micros(*transition.wait));
      }
      if (outcome < 0) continue;
      const auto slot = static_cast<std::size_t>(outcome);
      const auto outcome_label = [&] { return std::string(to_string(transition.state)); };
      if (transition.run) {
        if (series.run[slot] == nullptr) {
          series.run[slot] = &run_family_.Add(
              {{"job_class", series.job_class}, {"queue", series.queue}, {"outcome", outcome_label()}},
              job_duration_buckets);
        }
        series.run[slot]->Observe(seconds_from_micros(*transition.run));
      }
      if (series.finished[slot] == nullptr) {
        series.finished[slot] = &finished_family_.Add(
            {{"job_class", series.job_class}, {"queue", series.queue}, {"outcome", outcome_label()}});
      }
      series.finished[slot]->Increment();
    }
  } catch (...) {
    // Out of memory while adding a series: metrics are best effort, the events are stored.
  }
}

}  // namespace jobtrail
