#pragma once
/// \file
/// The one rule for the time of an event a worker reports (`"at"` over HTTP, `emit --at`):
/// taken as given, or refused with the reason when it cannot be true.

#include <string>

#include "jobtrail/event.h"

namespace jobtrail::view {

/// 2000-01-01T00:00:00Z: no job still worth looking at ran earlier; an earlier time is a
/// clock that was never set or a number in the wrong unit (seconds and milliseconds land in 1970).
inline constexpr Micros earliest_event_time = 946'684'800'000'000;

/// How far ahead of the receiver's clock an event may be: clock skew between hosts, not
/// nanoseconds (which land centuries ahead).
inline constexpr Micros max_event_time_ahead = 24LL * 3600 * 1'000'000;

/// Why `at` (microseconds since the Unix epoch, whichever form it came in) cannot be when a
/// job's event happened, or "" when it can. `now` is the receiver's clock. The reason says
/// what the time reads as and, when the number is plausible in seconds, milliseconds or
/// nanoseconds, names that unit, e.g. "is 1970-01-21T18:42:21.600000Z, before 2000-01-01:
/// as seconds since the epoch it would be 2026-11-22T10:00:00.000000Z; send microseconds".
/// Never throws for any input.
std::string implausible_event_time(Micros at, Micros now);

}  // namespace jobtrail::view
