#include "jobtrail/tracker.h"

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "jobtrail/context.h"
#include "jobtrail/store.h"
#include "event_fault.h"
#include "tracker_core.h"
#include "tracker_writer.h"

namespace jobtrail {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using detail::plural;
using detail::quoted_job_id;

void check_options(const TrackerOptions& options) {
  if (options.queue_capacity == 0) throw std::invalid_argument("jobtrail: queue_capacity must be at least 1");
  if (options.max_batch == 0) throw std::invalid_argument("jobtrail: max_batch must be at least 1");
  if (options.flush_interval <= 0ms) throw std::invalid_argument("jobtrail: flush_interval must be positive");
  if (options.durable_timeout < 0ms) throw std::invalid_argument("jobtrail: durable_timeout must not be negative");
  if (options.shutdown_timeout < 0ms) {
    throw std::invalid_argument("jobtrail: shutdown_timeout must not be negative");
  }
  if (options.worker.size() > EventLimits::max_name_length) {
    throw std::invalid_argument("jobtrail: worker name is longer than " +
                                std::to_string(EventLimits::max_name_length) + " bytes");
  }
  // The writer stamps it on events record() checked: it must pass the same check.
  if (!is_utf8_text(options.worker)) {
    throw std::invalid_argument("jobtrail: worker name is not UTF-8 text (or holds a NUL byte)");
  }
}

}  // namespace

std::string_view to_string(RecordStatus status) noexcept {
  switch (status) {
    case RecordStatus::queued: return "queued";
    case RecordStatus::durable: return "durable";
    case RecordStatus::invalid: return "invalid";
    case RecordStatus::queue_full: return "queue_full";
    case RecordStatus::shut_down: return "shut_down";
    case RecordStatus::timed_out: return "timed_out";
  }
  return "unknown";
}

/// The tracker's front: record() on callers' threads, flush() and shutdown(); the queue and the
/// writer thread (event_queue.h, tracker_writer.h) do the rest. Thread-safe: see TrackerCore.
struct Tracker::Impl {
  Impl(std::unique_ptr<Store> opened_store, TrackerOptions tracker_options);

  /// Checks (check_entry()), stamps the time and queues.
  RecordStatus record(Event&& event, bool wait_until_durable) noexcept;
  /// Stamps the time of an event check_event() passed and queues it.
  RecordStatus record_checked(Event&& event) noexcept;
  bool flush(std::chrono::milliseconds timeout) noexcept { return core.queue.wait_all_resolved(timeout); }
  void shutdown(std::chrono::milliseconds timeout) noexcept;
  TrackerCounters counters() const noexcept { return core.counters(); }

  detail::TrackerCore core;

 private:
  RecordStatus queue(Event&& event, bool wait_until_durable) noexcept;

  std::mutex shutdown_mutex_;  ///< serialises shutdown() callers around the join
  detail::TrackerWriter writer_;
};

Tracker::Impl::Impl(std::unique_ptr<Store> opened_store, TrackerOptions tracker_options)
    : core(std::move(tracker_options)),
      writer_(core, std::move(opened_store)) {
  // Last: the writer may run as soon as it exists.
  writer_.start();
}

RecordStatus Tracker::Impl::record(Event&& event, bool wait_until_durable) noexcept {
  // The one check of the event on its way down (the writer hands the store checked events): the
  // store's rules, so nothing record() accepts is refused later for what it holds. Found as a
  // value; the words are built only for the report of a drop.
  const Micros now = now_micros();
  if (const detail::EventFault fault = detail::check_entry(event, now).fault) {
    core.dropped_invalid.fetch_add(1, std::memory_order_relaxed);
    core.reporter.report_lazily([&] {
      return "dropped an invalid event for job " + quoted_job_id(event.job_id) + ": " + detail::describe(event, fault, now);
    });
    return RecordStatus::invalid;
  }
  if (event.at == 0) event.at = now;
  return queue(std::move(event), wait_until_durable);
}

RecordStatus Tracker::Impl::record_checked(Event&& event) noexcept {
  // check_event() passed it and left `at` 0 when none was sent: stamped now, when recorded.
  if (event.at == 0) event.at = now_micros();
  return queue(std::move(event), false);
}

