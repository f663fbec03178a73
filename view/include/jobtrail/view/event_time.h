#pragma once
/// \file
/// The one rule for the time of an event a worker reports (`"at"` over HTTP, `emit --at`):
/// taken as given, or refused with the reason when it cannot be true. The rule itself is the
/// tracker's (EventTimeRule in jobtrail/event.h); this spells the reason out with dates.

#include <string>

#include "jobtrail/event.h"

namespace jobtrail::view {

/// Why `at` (microseconds since the Unix epoch, whichever form it came in) cannot be when a
/// job's event happened, or "" when it can. `now` is the receiver's clock. The reason says
/// what the time reads as and, when the number is plausible in seconds, milliseconds or
/// nanoseconds, names that unit, e.g. "is 1970-01-21T18:42:21.600000Z, before 2000-01-01:
/// as seconds since the epoch it would be 2026-11-22T10:00:00.000000Z; send microseconds".
/// Never throws for any input.
std::string implausible_event_time(Micros at, Micros now);

}  // namespace jobtrail::view
