#pragma once
/// \file
/// The tracker's Prometheus metrics. Kept out of the hot path: record() bumps plain atomics,
/// the writer folds them in here once per batch.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "jobtrail/event.h"
#include "jobtrail/history_writer.h"
#include "jobtrail/tracker.h"


namespace jobtrail {

/// Accepted events per State, indexed by the State's numeric value.
using StateCounts = std::array<std::uint64_t, 8>;

/// The metrics of one tracker, registered in a caller's registry.
/// Thread-safety: fold_counters() and set_queue_depth() may be called from any thread;
/// observe_commit() and observe_transitions() from the writer thread only.
class TrackerMetrics {
 public:
  /// Most distinct (job_class, queue) pairs with series of their own; the rest share "other",
  /// so a caller that puts IDs in job names cannot blow up the scrape.
  static constexpr std::size_t max_label_pairs = 500;

  /// Registers every family. Throws what prometheus-cpp throws (a name clash): setup time.
  TrackerMetrics(prometheus::Registry& registry, std::size_t queue_capacity);

  /// Adds to the counters what `counters` and `accepted` grew by since the last call.
  void fold_counters(const TrackerCounters& counters, const StateCounts& accepted) noexcept;
  void set_queue_depth(std::size_t depth) noexcept;
  /// One successful batch commit.
  void observe_commit(std::chrono::steady_clock::duration took, std::size_t batch_size) noexcept;
  /// Run and wait times and finished jobs from one append's derived transitions.
  void observe_transitions(const std::vector<Transition>& transitions) noexcept;

  /// Distinct (job_class, queue) pairs seen so far (at most max_label_pairs + 1 for "other").
  std::size_t label_pairs() const noexcept { return per_pair_.size(); }

 private:
  static constexpr std::size_t outcome_count = 4;  // succeeded, failed, dead, cancelled

  /// Cached series of one (job_class, queue) pair: Family::Add hashes the labels every call.
  struct PairSeries {
    std::string job_class;
    std::string queue;
    prometheus::Histogram* wait = nullptr;
    std::array<prometheus::Histogram*, outcome_count> run{};
    std::array<prometheus::Counter*, outcome_count> finished{};
  };

  PairSeries& series_for(const std::string& job_class, const std::string& queue);

  prometheus::Family<prometheus::Counter>& events_family_;
  prometheus::Family<prometheus::Counter>& dropped_family_;
  prometheus::Family<prometheus::Histogram>& run_family_;
  prometheus::Family<prometheus::Histogram>& wait_family_;
  prometheus::Family<prometheus::Counter>& finished_family_;

  std::array<prometheus::Counter*, 8> events_by_state_{};
  prometheus::Counter& dropped_invalid_;
  prometheus::Counter& dropped_queue_full_;
  prometheus::Counter& dropped_shut_down_;
  prometheus::Counter& dropped_store_error_;
  prometheus::Counter& store_errors_;
  prometheus::Counter& duplicates_;
  prometheus::Counter& anomalies_;
  prometheus::Gauge& queue_depth_;
  prometheus::Histogram& flush_duration_;
  prometheus::Histogram& batch_size_;

  std::mutex fold_mutex_;
  TrackerCounters folded_counters_;
  StateCounts folded_accepted_{};

  std::unordered_map<std::string, PairSeries> per_pair_;
};

}  // namespace jobtrail
