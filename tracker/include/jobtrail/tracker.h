#pragma once
/// \file
/// The hot path: a worker records lifecycle events on its own thread in about a microsecond;
/// a writer thread commits them to the store in batches.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "jobtrail/event.h"

namespace prometheus {
class Registry;
}

namespace jobtrail {

class Store;

/// What became of one record call. Never an exception: instrumentation must not break the
/// program it watches.
enum class RecordStatus {
  queued,              ///< accepted; the writer will commit it shortly
  durable,             ///< committed to the store (record_durable only)
  invalid,             ///< rejected: the event fails validation_error() or EventTimeRule
  queue_full,          ///< dropped: the bounded queue was full
  shut_down,           ///< dropped: the tracker no longer accepts events
  timed_out,           ///< accepted, but not committed within durable_timeout
};
std::string_view to_string(RecordStatus status) noexcept;

/// Counters since the tracker started; also exported as Prometheus metrics.
struct TrackerCounters {
  std::uint64_t accepted = 0;
  std::uint64_t stored = 0;
  std::uint64_t duplicates = 0;           ///< redeliveries of stored events, skipped
  std::uint64_t anomalies = 0;            ///< impossible sequences flagged (a job run twice)
  std::uint64_t dropped_invalid = 0;
  std::uint64_t dropped_queue_full = 0;
  std::uint64_t dropped_shut_down = 0;
  std::uint64_t dropped_store_error = 0;  ///< events the store refused for good
  std::uint64_t store_errors = 0;         ///< failed commits (including ones retried later)
};

struct TrackerOptions {
  /// Events held in memory awaiting commit; beyond it record() drops and counts.
  std::size_t queue_capacity = 100000;
  /// Most events committed in one transaction.
  std::size_t max_batch = 5000;
  /// How long the writer lets events gather before a commit (group commit).
  std::chrono::milliseconds flush_interval{20};
  /// How long record_durable() and flush() wait at most.
  std::chrono::milliseconds durable_timeout{5000};
  /// How long the destructor spends committing what was accepted.
  std::chrono::milliseconds shutdown_timeout{10000};
  /// Named in events that do not name a worker; defaults to "hostname:pid".
  std::string worker;
  /// Whether events that name no worker get `worker`. Off for a relay of other processes'
  /// events (`jobtrail serve`): where the relay runs is not where the job ran, and an event
  /// without a worker leaves the job's worker as the last event that named one.
  bool stamp_worker = true;
  /// Where metrics go; none are registered if null.
  std::shared_ptr<prometheus::Registry> registry;
  /// Receives problems (drops, store errors) at most once a second, with a count of the
  /// ones folded into it. Defaults to one line on stderr. Called from any thread; must not throw.
  std::function<void(std::string_view message)> error_handler;
};

/// Records job lifecycle events into a Store without blocking the caller on disk.
/// Thread-safe: any number of threads may record at once.
class Tracker {
 public:
  /// Opens the store at `store_url` (see open_store) in the writer. Throws StoreError
  /// or std::invalid_argument: setup is the one place jobtrail may throw. A PostgreSQL server
  /// that cannot be reached yet is no error: events queue up and the writer keeps trying.
  explicit Tracker(const std::string& store_url, TrackerOptions options = {});
  /// Uses an already open store; the tracker takes it over for its writer thread.
  explicit Tracker(std::unique_ptr<Store> store, TrackerOptions options = {});
  /// Commits everything accepted (up to shutdown_timeout), then stops the writer.
  ~Tracker();
  Tracker(const Tracker&) = delete;
  Tracker& operator=(const Tracker&) = delete;

  /// Queues `event`; stamps `at` and `worker` if missing (see stamp_worker). Over-long free
  /// text is cut (truncate_free_text()); an event that fails validation_error(), or whose
  /// `at` breaks EventTimeRule, is dropped as invalid. Costs about a microsecond.
  RecordStatus record(Event event) noexcept;
  /// Queues an event check_event() passed, without checking it again (`jobtrail serve` checks
  /// each event as it decodes it, to answer its client); stamps `at` and `worker` as above.
  RecordStatus record(CheckedEvent event) noexcept;
  /// Queues `event` and waits until it is committed (a payment, say), up to durable_timeout.
  /// Committed survives a crash of this process; with a "?sync=full" store URL, a power loss too.
  RecordStatus record_durable(Event event) noexcept;
  /// Records an enqueue; fills correlation ID and parent from the current job or request
  /// context (see context.h) when the event leaves them empty.
  RecordStatus enqueue(Event event) noexcept;

  /// Waits until everything accepted so far is committed. False on timeout.
  bool flush(std::chrono::milliseconds timeout) noexcept;
  /// Stops accepting, commits what was accepted (up to `timeout`), stops the writer.
  /// Idempotent; the destructor calls it.
  void shutdown(std::chrono::milliseconds timeout) noexcept;

  TrackerCounters counters() const noexcept;
  /// The worker name stamped on events that name none.
  const std::string& worker() const noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace jobtrail
