#include "tracker_writer.h"

#include <algorithm>
#include <iterator>

namespace jobtrail::detail {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A busy store (another writer, a checkpoint) usually clears in tens of milliseconds; a full
// disk may take minutes. Retry fast first, then settle at a pace that does not spin.
constexpr std::chrono::milliseconds first_retry_backoff = 50ms;
constexpr std::chrono::milliseconds longest_retry_backoff = 5s;

// Buffers grow to the peak load once and keep their capacity; this is only where they start.
constexpr std::size_t initial_buffer_capacity = 1024;

// Set on a writer thread to its writer, so that a shutdown from the error handler can tell it
// runs on the writer without touching the std::thread another thread joins.
thread_local const void* writer_thread_of = nullptr;

}  // namespace

TrackerWriter::TrackerWriter(TrackerCore& core, std::unique_ptr<HistoryWriter> store)
    : core_(core), store_(std::move(store)) {}

TrackerWriter::~TrackerWriter() { join(); }

void TrackerWriter::start() {
  thread_ = std::thread([this] { run(); });
}

bool TrackerWriter::join() noexcept {
  if (!thread_.joinable()) return false;
  try {
    thread_.join();
  } catch (...) {
    // join() fails only if the thread is not joinable, which the owner checked.
  }
  return true;
}

bool TrackerWriter::on_writer_thread() const noexcept { return writer_thread_of == this; }

void TrackerWriter::run() noexcept {
  writer_thread_of = this;
  try {
    std::vector<Event> taken;
    taken.reserve(std::min(core_.options.queue_capacity, initial_buffer_capacity));
    std::vector<Event> batch;
    for (;;) {
      std::uint64_t first_seq = 0;
      if (!core_.queue.take(taken, first_seq, core_.options.flush_interval)) break;
      core_.update_metrics();  // drops of invalid events happen without any batch
      if (taken.empty()) continue;
      commit_taken(taken, batch, first_seq);
      taken.clear();
      core_.update_metrics();
    }
  } catch (...) {
    // Nothing above throws by design; should something still, waiters must not hang.
    drop_everything_left("the writer thread failed unexpectedly");
  }
  // The store belongs to this thread: close it here, not on whichever thread destroys us.
  try {
    store_.reset();
  } catch (...) {
  }
  core_.update_metrics();
}

void TrackerWriter::commit_taken(std::vector<Event>& taken, std::vector<Event>& batch,
                                 std::uint64_t first_seq) noexcept {
  const std::size_t max_batch = core_.options.max_batch;
  if (taken.size() <= max_batch) {
    commit_batch(taken, first_seq);
    return;
  }
  for (std::size_t offset = 0; offset < taken.size(); offset += max_batch) {
    const std::size_t count = std::min(max_batch, taken.size() - offset);
    try {
      batch.clear();
      batch.reserve(count);
      std::move(taken.begin() + static_cast<std::ptrdiff_t>(offset),
                taken.begin() + static_cast<std::ptrdiff_t>(offset + count), std::back_inserter(batch));
    } catch (...) {
      drop_unsent(taken.size() - offset, first_seq + offset, "out of memory while batching");
      return;
    }
    commit_batch(batch, first_seq + offset);
  }
  batch.clear();
}

void TrackerWriter::commit_batch(std::vector<Event>& events, std::uint64_t first_seq) noexcept {
  stamp_worker(events);
  std::string error;
  switch (append_with_retry(events, error)) {
    case AppendOutcome::committed:
      core_.queue.resolve(first_seq, events.size(), {}, false);
      return;
    case AppendOutcome::out_of_time:
      drop_unsent(events.size(), first_seq, "not committed before the shutdown timeout");
      return;
    case AppendOutcome::refused:
      break;
  }
  if (events.size() > 1) {
    core_.reporter.report_lazily([&] {
      return "the store refused a batch of " + plural(events.size(), "event") + " (" + error +
             "); committing them one at a time";
    });
  }
  // One bad event must not take the rest of its batch down with it.
  std::vector<std::uint64_t> dropped;
  std::vector<Event> single;
  for (std::size_t i = 0; i < events.size(); ++i) {
    AppendOutcome outcome = AppendOutcome::refused;
    try {
      if (events.size() == 1) {
        outcome = AppendOutcome::refused;  // already tried alone above
      } else {
        single.clear();
        single.push_back(std::move(events[i]));
        outcome = append_with_retry(single, error);
      }
      if (outcome == AppendOutcome::refused) {
        dropped.push_back(first_seq + i);
        core_.dropped_store_error.fetch_add(1, std::memory_order_relaxed);
        const std::string& job_id = events.size() == 1 ? events[i].job_id : single.front().job_id;
        core_.reporter.report_lazily(
            [&] { return "the store refused an event for job " + quoted_job_id(job_id) + ": " + error; });
      }
    } catch (...) {
      outcome = AppendOutcome::out_of_time;  // out of memory: treat the rest like a timeout
    }
    if (outcome == AppendOutcome::out_of_time) {
      // The rest is counted and resolved as a whole.
      core_.queue.resolve(first_seq, i, dropped, false);
      drop_unsent(events.size() - i, first_seq + i, "not committed before the shutdown timeout");
      return;
    }
  }
  core_.queue.resolve(first_seq, events.size(), dropped, false);
}

