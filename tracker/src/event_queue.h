#pragma once
// The tracker's queue between recording threads and its writer: accepted events in order,
// their sequence numbers, and who waits for which to be committed (group commit: the writer
// takes everything pending at once).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <vector>

#include "jobtrail/event.h"
#include "jobtrail/tracker.h"

namespace jobtrail::detail {

/// Thread-safe: every member takes the queue's one mutex; waits release it.
class EventQueue {
 public:
  using Clock = std::chrono::steady_clock;

  EventQueue(std::size_t capacity, std::size_t max_batch, std::size_t initial_capacity);

  /// What push() did.
  struct Pushed {
    RecordStatus status = RecordStatus::queued;  ///< queued, queue_full or shut_down
    std::uint64_t seq = 0;                       ///< the event's sequence number when queued
    std::size_t depth = 0;                       ///< events awaiting commit before this one
  };
  /// Queues `event` (moved from only when queued); a durable one is waited for with
  /// wait_durable(). Counts a queued event in `accepted` and `accepted_of_state` before the
  /// writer can see it. Wakes the writer when a batch is full or someone waits.
  Pushed push(Event&& event, bool durable, std::atomic<std::uint64_t>& accepted,
              std::atomic<std::uint64_t>& accepted_of_state) noexcept;
  /// Waits until event `seq` (pushed durable) is resolved; true if it was committed in time.
  /// Forgets the waiter either way.
  bool wait_durable(std::uint64_t seq, std::chrono::milliseconds timeout) noexcept;
  /// Waits until every event accepted so far is resolved, waking the writer.
  bool wait_all_resolved(std::chrono::milliseconds timeout) noexcept;

  /// Stops accepting; the writer stops once the queue is empty or `deadline` passes. A
  /// second call keeps the first deadline only when `keep_deadline`.
  void stop(Clock::time_point deadline, bool keep_deadline) noexcept;

  /// For the writer: waits up to `interval` for a batch, a waiter or a stop, then swaps the
  /// pending events into `taken` (empty on entry). Returns false when stopped and empty;
  /// `taken` empty and true means nothing to do this time.
  bool take(std::vector<Event>& taken, std::uint64_t& first_seq, std::chrono::milliseconds interval) noexcept;
  /// Marks `count` events from `first_seq` on as committed or dropped: those in `dropped`, or
  /// all of them if `all_dropped`, were refused, which their durable waiters learn.
  void resolve(std::uint64_t first_seq, std::size_t count, std::span<const std::uint64_t> dropped,
               bool all_dropped) noexcept;
  /// Whether a stop was asked and its deadline passed.
  bool out_of_time() noexcept;
  /// Sleeps `backoff` before a retry, less if a stop comes meanwhile or its deadline is nearer.
  void wait_before_retry(std::chrono::milliseconds backoff) noexcept;
  /// Drops everything pending or in flight and stops accepting; returns how many were lost.
  std::size_t drop_everything() noexcept;

  /// Events awaiting commit (pending or taken by the writer).
  std::size_t depth() const noexcept;

 private:
  const std::size_t capacity_, max_batch_;
  mutable std::mutex mutex_;
  std::condition_variable writer_wake_;  ///< the writer waits here for work
  std::condition_variable resolved_;     ///< durable records and flushes wait here
  // --- guarded by mutex_
  std::vector<Event> pending_;
  std::size_t in_flight_ = 0;       ///< taken by the writer, not yet committed or dropped
  std::uint64_t last_seq_ = 0;      ///< sequence number of the newest accepted event
  std::uint64_t resolved_seq_ = 0;  ///< every event up to here is committed or dropped
  std::size_t urgent_waiters_ = 0;  ///< durable records and flushes waiting right now
  std::map<std::uint64_t, bool> durable_waiters_;  ///< seq -> "the store refused it"
  bool accepting_ = true;
  bool stop_requested_ = false;
  Clock::time_point stop_deadline_;
};

}  // namespace jobtrail::detail
