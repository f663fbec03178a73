#include "jobtrail/tracker.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <iterator>
#include <map>
#include <mutex>
#include <span>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "error_reporter.h"
#include "jobtrail/context.h"
#include "jobtrail/store.h"
#include "tracker_metrics.h"

namespace jobtrail {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A busy store (another writer, a checkpoint) usually clears in tens of milliseconds; a full
// disk may take minutes. Retry fast first, then settle at a pace that does not spin.
constexpr std::chrono::milliseconds first_retry_backoff = 50ms;
constexpr std::chrono::milliseconds longest_retry_backoff = 5s;

// Buffers grow to the peak load once and keep their capacity; this is only where they start.
constexpr std::size_t initial_buffer_capacity = 1024;

std::string default_worker_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::string name = host[0] != '\0' ? host : "unknown-host";
  // Leave room for ":<pid>" within the limit every event's worker must respect.
  name.resize(std::min(name.size(), EventLimits::max_name_length - 12));
  return name + ":" + std::to_string(getpid());
}

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
}

// The checks of validation_error() without building any string, for the hot path. It may be
// stricter than validation_error() (which stays the authority) but never more lenient.
bool passes_quick_validation(const Event& event) noexcept {
  using Limits = EventLimits;
  const auto state = static_cast<unsigned>(event.state);
  if (event.job_id.empty() || state < 1 || state > 7 || event.at < 0 || event.attempt < 0) return false;
  if (event.job_id.size() > Limits::max_id_length || event.correlation_id.size() > Limits::max_id_length ||
      event.parent_job_id.size() > Limits::max_id_length || event.idempotency_key.size() > Limits::max_id_length) {
    return false;
  }
  if (event.job.size() > Limits::max_name_length || event.queue.size() > Limits::max_name_length ||
      event.worker.size() > Limits::max_name_length || event.error.error_class.size() > Limits::max_name_length) {
    return false;
  }
  if (event.error.message.size() > Limits::max_message_length ||
      event.error.backtrace.size() > Limits::max_backtrace_length || event.entities.size() > Limits::max_entities) {
    return false;
  }
  return std::all_of(event.entities.begin(), event.entities.end(),
                     [](const std::string& entity) { return is_valid_entity(entity); });
}

// Job IDs come from callers; keep the ones quoted in error messages short.
std::string quoted_job_id(const std::string& job_id) {
  constexpr std::size_t shown = 80;
  return "\"" + job_id.substr(0, shown) + (job_id.size() > shown ? "...\"" : "\"");
}

