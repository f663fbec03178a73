#include "duration.h"

#include <cstdio>
#include <ctime>

namespace jobtrail::check {

std::optional<Micros> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  Micros total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t digits_end = i;
    while (digits_end < text.size() && text[digits_end] >= '0' && text[digits_end] <= '9') ++digits_end;
    if (digits_end == i || digits_end - i > 9) return std::nullopt;
    Micros number = 0;
    for (std::size_t d = i; d < digits_end; ++d) number = number * 10 + (text[d] - '0');
    std::size_t unit_end = digits_end;
    while (unit_end < text.size() && text[unit_end] >= 'a' && text[unit_end] <= 'z') ++unit_end;
    const auto unit = text.substr(digits_end, unit_end - digits_end);
    Micros scale = 0;
    if (unit == "ms") scale = 1000;
    else if (unit == "s") scale = 1'000'000;
    else if (unit == "m") scale = 60'000'000;
    else if (unit == "h") scale = 3'600'000'000;
    else if (unit == "d") scale = 86'400'000'000;
    else return std::nullopt;
    // Nine digits of days overflow 64 bits of microseconds: refuse rather than wrap.
    constexpr Micros longest = 100LL * 365 * 86'400'000'000;
    if (number > (longest - total) / scale) return std::nullopt;
    total += number * scale;
    i = unit_end;
  }
  return total;
}

std::string format_duration(Micros duration) {
  if (duration < 0) return "-" + format_duration(-duration);
  const Micros seconds = duration / 1'000'000;
  char text[32];
  if (duration < 1'000'000) {
    std::snprintf(text, sizeof text, "%lldms", static_cast<long long>(duration / 1000));
  } else if (seconds < 60) {
    std::snprintf(text, sizeof text, "%llds", static_cast<long long>(seconds));
  } else if (seconds < 3600) {
    std::snprintf(text, sizeof text, "%lldm%02llds", static_cast<long long>(seconds / 60), static_cast<long long>(seconds % 60));
  } else if (seconds < 86400) {
    std::snprintf(text, sizeof text, "%lldh%02lldm", static_cast<long long>(seconds / 3600),
                  static_cast<long long>(seconds % 3600 / 60));
  } else {
    std::snprintf(text, sizeof text, "%lldd%02lldh", static_cast<long long>(seconds / 86400),
                  static_cast<long long>(seconds % 86400 / 3600));
  }
  return text;
}

std::string format_rfc3339(Micros at) {
  std::time_t seconds = static_cast<std::time_t>(at / 1'000'000);
  if (at < 0 && at % 1'000'000 != 0) seconds -= 1;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace jobtrail::check
