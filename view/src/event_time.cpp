#include "jobtrail/view/event_time.h"

#include <optional>

#include <fmt/format.h>

#include "jobtrail/view/time_format.h"

namespace jobtrail::view {
namespace {

/// Only instants between the years 1 and 9999 have an RFC 3339 spelling.
constexpr Micros first_printable = -62'135'596'800'000'000;  // 0001-01-01T00:00:00Z
constexpr Micros last_printable = 253'402'300'799'999'999;   // 9999-12-31T23:59:59.999999Z

std::string spelled(Micros at) {
  if (at < first_printable || at > last_printable) return "outside the years 1 to 9999";
  return format_rfc3339(at);
}

}  // namespace

std::string implausible_event_time(Micros at, Micros now) {
  if (is_plausible_event_time(at, now)) return {};
  std::optional<std::string> guess;
  if (const std::optional<TimeUnitGuess> unit = guess_time_unit(at, now)) {
    guess = fmt::format("as {} since the epoch it would be {}; send microseconds", unit->unit,
                        format_rfc3339(unit->micros));
  }
  if (at < EventTimeRule::earliest) {
    return fmt::format("is {}, before 2000-01-01: {}", spelled(at),
                       guess.value_or("a clock that was never set, or the wrong unit (send microseconds)"));
  }
  return fmt::format("is {}, more than a day ahead of this clock ({}): {}", spelled(at), format_rfc3339(now),
                     guess.value_or("a clock that is wrong, or the wrong unit (send microseconds)"));
}

}  // namespace jobtrail::view