std::string plural(std::size_t count, const char* noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

// Set on a writer thread to its tracker, so that shutdown() can tell it is being called from
// the writer (through the error handler) without touching the std::thread another thread joins.
thread_local const void* writer_thread_of = nullptr;

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

/// The tracker's state, shared by recording threads and the writer thread.
/// Thread-safe: the queue and sequence numbers are guarded by `mutex`, counters are atomics,
/// the store is touched by the writer thread only.
struct Tracker::Impl {
  Impl(std::unique_ptr<Store> opened_store, TrackerOptions tracker_options);

  RecordStatus record(Event&& event, bool wait_until_durable) noexcept;
  bool flush(std::chrono::milliseconds timeout) noexcept;
  void shutdown(std::chrono::milliseconds timeout) noexcept;
  TrackerCounters counters() const noexcept;

 private:
  /// How an append ended after any retries.
  enum class AppendOutcome { committed, refused, out_of_time };

  void run_writer() noexcept;
  void commit_taken(std::vector<Event>& taken, std::vector<Event>& batch, std::uint64_t first_seq) noexcept;
  void commit_batch(std::vector<Event>& events, std::uint64_t first_seq) noexcept;
  AppendOutcome append_with_retry(const std::vector<Event>& events, std::string& error) noexcept;
  void wait_before_retry(std::chrono::milliseconds backoff) noexcept;
  bool out_of_time() noexcept;
  void drop_unsent(std::size_t count, std::uint64_t first_seq, std::string_view why) noexcept;
  void resolve(std::uint64_t first_seq, std::size_t count, std::span<const std::uint64_t> dropped,
               bool all_dropped) noexcept;
  void stamp_worker(std::vector<Event>& events) const noexcept;
  void update_metrics() noexcept;
  void drop_everything_left(std::string_view why) noexcept;

 public:
  const TrackerOptions options;
  const std::string worker;

 private:
  ErrorReporter reporter_;
  std::unique_ptr<TrackerMetrics> metrics_;
  /// Used by the writer thread only, once the constructor has handed it over.
  std::unique_ptr<Store> store_;

  mutable std::mutex mutex_;
  std::condition_variable writer_wake_;  ///< the writer waits here for work
  std::condition_variable resolved_;     ///< record_durable() and flush() wait here
  // --- guarded by mutex_
  std::vector<Event> pending_;
  std::size_t in_flight_ = 0;           ///< taken by the writer, not yet committed or dropped
  std::uint64_t last_seq_ = 0;          ///< sequence number of the newest accepted event
  std::uint64_t resolved_seq_ = 0;      ///< every event up to here is committed or dropped
  std::size_t urgent_waiters_ = 0;      ///< durable records and flushes waiting right now
  std::map<std::uint64_t, bool> durable_waiters_;  ///< seq -> "the store refused it"
  bool accepting_ = true;
  bool stop_requested_ = false;
  Clock::time_point stop_deadline_;
  // ---

  std::mutex shutdown_mutex_;  ///< serialises shutdown() callers around the join
  std::thread writer_;

  std::atomic<std::uint64_t> accepted_{0}, stored_{0}, duplicates_{0}, anomalies_{0}, dropped_invalid_{0},
      dropped_queue_full_{0}, dropped_shut_down_{0}, dropped_store_error_{0}, store_errors_{0};
  std::array<std::atomic<std::uint64_t>, 8> accepted_by_state_{};
};

Tracker::Impl::Impl(std::unique_ptr<Store> opened_store, TrackerOptions tracker_options)
    : options(std::move(tracker_options)),
      worker(options.worker.empty() ? default_worker_name() : options.worker),
      reporter_(options.error_handler),
      store_(std::move(opened_store)) {
  if (options.registry) metrics_ = std::make_unique<TrackerMetrics>(*options.registry, options.queue_capacity);
  pending_.reserve(std::min(options.queue_capacity, initial_buffer_capacity));
  // Last: the writer may run as soon as it exists.
  writer_ = std::thread([this] { run_writer(); });
}

RecordStatus Tracker::Impl::record(Event&& event, bool wait_until_durable) noexcept {
  if (!passes_quick_validation(event)) {
    std::string why;
    try {
      why = validation_error(event);
    } catch (...) {
      why = "cannot be validated (out of memory)";
    }
    if (!why.empty()) {
      dropped_invalid_.fetch_add(1, std::memory_order_relaxed);
      reporter_.report_lazily(
          [&] { return "dropped an invalid event for job " + quoted_job_id(event.job_id) + ": " + why; });
      return RecordStatus::invalid;
    }
  }
  if (event.at == 0) event.at = now_micros();
  const auto state_index = static_cast<std::size_t>(event.state);

  std::uint64_t seq = 0;
  bool wake_writer = false;
  RecordStatus refusal = RecordStatus::queued;
  std::size_t depth = 0;
  {
    std::lock_guard lock(mutex_);
    depth = pending_.size() + in_flight_;
    if (!accepting_) {
      refusal = RecordStatus::shut_down;
    } else if (depth >= options.queue_capacity) {
      refusal = RecordStatus::queue_full;
    } else {
      try {
        pending_.push_back(std::move(event));
        if (wait_until_durable) durable_waiters_.emplace(last_seq_ + 1, false);
      } catch (...) {
        // Out of memory growing the queue: as good as full. Undo a half-done push.
        if (pending_.size() > depth - in_flight_) pending_.pop_back();
        refusal = RecordStatus::queue_full;
      }
    }
    if (refusal == RecordStatus::queued) {
      seq = ++last_seq_;
      accepted_.fetch_add(1, std::memory_order_relaxed);
      accepted_by_state_[state_index].fetch_add(1, std::memory_order_relaxed);
      // Group commit: the writer wakes on its own every flush_interval. Wake it early only
      // when a batch is full or someone waits.
      wake_writer = pending_.size() == options.max_batch;
      if (wait_until_durable) {
        ++urgent_waiters_;
        wake_writer = true;
      }
    }
  }

  if (refusal == RecordStatus::shut_down) {
    dropped_shut_down_.fetch_add(1, std::memory_order_relaxed);
    reporter_.report_lazily([&] {
      return "dropped an event for job " + quoted_job_id(event.job_id) + ": the tracker is shut down";
    });
    // The writer that would fold this into the metrics is gone.
    update_metrics();
    return refusal;
  }
  if (refusal == RecordStatus::queue_full) {
    dropped_queue_full_.fetch_add(1, std::memory_order_relaxed);
    reporter_.report_lazily([&] {
      return "dropped an event for job " + quoted_job_id(event.job_id) + ": the queue is full (" +
             plural(depth, "event") + " awaiting commit; is the store slow or unavailable?)";
    });
    return refusal;
  }
  if (wake_writer) writer_wake_.notify_one();
  if (!wait_until_durable) return RecordStatus::queued;

  std::unique_lock lock(mutex_);
  const bool resolved = resolved_.wait_for(lock, options.durable_timeout, [&] { return resolved_seq_ >= seq; });
  bool refused_by_store = false;
  if (auto waiter = durable_waiters_.find(seq); waiter != durable_waiters_.end()) {
    refused_by_store = waiter->second;
    durable_waiters_.erase(waiter);
  }
  --urgent_waiters_;
  // An event the store refused for good is not durable; RecordStatus has no better word for it
  // than timed_out, and the error handler has said why.
  return resolved && !refused_by_store ? RecordStatus::durable : RecordStatus::timed_out;
}

bool Tracker::Impl::flush(std::chrono::milliseconds timeout) noexcept {
  std::unique_lock lock(mutex_);
  const std::uint64_t target = last_seq_;
  if (resolved_seq_ >= target) return true;
  ++urgent_waiters_;
  writer_wake_.notify_one();
  const bool done = resolved_.wait_for(lock, timeout, [&] { return resolved_seq_ >= target; });
  --urgent_waiters_;
  return done;
}

void Tracker::Impl::shutdown(std::chrono::milliseconds timeout) noexcept {
  if (writer_thread_of == this) {
    // Called from the error handler on the writer thread: it cannot wait for itself. Stop
    // accepting; the destructor joins.
    std::lock_guard lock(mutex_);
    accepting_ = false;
    if (!stop_requested_) stop_deadline_ = Clock::now() + timeout;
    stop_requested_ = true;
    return;
  }
  std::lock_guard serialised(shutdown_mutex_);
  if (!writer_.joinable()) return;
  const std::uint64_t dropped_before = dropped_store_error_.load(std::memory_order_relaxed);
  {
    std::lock_guard lock(mutex_);
    accepting_ = false;
    stop_requested_ = true;
    stop_deadline_ = Clock::now() + timeout;
  }
  writer_wake_.notify_one();
  // Bounded by `timeout` plus at most one append already under way (the store's busy timeout):
  // a thread cannot be interrupted in the middle of a database call.
  try {
    writer_.join();
  } catch (...) {
    // join() fails only if the thread is not joinable, which was checked under shutdown_mutex_.
  }
  update_metrics();
  // Said even if the rate limit would fold it away: the program is about to end, no later
  // message will carry the count, and a "retrying" line must not be the last word.
  if (const auto lost = dropped_store_error_.load(std::memory_order_relaxed) - dropped_before; lost > 0) {
    try {
      reporter_.report_always("at shutdown, " + plural(lost, "event") +
                              " could not be stored (refused by the store, or not committed within the "
                              "shutdown timeout) and were dropped");
    } catch (...) {
      // Out of memory formatting the message; the counters still say it.
    }
  }
}

TrackerCounters Tracker::Impl::counters() const noexcept {
  TrackerCounters counters;
  counters.accepted = accepted_.load(std::memory_order_relaxed);
  counters.stored = stored_.load(std::memory_order_relaxed);
  counters.duplicates = duplicates_.load(std::memory_order_relaxed);
  counters.anomalies = anomalies_.load(std::memory_order_relaxed);
  counters.dropped_invalid = dropped_invalid_.load(std::memory_order_relaxed);
  counters.dropped_queue_full = dropped_queue_full_.load(std::memory_order_relaxed);
  counters.dropped_shut_down = dropped_shut_down_.load(std::memory_order_relaxed);
  counters.dropped_store_error = dropped_store_error_.load(std::memory_order_relaxed);
  counters.store_errors = store_errors_.load(std::memory_order_relaxed);
  return counters;
}

void Tracker::Impl::run_writer() noexcept {
  writer_thread_of = this;
  try {
    // Double buffering: the writer swaps its empty `taken` for the recorders' `pending`, so
    // both keep their capacity and the steady state allocates nothing.
    std::vector<Event> taken;
    taken.reserve(std::min(options.queue_capacity, initial_buffer_capacity));
    std::vector<Event> batch;
    for (;;) {
      std::uint64_t first_seq = 0;
      {
        std::unique_lock lock(mutex_);
        writer_wake_.wait_for(lock, options.flush_interval, [&] {
          return stop_requested_ || pending_.size() >= options.max_batch ||
                 (urgent_waiters_ > 0 && !pending_.empty());
        });
        if (pending_.empty()) {
          if (stop_requested_) break;
          lock.unlock();
          update_metrics();  // drops of invalid events happen without any batch
          continue;
        }
        taken.swap(pending_);
        in_flight_ = taken.size();
        first_seq = last_seq_ - taken.size() + 1;
      }
      update_metrics();
      commit_taken(taken, batch, first_seq);
      taken.clear();
      update_metrics();
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
  update_metrics();
}

void Tracker::Impl::commit_taken(std::vector<Event>& taken, std::vector<Event>& batch,
                                 std::uint64_t first_seq) noexcept {
  if (taken.size() <= options.max_batch) {
    commit_batch(taken, first_seq);
    return;
  }
  for (std::size_t offset = 0; offset < taken.size(); offset += options.max_batch) {
    const std::size_t count = std::min(options.max_batch, taken.size() - offset);
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

void Tracker::Impl::commit_batch(std::vector<Event>& events, std::uint64_t first_seq) noexcept {
  stamp_worker(events);
  std::string error;
  switch (append_with_retry(events, error)) {
    case AppendOutcome::committed:
      resolve(first_seq, events.size(), {}, false);
      return;
    case AppendOutcome::out_of_time:
      drop_unsent(events.size(), first_seq, "not committed before the shutdown timeout");
      return;
    case AppendOutcome::refused:
      break;
  }
  if (events.size() > 1) {
    reporter_.report_lazily([&] {
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
        dropped_store_error_.fetch_add(1, std::memory_order_relaxed);
        const std::string& job_id = events.size() == 1 ? events[i].job_id : single.front().job_id;
        reporter_.report_lazily(
            [&] { return "the store refused an event for job " + quoted_job_id(job_id) + ": " + error; });
      }
    } catch (...) {
      outcome = AppendOutcome::out_of_time;  // out of memory: treat the rest like a timeout
    }
    if (outcome == AppendOutcome::out_of_time) {
      // The rest is counted and resolved as a whole.
      resolve(first_seq, i, dropped, false);
      drop_unsent(events.size() - i, first_seq + i, "not committed before the shutdown timeout");
      return;
    }
  }
  resolve(first_seq, events.size(), dropped, false);
}

Tracker::Impl::AppendOutcome Tracker::Impl::append_with_retry(const std::vector<Event>& events,
                                                              std::string& error) noexcept {
  std::chrono::milliseconds backoff = first_retry_backoff;
  for (;;) {
    if (out_of_time()) return AppendOutcome::out_of_time;
    const auto started = Clock::now();
    try {
      try {
        const AppendResult result = store_->append(events);
        const auto took = Clock::now() - started;
        stored_.fetch_add(result.stored, std::memory_order_relaxed);
        duplicates_.fetch_add(result.duplicates, std::memory_order_relaxed);
        anomalies_.fetch_add(result.anomalies, std::memory_order_relaxed);
        if (metrics_) {
          metrics_->observe_commit(took, events.size());
          metrics_->observe_transitions(result.transitions);
        }
        return AppendOutcome::committed;
      } catch (const StoreError& store_error) {
        store_errors_.fetch_add(1, std::memory_order_relaxed);
        if (!store_error.transient()) {
          error = store_error.what();
          return AppendOutcome::refused;
        }
        reporter_.report_lazily([&] {
          return "cannot commit " + plural(events.size(), "event") + " (" + store_error.what() + "); retrying in " +
                 std::to_string(backoff.count()) + " ms";
        });
      } catch (const std::exception& other_error) {
        store_errors_.fetch_add(1, std::memory_order_relaxed);
        error = other_error.what();
        return AppendOutcome::refused;
      } catch (...) {
        store_errors_.fetch_add(1, std::memory_order_relaxed);
        error = "unknown exception";
        return AppendOutcome::refused;
      }
    } catch (...) {
      // Copying an error message ran out of memory.
      return AppendOutcome::refused;
    }
    update_metrics();
    wait_before_retry(backoff);
    backoff = std::min(backoff * 2, longest_retry_backoff);
  }
}

void Tracker::Impl::wait_before_retry(std::chrono::milliseconds backoff) noexcept {
  std::unique_lock lock(mutex_);
  const bool stopping_already = stop_requested_;
  auto until = Clock::now() + backoff;
  if (stopping_already) until = std::min(until, stop_deadline_);
  // A shutdown request cuts the wait short so the deadline is re-evaluated; recorders
  // waking the writer do not (the store would only be hammered sooner).
  writer_wake_.wait_until(lock, until, [&] { return stop_requested_ && !stopping_already; });
}

bool Tracker::Impl::out_of_time() noexcept {
  std::lock_guard lock(mutex_);
  return stop_requested_ && Clock::now() >= stop_deadline_;
}

void Tracker::Impl::drop_unsent(std::size_t count, std::uint64_t first_seq, std::string_view why) noexcept {
  if (count == 0) return;
  dropped_store_error_.fetch_add(count, std::memory_order_relaxed);
  reporter_.report_lazily([&] { return "dropped " + plural(count, "event") + ": " + std::string(why); });
  resolve(first_seq, count, {}, true);
}

void Tracker::Impl::resolve(std::uint64_t first_seq, std::size_t count, std::span<const std::uint64_t> dropped,
                            bool all_dropped) noexcept {
  if (count == 0) return;
  {
    std::lock_guard lock(mutex_);
    resolved_seq_ = first_seq + count - 1;
    in_flight_ -= std::min(in_flight_, count);
    // Few durable waiters at a time; they learn here whether their event was refused.
    for (auto& [seq, refused] : durable_waiters_) {
      if (seq < first_seq || seq > resolved_seq_) continue;
      if (all_dropped || std::find(dropped.begin(), dropped.end(), seq) != dropped.end()) refused = true;
    }
  }
  resolved_.notify_all();
}

void Tracker::Impl::stamp_worker(std::vector<Event>& events) const noexcept {
  // Done here rather than in record(): copying the name would cost the caller an allocation.
  try {
    for (Event& event : events) {
      if (event.worker.empty()) event.worker = worker;
    }
  } catch (...) {
    // Out of memory: the events go without a worker name rather than not at all.
  }
}

void Tracker::Impl::update_metrics() noexcept {
  if (!metrics_) return;
  StateCounts accepted{};
  for (std::size_t i = 0; i < accepted.size(); ++i) accepted[i] = accepted_by_state_[i].load(std::memory_order_relaxed);
  metrics_->fold_counters(counters(), accepted);
  std::size_t depth = 0;
  {
    std::lock_guard lock(mutex_);
    depth = pending_.size() + in_flight_;
  }
  metrics_->set_queue_depth(depth);
}

void Tracker::Impl::drop_everything_left(std::string_view why) noexcept {
  std::size_t lost = 0;
  {
    std::lock_guard lock(mutex_);
    accepting_ = false;
    lost = pending_.size() + in_flight_;
    pending_.clear();
    in_flight_ = 0;
    for (auto& waiter : durable_waiters_) {
      if (waiter.first > resolved_seq_) waiter.second = true;
    }
    resolved_seq_ = last_seq_;
  }
  resolved_.notify_all();
  dropped_store_error_.fetch_add(lost, std::memory_order_relaxed);
  reporter_.report_lazily([&] { return "dropped " + plural(lost, "event") + ": " + std::string(why); });
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

Tracker::~Tracker() { impl_->shutdown(impl_->options.shutdown_timeout); }

RecordStatus Tracker::record(Event event) noexcept { return impl_->record(std::move(event), false); }

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

const std::string& Tracker::worker() const noexcept { return impl_->worker; }

}  // namespace jobtrail