TrackerWriter::AppendOutcome TrackerWriter::append_with_retry(const std::vector<Event>& events,
                                                              std::string& error) noexcept {
  std::chrono::milliseconds backoff = first_retry_backoff;
  for (;;) {
    if (core_.queue.out_of_time()) return AppendOutcome::out_of_time;
    const auto started = Clock::now();
    try {
      try {
        // record() validated and stamped each event, and stamp_worker() only gives a checked
        // name: checked once, at the edge, not again here.
        const AppendResult result = store_->append_checked(CheckedEvents(events, CheckedEvents::Trusted{}));
        const auto took = Clock::now() - started;
        core_.stored.fetch_add(result.stored, std::memory_order_relaxed);
        core_.duplicates.fetch_add(result.duplicates, std::memory_order_relaxed);
        core_.anomalies.fetch_add(result.anomalies, std::memory_order_relaxed);
        if (core_.metrics) {
          core_.metrics->observe_commit(took, events.size());
          core_.metrics->observe_transitions(result.transitions);
        }
        return AppendOutcome::committed;
      } catch (const StoreError& store_error) {
        core_.store_errors.fetch_add(1, std::memory_order_relaxed);
        if (!store_error.transient()) {
          error = store_error.what();
          return AppendOutcome::refused;
        }
        core_.reporter.report_lazily([&] {
          return "cannot commit " + plural(events.size(), "event") + " (" + store_error.what() + "); retrying in " +
                 std::to_string(backoff.count()) + " ms";
        });
      } catch (const std::exception& other_error) {
        core_.store_errors.fetch_add(1, std::memory_order_relaxed);
        error = other_error.what();
        return AppendOutcome::refused;
      } catch (...) {
        core_.store_errors.fetch_add(1, std::memory_order_relaxed);
        error = "unknown exception";
        return AppendOutcome::refused;
      }
    } catch (...) {
      // Copying an error message ran out of memory.
      return AppendOutcome::refused;
    }
    core_.update_metrics();
    core_.queue.wait_before_retry(backoff);
    backoff = std::min(backoff * 2, longest_retry_backoff);
  }
}

void TrackerWriter::drop_unsent(std::size_t count, std::uint64_t first_seq, std::string_view why) noexcept {
  if (count == 0) return;
  core_.dropped_store_error.fetch_add(count, std::memory_order_relaxed);
  core_.reporter.report_lazily([&] { return "dropped " + plural(count, "event") + ": " + std::string(why); });
  core_.queue.resolve(first_seq, count, {}, true);
}

void TrackerWriter::drop_everything_left(std::string_view why) noexcept {
  const std::size_t lost = core_.queue.drop_everything();
  core_.dropped_store_error.fetch_add(lost, std::memory_order_relaxed);
  core_.reporter.report_lazily([&] { return "dropped " + plural(lost, "event") + ": " + std::string(why); });
}

void TrackerWriter::stamp_worker(std::vector<Event>& events) const noexcept {
  // Done here rather than in record(): copying the name would cost the caller an allocation.
  if (!core_.options.stamp_worker) return;
  try {
    for (Event& event : events) {
      if (event.worker.empty()) event.worker = core_.worker;
    }
  } catch (...) {
    // Out of memory: the events go without a worker name rather than not at all.
  }
}

}  // namespace jobtrail::detail
