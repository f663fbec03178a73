#pragma once
/// \file
/// Rate-limited problem reports: instrumentation that fails must say so, but a failing store
/// or a full queue must not flood the program's stderr with a line per event.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

namespace jobtrail {

/// Hands problem messages to a handler at most once per interval; the next message that gets
/// through says how many were suppressed in between. Never throws, whatever the handler does.
/// Thread-safe: any thread may report at once; the handler is never called concurrently.
class ErrorReporter {
 public:
  using Handler = std::function<void(std::string_view message)>;
  using Clock = std::chrono::steady_clock;

  /// `handler` empty means one line "jobtrail: <message>" on stderr.
  explicit ErrorReporter(Handler handler = {},
                         Clock::duration interval = std::chrono::seconds(1));

  /// Reports `message`, or counts it as suppressed if the last report was too recent.
  void report(std::string_view message) noexcept;

  /// Like report(), but builds the message only if it will be delivered: the hot path calls
  /// this on a drop and must not format strings that are then thrown away.
  template <typename MakeMessage>
  void report_lazily(MakeMessage&& make_message) noexcept {
    if (!may_report(Clock::now())) {
      suppressed_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    std::unique_lock lock(mutex_, std::try_to_lock);
    // A busy lock means another thread is reporting right now (or the handler itself reported
    // again): this message is one of the "similar" ones.
    if (!lock.owns_lock() || !claim_slot(Clock::now())) {
      suppressed_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    try {
      deliver(make_message());
    } catch (...) {
      // Building the message failed (out of memory): nothing sensible left to say.
    }
  }

  /// Delivers `message` whatever the rate limit says, for the one message that must not be
  /// lost (the tracker's last word at shutdown: nothing will come after it to carry a count).
  void report_always(std::string_view message) noexcept;

  /// Messages suppressed since the last one delivered.
  std::uint64_t suppressed() const noexcept { return suppressed_.load(std::memory_order_relaxed); }

 private:
  bool may_report(Clock::time_point now) const noexcept;
  /// Takes the next delivery slot; the caller holds mutex_.
  bool claim_slot(Clock::time_point now) noexcept;
  /// Appends the suppressed count and calls the handler; the caller holds mutex_.
  void deliver(std::string message) noexcept;

  Handler handler_;
  Clock::duration interval_;
  std::mutex mutex_;
  /// Earliest time of the next delivery, in Clock ticks; atomic so the common "too soon" case
  /// needs no lock.
  std::atomic<Clock::rep> next_allowed_{0};
  std::atomic<std::uint64_t> suppressed_{0};
};

}  // namespace jobtrail