RecordStatus Tracker::Impl::queue(Event&& event, bool wait_until_durable) noexcept {
  const auto state_index = static_cast<std::size_t>(event.state);

  const auto pushed =
      core.queue.push(std::move(event), wait_until_durable, core.accepted, core.accepted_by_state[state_index]);
  switch (pushed.status) {
    case RecordStatus::queued:
      break;
    case RecordStatus::shut_down:
      core.dropped_shut_down.fetch_add(1, std::memory_order_relaxed);
      core.reporter.report_lazily([&] {
        return "dropped an event for job " + quoted_job_id(event.job_id) + ": the tracker is shut down";
      });
      // The writer that would fold this into the metrics is gone.
      core.update_metrics();
      return pushed.status;
    default:
      core.dropped_queue_full.fetch_add(1, std::memory_order_relaxed);
      core.reporter.report_lazily([&] {
        return "dropped an event for job " + quoted_job_id(event.job_id) + ": the queue is full (" +
               plural(pushed.depth, "event") + " awaiting commit; is the store slow or unavailable?)";
      });
      return pushed.status;
  }
  if (!wait_until_durable) return RecordStatus::queued;
  // An event the store refused for good is not durable; RecordStatus has no better word for it
  // than timed_out, and the error handler has said why.
  return core.queue.wait_durable(pushed.seq, core.options.durable_timeout) ? RecordStatus::durable
                                                                           : RecordStatus::timed_out;
}

void Tracker::Impl::shutdown(std::chrono::milliseconds timeout) noexcept {
  if (writer_.on_writer_thread()) {
    // Called from the error handler on the writer thread: it cannot wait for itself. Stop
    // accepting; the destructor joins.
    core.queue.stop(Clock::now() + timeout, true);
    return;
  }
  std::lock_guard serialised(shutdown_mutex_);
  const std::uint64_t dropped_before = core.dropped_store_error.load(std::memory_order_relaxed);
  core.queue.stop(Clock::now() + timeout, false);
  // Bounded by `timeout` plus at most one append already under way (the store's busy timeout):
  // a thread cannot be interrupted in the middle of a database call.
  if (!writer_.join()) return;
  core.update_metrics();
  // Said even if the rate limit would fold it away: the program is about to end, no later
  // message will carry the count, and a "retrying" line must not be the last word.
  if (const auto lost = core.dropped_store_error.load(std::memory_order_relaxed) - dropped_before; lost > 0) {
    try {
      core.reporter.report_always("at shutdown, " + plural(lost, "event") +
                                  " could not be stored (refused by the store, or not committed within the "
                                  "shutdown timeout) and were dropped");
    } catch (...) {
      // Out of memory formatting the message; the counters still say it.
    }
  }
}

Tracker::Tracker(const std::string& store_url, TrackerOptions options) {
  // Options first: a bad option is the caller's mistake whatever the URL.
  check_options(options);
  // A PostgreSQL server that is down now must not stop the worker from starting: the writer
  // connects when it first commits, retrying with backoff while events wait in the queue.
  OpenOptions open_options;
  open_options.wait_for_server = true;
  impl_ = std::make_unique<Impl>(open_store(store_url, open_options), std::move(options));
}

Tracker::Tracker(std::unique_ptr<Store> store, TrackerOptions options) {
  check_options(options);
  if (!store) throw std::invalid_argument("jobtrail: Tracker needs a store, got a null pointer");
  impl_ = std::make_unique<Impl>(std::move(store), std::move(options));
}

Tracker::~Tracker() { impl_->shutdown(impl_->core.options.shutdown_timeout); }

RecordStatus Tracker::record(Event event) noexcept { return impl_->record(std::move(event), false); }

RecordStatus Tracker::record(CheckedEvent event) noexcept { return impl_->record_checked(std::move(event.event_)); }

RecordStatus Tracker::record_durable(Event event) noexcept { return impl_->record(std::move(event), true); }

RecordStatus Tracker::enqueue(Event event) noexcept {
  event.state = State::enqueued;
  try {
    if (event.correlation_id.empty()) event.correlation_id = current_correlation_id();
    if (event.parent_job_id.empty() && current_job_id() != event.job_id) event.parent_job_id = current_job_id();
  } catch (...) {
    // Out of memory copying an ID: record the enqueue without the context rather than lose it.
  }
  return impl_->record(std::move(event), false);
}

bool Tracker::flush(std::chrono::milliseconds timeout) noexcept { return impl_->flush(timeout); }

void Tracker::shutdown(std::chrono::milliseconds timeout) noexcept { impl_->shutdown(timeout); }

TrackerCounters Tracker::counters() const noexcept { return impl_->counters(); }

const std::string& Tracker::worker() const noexcept { return impl_->core.worker; }

}  // namespace jobtrail
