#pragma once
/// \file
/// The vocabulary of jobtrail: lifecycle states and the event a worker records.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace jobtrail {

/// Microseconds since the Unix epoch, UTC.
using Micros = std::int64_t;

/// The current wall-clock time in microseconds.
Micros now_micros() noexcept;

/// A job's lifecycle. `heartbeat` is only ever an event, never the state of a job.
/// The numeric values are stored on disk: never renumber them.
enum class State : std::uint8_t {
  enqueued = 1,
  started = 2,
  heartbeat = 3,
  succeeded = 4,
  failed = 5,     ///< one attempt failed; the job may be retried
  dead = 6,       ///< the job gave up for good
  cancelled = 7,
};

/// "enqueued", "started", ...
std::string_view to_string(State state) noexcept;
/// The state named `name`, or nothing for an unknown name.
std::optional<State> parse_state(std::string_view name) noexcept;
/// True for states after which nothing more is expected: succeeded, dead, cancelled.
bool is_final(State state) noexcept;
/// True for states that end an attempt: succeeded, failed, dead, cancelled.
bool ends_attempt(State state) noexcept;
/// Every state, in numeric order (for help texts and validation messages).
const std::vector<State>& all_states();

/// What went wrong in a failed attempt.
struct ErrorInfo {
  std::string error_class;  ///< e.g. "Net::ReadTimeout", "std::runtime_error"
  std::string message;
  std::string backtrace;

  bool empty() const noexcept { return error_class.empty() && message.empty() && backtrace.empty(); }
  friend bool operator==(const ErrorInfo&, const ErrorInfo&) = default;
};

/// One lifecycle transition of one job. Only `job_id` and `state` are required; the rest
/// is filled in by whoever knows it (the enqueuer knows the queue and correlation ID, the
/// worker the attempt and the error).
struct Event {
  std::string job_id;            ///< the caller's unique ID for the job
  State state = State::enqueued;
  Micros at = 0;                 ///< when it happened; 0 means "now, when recorded"
  std::string job;               ///< job class or name, e.g. "WelcomeEmailJob"
  std::string queue;
  std::string correlation_id;    ///< the request that caused the job
  std::string parent_job_id;     ///< the job that enqueued this one, if any
  std::string idempotency_key;   ///< two successes under one key are flagged
  std::int32_t attempt = 0;      ///< 1 for the first run; 0 means "not given" and counts as 1
  std::string worker;            ///< host:pid or any name for whoever ran it
  ErrorInfo error;
  std::vector<std::string> entities;  ///< business objects as "type:id", e.g. "user:42"

  friend bool operator==(const Event&, const Event&) = default;
};

/// Bounds on every event, so a runaway caller cannot fill the store or the memory. IDs, job
/// class, queue and entities are keys: a longer one is refused, never altered. Free text (the
/// worker, the error class, message and backtrace) is cut to its limit by
/// truncate_free_text() instead, so a long message never costs the event (docs/events.md).
struct EventLimits {
  static constexpr std::size_t max_id_length = 200;          ///< job, parent, correlation IDs, keys
  static constexpr std::size_t max_name_length = 200;        ///< job class, queue, worker, error class
  static constexpr std::size_t max_message_length = 8 * 1024;
  static constexpr std::size_t max_backtrace_length = 64 * 1024;
  static constexpr std::size_t max_entities = 64;
  static constexpr std::size_t max_entity_length = 200;
};

/// What ends a text that truncate_free_text() cut, followed by how many bytes were sent and
/// " bytes]": "…[truncated from 9216 bytes]". The text and the marker together keep to the limit.
inline constexpr std::string_view truncation_marker = "\xE2\x80\xA6[truncated from ";  // "…[truncated from "

/// Which free-text fields truncate_free_text() cut.
struct Truncation {
  bool worker = false;
  bool error_class = false;
  bool message = false;
  bool backtrace = false;

  bool any() const noexcept { return worker || error_class || message || backtrace; }
  /// The names of the cut fields as the HTTP API spells them: "error.message", "worker", ...
  std::vector<std::string_view> fields() const;
};

