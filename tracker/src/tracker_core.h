#pragma once
// What the tracker's front (record() on callers' threads) and its writer thread share: the
// options, the queue between them, the counters, the reporter and the metrics.

#include <array>
#include <atomic>
#include <memory>
#include <string>

#include "error_reporter.h"
#include "event_queue.h"
#include "jobtrail/tracker.h"
#include "tracker_metrics.h"

namespace jobtrail::detail {

/// Thread-safe: the queue and reporter are, counters are atomics, metrics are set up before
/// any thread uses them.
struct TrackerCore {
  explicit TrackerCore(TrackerOptions tracker_options);

  const TrackerOptions options;
  const std::string worker;  ///< named in events that name none: the option, else "host:pid"
  ErrorReporter reporter;
  std::unique_ptr<TrackerMetrics> metrics;  ///< null when no registry was given
  EventQueue queue;

  std::atomic<std::uint64_t> accepted{0}, stored{0}, duplicates{0}, anomalies{0}, dropped_invalid{0},
      dropped_queue_full{0}, dropped_shut_down{0}, dropped_store_error{0}, store_errors{0};
  std::array<std::atomic<std::uint64_t>, 8> accepted_by_state{};

  TrackerCounters counters() const noexcept;
  /// Folds the counters and the queue depth into the metrics, if any.
  void update_metrics() noexcept;
};

/// "N events", "1 event".
std::string plural(std::size_t count, const char* noun);
/// A job ID from a caller, quoted and cut short for a message.
std::string quoted_job_id(const std::string& job_id);

}  // namespace jobtrail::detail
