#include "event_queue.h"

#include <algorithm>

namespace jobtrail::detail {

EventQueue::EventQueue(std::size_t capacity, std::size_t max_batch, std::size_t initial_capacity)
    : capacity_(capacity), max_batch_(max_batch) {
  pending_.reserve(std::min(capacity, initial_capacity));
}

EventQueue::Pushed EventQueue::push(Event&& event, bool durable, std::atomic<std::uint64_t>& accepted,
                                    std::atomic<std::uint64_t>& accepted_of_state) noexcept {
  Pushed pushed;
  bool wake_writer = false;
  {
    std::lock_guard lock(mutex_);
    pushed.depth = pending_.size() + in_flight_;
    if (!accepting_) {
      pushed.status = RecordStatus::shut_down;
    } else if (pushed.depth >= capacity_) {
      pushed.status = RecordStatus::queue_full;
    } else {
      try {
        pending_.push_back(std::move(event));
        if (durable) durable_waiters_.emplace(last_seq_ + 1, false);
      } catch (...) {
        // Out of memory growing the queue: as good as full. Undo a half-done push.
        if (pending_.size() > pushed.depth - in_flight_) pending_.pop_back();
        pushed.status = RecordStatus::queue_full;
      }
    }
    if (pushed.status != RecordStatus::queued) return pushed;
    pushed.seq = ++last_seq_;
    accepted.fetch_add(1, std::memory_order_relaxed);
    accepted_of_state.fetch_add(1, std::memory_order_relaxed);
    // Group commit: the writer wakes on its own every flush interval. Wake it early only
    // when a batch is full or someone waits.
    wake_writer = pending_.size() == max_batch_;
    if (durable) {
      ++urgent_waiters_;
      wake_writer = true;
    }
  }
  if (wake_writer) writer_wake_.notify_one();
  return pushed;
}

bool EventQueue::wait_durable(std::uint64_t seq, std::chrono::milliseconds timeout) noexcept {
  std::unique_lock lock(mutex_);
  const bool resolved = resolved_.wait_for(lock, timeout, [&] { return resolved_seq_ >= seq; });
  bool refused_by_store = false;
  if (auto waiter = durable_waiters_.find(seq); waiter != durable_waiters_.end()) {
    refused_by_store = waiter->second;
    durable_waiters_.erase(waiter);
  }
  --urgent_waiters_;
  return resolved && !refused_by_store;
}

bool EventQueue::wait_all_resolved(std::chrono::milliseconds timeout) noexcept {
  std::unique_lock lock(mutex_);
  const std::uint64_t target = last_seq_;
  if (resolved_seq_ >= target) return true;
  ++urgent_waiters_;
  writer_wake_.notify_one();
  const bool done = resolved_.wait_for(lock, timeout, [&] { return resolved_seq_ >= target; });
  --urgent_waiters_;
  return done;
}

void EventQueue::stop(Clock::time_point deadline, bool keep_deadline) noexcept {
  {
    std::lock_guard lock(mutex_);
    accepting_ = false;
    if (!(keep_deadline && stop_requested_)) stop_deadline_ = deadline;
    stop_requested_ = true;
  }
  writer_wake_.notify_one();
}

bool EventQueue::take(std::vector<Event>& taken, std::uint64_t& first_seq, std::chrono::milliseconds interval) noexcept {
  std::unique_lock lock(mutex_);
  writer_wake_.wait_for(lock, interval, [&] {
    return stop_requested_ || pending_.size() >= max_batch_ || (urgent_waiters_ > 0 && !pending_.empty());
  });
  if (pending_.empty()) return !stop_requested_;
  // Double buffering: the writer's empty `taken` for the recorders' `pending`, so both keep
  // their capacity and the steady state allocates nothing.
  taken.swap(pending_);
  in_flight_ = taken.size();
  first_seq = last_seq_ - taken.size() + 1;
  return true;
}

void EventQueue::resolve(std::uint64_t first_seq, std::size_t count, std::span<const std::uint64_t> dropped,
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

bool EventQueue::out_of_time() noexcept {
  std::lock_guard lock(mutex_);
  return stop_requested_ && Clock::now() >= stop_deadline_;
}

void EventQueue::wait_before_retry(std::chrono::milliseconds backoff) noexcept {
  std::unique_lock lock(mutex_);
  const bool stopping_already = stop_requested_;
  auto until = Clock::now() + backoff;
  if (stopping_already) until = std::min(until, stop_deadline_);
  // A stop cuts the wait short so the deadline is re-evaluated; recorders waking the writer
  // do not (the store would only be hammered sooner).
  writer_wake_.wait_until(lock, until, [&] { return stop_requested_ && !stopping_already; });
}

std::size_t EventQueue::drop_everything() noexcept {
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
  return lost;
}

std::size_t EventQueue::depth() const noexcept {
  std::lock_guard lock(mutex_);
  return pending_.size() + in_flight_;
}

}  // namespace jobtrail::detail
