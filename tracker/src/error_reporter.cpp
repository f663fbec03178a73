#include "error_reporter.h"

#include <cstdio>
#include <utility>

namespace jobtrail {

ErrorReporter::ErrorReporter(Handler handler, Clock::duration interval)
    : handler_(std::move(handler)), interval_(interval) {}

void ErrorReporter::report(std::string_view message) noexcept {
  report_lazily([message] { return std::string(message); });
}

void ErrorReporter::report_always(std::string_view message) noexcept {
  try {
    std::lock_guard lock(mutex_);
    next_allowed_.store((Clock::now() + interval_).time_since_epoch().count(), std::memory_order_relaxed);
    deliver(std::string(message));
  } catch (...) {
    // Out of memory copying the message, or a lock error: nothing left to report with.
  }
}

bool ErrorReporter::may_report(Clock::time_point now) const noexcept {
  return now.time_since_epoch().count() >= next_allowed_.load(std::memory_order_relaxed);
}

bool ErrorReporter::claim_slot(Clock::time_point now) noexcept {
  // Checked again under the lock: another thread may have delivered since may_report().
  if (!may_report(now)) return false;
  next_allowed_.store((now + interval_).time_since_epoch().count(), std::memory_order_relaxed);
  return true;
}

void ErrorReporter::deliver(std::string message) noexcept {
  const std::uint64_t suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
  try {
    if (suppressed > 0) {
      message += " (" + std::to_string(suppressed) + " similar message" + (suppressed == 1 ? "" : "s") +
                 " suppressed)";
    }
    if (handler_) {
      handler_(message);
    } else {
      // One write per line so that lines from several threads or processes do not interleave.
      std::fprintf(stderr, "jobtrail: %.*s\n", static_cast<int>(message.size()), message.data());
    }
  } catch (...) {
    // A throwing handler must not take the instrumented program down; the report is lost.
  }
}

}  // namespace jobtrail
