#include "jobtrail/view/time_format.h"

#include <chrono>
#include <cstdint>
#include <limits>

#include <fmt/format.h>

namespace jobtrail::view {
namespace {

constexpr Micros micros_per_ms = 1000;
constexpr Micros micros_per_second = 1000 * micros_per_ms;
constexpr Micros micros_per_minute = 60 * micros_per_second;
constexpr Micros micros_per_hour = 60 * micros_per_minute;
constexpr Micros micros_per_day = 24 * micros_per_hour;

struct CivilTime {
  std::chrono::year_month_day date;
  std::chrono::hh_mm_ss<std::chrono::microseconds> time_of_day{std::chrono::microseconds{0}};
};

CivilTime to_civil(Micros at) {
  using namespace std::chrono;
  const sys_time<microseconds> point{microseconds{at}};
  const auto day = floor<days>(point);
  return {year_month_day{day}, hh_mm_ss<microseconds>{point - day}};
}

std::string format_with_fraction(Micros at, char date_time_separator, bool microsecond_precision) {
  const CivilTime civil = to_civil(at);
  const auto fraction = civil.time_of_day.subseconds().count();
  return fmt::format("{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}.{}Z", static_cast<int>(civil.date.year()),
                     static_cast<unsigned>(civil.date.month()), static_cast<unsigned>(civil.date.day()),
                     date_time_separator, civil.time_of_day.hours().count(),
                     civil.time_of_day.minutes().count(), civil.time_of_day.seconds().count(),
                     microsecond_precision ? fmt::format("{:06}", fraction)
                                           : fmt::format("{:03}", fraction / 1000));
}

// A tiny cursor over the text being parsed; every reader returns false without consuming
// anything meaningful when the text does not fit, and the caller gives up.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  bool at_end() const { return position_ == text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[position_]; }
  bool accept(char expected) {
    if (peek() != expected) return false;
    ++position_;
    return true;
  }
  bool accept(std::string_view expected) {
    if (text_.substr(position_, expected.size()) != expected) return false;
    position_ += expected.size();
    return true;
  }
  bool is_digit() const { return peek() >= '0' && peek() <= '9'; }

  /// Exactly `count` digits.
  bool read_fixed(int count, int& value) {
    value = 0;
    for (int i = 0; i < count; ++i) {
      if (!is_digit()) return false;
      value = value * 10 + (text_[position_++] - '0');
    }
    return true;
  }

  /// One or more digits, at most 18 (so the value fits an int64 whatever they are).
  bool read_number(std::int64_t& value, int& digits) {
    value = 0;
    digits = 0;
    while (is_digit()) {
      if (++digits > 18) return false;
      value = value * 10 + (text_[position_++] - '0');
    }
    return digits > 0;
  }

 private:
  std::string_view text_;
  std::size_t position_ = 0;
};

std::optional<Micros> unit_length(Scanner& scanner) {
  // Longer spellings first: "ms" before "m".
  if (scanner.accept("ms")) return micros_per_ms;
  if (scanner.accept("us") || scanner.accept("µs")) return 1;
  if (scanner.accept('s')) return micros_per_second;
  if (scanner.accept('m')) return micros_per_minute;
  if (scanner.accept('h')) return micros_per_hour;
  if (scanner.accept('d')) return micros_per_day;
  return std::nullopt;
}

std::int64_t power_of_ten(int exponent) {
  std::int64_t result = 1;
  while (exponent-- > 0) result *= 10;
  return result;
}

std::optional<Micros> parse_iso_time(std::string_view text) {
  using namespace std::chrono;
  Scanner scanner(text);
  int year = 0, month = 0, day = 0;
  if (!scanner.read_fixed(4, year) || !scanner.accept('-') || !scanner.read_fixed(2, month) ||
      !scanner.accept('-') || !scanner.read_fixed(2, day)) {
    return std::nullopt;
  }
  const year_month_day date{std::chrono::year{year}, std::chrono::month{static_cast<unsigned>(month)},
                            std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok()) return std::nullopt;
  Micros at = duration_cast<microseconds>(sys_days{date}.time_since_epoch()).count();
  if (scanner.at_end()) return at;

  if (!scanner.accept('T') && !scanner.accept('t') && !scanner.accept(' ')) return std::nullopt;
  int hour = 0, minute = 0, second = 0;
  if (!scanner.read_fixed(2, hour) || !scanner.accept(':') || !scanner.read_fixed(2, minute)) {
    return std::nullopt;
  }
  if (scanner.accept(':') && !scanner.read_fixed(2, second)) return std::nullopt;
  if (hour > 23 || minute > 59 || second > 60) return std::nullopt;  // 60: a leap second
  at += hour * micros_per_hour + minute * micros_per_minute + second * micros_per_second;

  if (scanner.accept('.') || scanner.accept(',')) {
    std::int64_t fraction = 0;
    int digits = 0;
    if (!scanner.read_number(fraction, digits) || digits > 9) return std::nullopt;
    // Keep microseconds; finer digits are dropped (truncated, like every display here).
    at += digits <= 6 ? fraction * power_of_ten(6 - digits) : fraction / power_of_ten(digits - 6);
  }

  if (scanner.accept('Z') || scanner.accept('z')) {
    // UTC, as stated
  } else if (scanner.peek() == '+' || scanner.peek() == '-') {
    const bool ahead_of_utc = scanner.accept('+');
    if (!ahead_of_utc) scanner.accept('-');
    int offset_hours = 0, offset_minutes = 0;
    if (!scanner.read_fixed(2, offset_hours)) return std::nullopt;
    scanner.accept(':');
    if (!scanner.read_fixed(2, offset_minutes)) return std::nullopt;
    if (offset_hours > 23 || offset_minutes > 59) return std::nullopt;
    const Micros offset = offset_hours * micros_per_hour + offset_minutes * micros_per_minute;
    // 10:00+01:00 is 09:00 UTC.
    at += ahead_of_utc ? -offset : offset;
  }
  if (!scanner.at_end()) return std::nullopt;
  return at;
}

}  // namespace

