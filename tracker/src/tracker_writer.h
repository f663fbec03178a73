#pragma once
// The tracker's writer: one thread that takes the queued events in batches, appends them to
// the store with retries, and resolves the waiters. It owns the store, and knows of it only the
// writer's face (history_writer.h).

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "jobtrail/history_writer.h"
#include "tracker_core.h"

namespace jobtrail::detail {

/// Not thread-safe apart from its thread: start() and join() from one owner; the thread alone
/// touches the store.
class TrackerWriter {
 public:
  TrackerWriter(TrackerCore& core, std::unique_ptr<HistoryWriter> store);
  ~TrackerWriter();

  /// Starts the writer thread.
  void start();
  /// Waits for the thread to end (after the queue was stopped). False if it never started
  /// or was joined already.
  bool join() noexcept;
  /// Whether the calling thread is this writer's (a callback from it cannot wait for it).
  bool on_writer_thread() const noexcept;

 private:
  /// How an append ended after any retries.
  enum class AppendOutcome { committed, refused, out_of_time };

  void run() noexcept;
  void commit_taken(std::vector<Event>& taken, std::vector<Event>& batch, std::uint64_t first_seq) noexcept;
  void commit_batch(std::vector<Event>& events, std::uint64_t first_seq) noexcept;
  AppendOutcome append_with_retry(const std::vector<Event>& events, std::string& error) noexcept;
  void drop_unsent(std::size_t count, std::uint64_t first_seq, std::string_view why) noexcept;
  void drop_everything_left(std::string_view why) noexcept;
  void stamp_worker(std::vector<Event>& events) const noexcept;

  TrackerCore& core_;
  std::unique_ptr<HistoryWriter> store_;  ///< appended to, and closed, on the writer thread only
  std::thread thread_;
};

}  // namespace jobtrail::detail
