#pragma once
/// \file
/// The vocabulary of jobtrail: lifecycle states and the event a worker records.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
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

/// Bounds on every event, so a runaway caller cannot fill the store or the memory.
struct EventLimits {
  static constexpr std::size_t max_id_length = 200;          ///< job, parent, correlation IDs, keys
  static constexpr std::size_t max_name_length = 200;        ///< job class, queue, worker, error class
  static constexpr std::size_t max_message_length = 8 * 1024;
  static constexpr std::size_t max_backtrace_length = 64 * 1024;
  static constexpr std::size_t max_entities = 64;
  static constexpr std::size_t max_entity_length = 200;
};

/// Why `event` cannot be recorded, or an empty string if it can.
std::string validation_error(const Event& event);

/// Checks an entity tag: "type:id" with a type of [a-z0-9_.-]+ and a non-empty id.
bool is_valid_entity(std::string_view entity) noexcept;

/// Whether `text` is valid UTF-8 without NUL bytes: what every store can keep as text (IDs,
/// names and entities must be; PostgreSQL refuses anything else).
bool is_utf8_text(std::string_view text) noexcept;
/// `text` with every byte that is not part of valid UTF-8, and every NUL, replaced by U+FFFD:
/// error messages and backtraces are kept whatever encoding the program wrote them in.
std::string to_utf8_text(std::string_view text);

}  // namespace jobtrail
