#pragma once
/// \file
/// The one way into a history: what the tracker's writer needs of a store, apart from
/// everything readers need (store.h). Names neither SQLite nor libpq.

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "jobtrail/event.h"

namespace jobtrail {

namespace detail {
class TrackerWriter;
}

/// A job whose derived row changed outcome in one append, for metrics.
struct Transition {
  std::string job;
  std::string queue;
  State state = State::enqueued;
  std::optional<Micros> wait;  ///< set on `started` when the enqueue time is known
  std::optional<Micros> run;   ///< set on an attempt's end when its start is known
};

/// The outcome of one append.
struct AppendResult {
  std::size_t stored = 0;      ///< events written
  std::size_t duplicates = 0;  ///< exact redeliveries of an event already stored, skipped
  std::size_t anomalies = 0;   ///< impossible sequences flagged
  std::vector<Transition> transitions;
};

/// Every failure of a store. `transient()` says whether retrying the same call may succeed.
class StoreError : public std::runtime_error {
 public:
  enum class Kind {
    invalid_url,     ///< the URL names no store we know
    not_found,       ///< the store does not exist and was not to be created
    cannot_open,     ///< permissions, a directory, a bad path
    not_a_store,     ///< the file is a database, but not jobtrail's
    schema_too_new,  ///< written by a newer jobtrail
    busy,            ///< locked by another writer beyond the busy timeout
    io,              ///< disk full, I/O error
    read_only,       ///< a write on a store opened read-only
    invalid_event,   ///< an event that fails validation_error()
    other,
  };
  StoreError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }
  bool transient() const noexcept { return kind_ == Kind::busy || kind_ == Kind::io; }

 private:
  Kind kind_;
};

/// Events checked once, where they entered: each passes validation_error() and has a time.
/// Made from a caller's plain events by the constructor (Store::append does it), or by the
/// tracker's writer from events its record() checked one by one. Holds a copy only when it had
/// to stamp a time. Not thread-safe; lives for one append.
class CheckedEvents {
 public:
  /// Validates `events` (throws StoreError invalid_event naming the first bad one) and stamps
  /// those without a time with the time of this call, once, so a retry of the same
  /// CheckedEvents sends the same times. `events` must outlive the result.
  explicit CheckedEvents(const std::vector<Event>& events);

  const std::vector<Event>& events() const noexcept { return stamped_ ? *stamped_ : original_; }

 private:
  friend class detail::TrackerWriter;  // record() validated and stamped each of its events
  struct Trusted {};
  CheckedEvents(const std::vector<Event>& events, Trusted) noexcept : original_(events) {}

  const std::vector<Event>& original_;
  std::optional<std::vector<Event>> stamped_;
};

/// Writes events into a history. Not thread-safe: one per thread.
class HistoryWriter {
 public:
  virtual ~HistoryWriter() = default;

  /// Stores `events` in one transaction and updates the derived job rows. Events may be
  /// late, out of order or repeated. Throws StoreError; on a throw nothing is stored.
  virtual AppendResult append_checked(const CheckedEvents& events) = 0;
};

}  // namespace jobtrail