std::string format_duration(Micros duration) {
  if (duration == 0) return "0s";
  if (duration < 0) {
    // Negating the most negative value would overflow; no real span gets near it.
    if (duration == std::numeric_limits<Micros>::min()) return "-∞";
    return "-" + format_duration(-duration);
  }
  if (duration < micros_per_ms) return fmt::format("{}µs", duration);
  if (duration < micros_per_second) return fmt::format("{}ms", duration / micros_per_ms);
  if (duration < 10 * micros_per_second) {
    return fmt::format("{}.{}s", duration / micros_per_second, duration / 100'000 % 10);
  }
  if (duration < micros_per_minute) return fmt::format("{}s", duration / micros_per_second);
  if (duration < micros_per_hour) {
    return fmt::format("{}m{:02}s", duration / micros_per_minute,
                       duration % micros_per_minute / micros_per_second);
  }
  if (duration < micros_per_day) {
    return fmt::format("{}h{:02}m", duration / micros_per_hour,
                       duration % micros_per_hour / micros_per_minute);
  }
  return fmt::format("{}d{:02}h", duration / micros_per_day, duration % micros_per_day / micros_per_hour);
}

std::string format_relative(Micros at, Micros now) {
  // Times are of the years 0 to 9999 (all the grammar reads): their difference fits an int64.
  const Micros ago = now - at;
  if (ago > -micros_per_second && ago < micros_per_second) return "just now";
  return ago > 0 ? format_duration(ago) + " ago" : "in " + format_duration(-ago);
}

std::string format_timestamp(Micros at) { return format_with_fraction(at, ' ', false); }

std::string format_rfc3339(Micros at) { return format_with_fraction(at, 'T', true); }

std::string format_rfc3339_seconds(Micros at) {
  const CivilTime civil = to_civil(at);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", static_cast<int>(civil.date.year()),
                     static_cast<unsigned>(civil.date.month()), static_cast<unsigned>(civil.date.day()),
                     civil.time_of_day.hours().count(), civil.time_of_day.minutes().count(),
                     civil.time_of_day.seconds().count());
}

std::optional<Micros> parse_duration(std::string_view text, bool* too_long) {
  if (too_long) *too_long = false;
  const auto refuse_as_too_long = [&]() -> std::optional<Micros> {
    if (too_long) *too_long = true;
    return std::nullopt;
  };
  Scanner scanner(text);
  if (scanner.at_end()) return std::nullopt;
  Micros total = 0;
  while (!scanner.at_end()) {
    std::int64_t whole = 0, fraction = 0;
    int whole_digits = 0, fraction_digits = 0;
    if (!scanner.read_number(whole, whole_digits)) return std::nullopt;
    if (scanner.accept('.') && !scanner.read_number(fraction, fraction_digits)) return std::nullopt;
    if (fraction_digits > 6) return std::nullopt;
    const std::optional<Micros> unit = unit_length(scanner);
    if (!unit) return std::nullopt;
    // Checked before multiplying and adding: "202261888d" or "99999999d99999999d" would
    // overflow (undefined behaviour); each term and the total stay within the bound.
    if (whole > longest_duration / *unit) return refuse_as_too_long();
    total += whole * *unit + fraction * *unit / power_of_ten(fraction_digits);
    if (total > longest_duration) return refuse_as_too_long();
  }
  return total;
}

std::optional<Micros> parse_time(std::string_view text, Micros now) {
  // A duration never starts with four digits and a dash, so the two cannot be confused.
  if (const auto ago = parse_duration(text)) {
    // A `now` near the oldest representable instant leaves no room for going back.
    if (now < std::numeric_limits<Micros>::min() + *ago) return std::nullopt;
    return now - *ago;
  }
  return parse_iso_time(text);
}

}  // namespace jobtrail::view