/// Cuts each free-text field of `event` longer than its limit (EventLimits) to fit, between
/// UTF-8 characters, ending it with truncation_marker and the length that was sent. The one
/// rule for every way in: Tracker::record(), Store::append(), `jobtrail emit` and serve all
/// call it, and a cut text is never cut again. Returns what it cut. Allocates nothing (the
/// cut happens in place), so it is cheap enough for record().
Truncation truncate_free_text(Event& event) noexcept;
/// Whether truncate_free_text() would cut anything in `event`.
bool has_over_long_text(const Event& event) noexcept;

/// The one rule for when a reported event can have happened (every way in applies it: the
/// tracker's record(), `jobtrail emit --at`, serve's "at"): not before 2000-01-01T00:00:00Z,
/// when no job still worth looking at ran (earlier is a clock never set, or seconds or
/// milliseconds, which land in 1970), and at most a day ahead of the receiver's clock (clock
/// skew between hosts, not nanoseconds, which land centuries ahead).
struct EventTimeRule {
  static constexpr Micros earliest = 946'684'800'000'000;
  static constexpr Micros max_ahead = 24LL * 3600 * 1'000'000;
};

/// Whether `at` (microseconds since the epoch) passes EventTimeRule by the clock `now`.
bool is_plausible_event_time(Micros at, Micros now) noexcept;

/// An implausible time that is plausible read in another unit.
struct TimeUnitGuess {
  std::string_view unit;  ///< "seconds", "milliseconds" or "nanoseconds"
  Micros micros = 0;      ///< what the number means in that unit
};
/// The unit `number` was most likely sent in when it is not plausible as microseconds.
std::optional<TimeUnitGuess> guess_time_unit(Micros number, Micros now) noexcept;

/// Why `at` cannot be when an event happened by the clock `now` (EventTimeRule), or "". The
/// command line and serve spell the time out as well (jobtrail/view/event_time.h).
std::string event_time_problem(Micros at, Micros now);

/// Why `event` cannot be recorded, or an empty string if it can. Over-long free text is no
/// reason (see truncate_free_text(), which every store applies before writing).
std::string validation_error(const Event& event);

class Tracker;
struct EventCheck;

/// An event that passed check_event(): its free text cut to the limits, validation_error()
/// empty, and `at` either 0 (stamped when recorded) or within EventTimeRule. Only
/// check_event() makes one, so Tracker::record() takes it without checking it again.
/// Not thread-safe.
class CheckedEvent {
  /// What only check_event() can name, so only it can call the constructor (which is public
  /// so that std::optional can construct in place, without another move of the event).
  class Key {
    friend EventCheck check_event(Event& event, Micros now);
    Key() = default;
  };

 public:
  CheckedEvent(Key, Event&& event) noexcept : event_(std::move(event)) {}
  const Event& event() const noexcept { return event_; }

 private:
  friend class Tracker;  // moves the event into its queue
  friend EventCheck check_event(Event& event, Micros now);

  Event event_;
};

/// What check_event() made of an event.
struct EventCheck {
  std::optional<CheckedEvent> checked;  ///< the event, when it passed
  Truncation cut;                       ///< what was cut, passed or not
  bool implausible_time = false;        ///< refused for `at` alone (EventTimeRule)
  std::string problem;                  ///< why not, in the tracker's words ("" when it passed)
};

/// The one check of an event where it enters, the rules in this order: EventTimeRule on a
/// nonzero `at` by the clock `now` (event_time_problem()), free text cut (truncate_free_text()),
/// then validation_error(). On success `event` is moved into `checked`; otherwise it is left
/// for the caller's report, cut. Tracker::record(Event) applies exactly this; `jobtrail serve`
/// calls it as it decodes, to answer the client, and records what it returns.
EventCheck check_event(Event& event, Micros now);

/// Checks an entity tag: "type:id" with a type of [a-z0-9_.-]+ and a non-empty id.
bool is_valid_entity(std::string_view entity) noexcept;

/// Whether `text` is valid UTF-8 without NUL bytes: what every store can keep as text (IDs,
/// names and entities must be; PostgreSQL refuses anything else).
bool is_utf8_text(std::string_view text) noexcept;
/// `text` with every byte that is not part of valid UTF-8, and every NUL, replaced by U+FFFD:
/// error messages and backtraces are kept whatever encoding the program wrote them in.
std::string to_utf8_text(std::string_view text);

}  // namespace jobtrail
