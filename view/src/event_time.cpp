#include "jobtrail/view/event_time.h"

#include <limits>
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

bool plausible(Micros at, Micros now) {
  return at >= earliest_event_time && at <= now + max_event_time_ahead;
}

/// The same number read as another unit, when that reading is plausible.
std::optional<std::string> unit_guess(Micros number, Micros now) {
  constexpr Micros max = std::numeric_limits<Micros>::max();
  const struct {
    const char* unit;
    Micros multiply;
    Micros divide;
  } readings[] = {{"seconds", 1'000'000, 1}, {"milliseconds", 1'000, 1}, {"nanoseconds", 1, 1'000}};
  for (const auto& reading : readings) {
    if (number > max / reading.multiply || number < -(max / reading.multiply)) continue;
    const Micros as_micros = number * reading.multiply / reading.divide;
    if (plausible(as_micros, now)) {
      return fmt::format("as {} since the epoch it would be {}; send microseconds", reading.unit,
                         format_rfc3339(as_micros));
    }
  }
  return std::nullopt;
}

}  // namespace

std::string implausible_event_time(Micros at, Micros now) {
  if (plausible(at, now)) return {};
  const std::optional<std::string> guess = unit_guess(at, now);
  if (at < earliest_event_time) {
    return fmt::format("is {}, before 2000-01-01: {}", spelled(at),
                       guess.value_or("a clock that was never set, or the wrong unit (send microseconds)"));
  }
  return fmt::format("is {}, more than a day ahead of this clock ({}): {}", spelled(at), format_rfc3339(now),
                     guess.value_or("a clock that is wrong, or the wrong unit (send microseconds)"));
}

}  // namespace jobtrail::view
