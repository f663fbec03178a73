// The duration and time syntax people type and read.

#include <catch2/catch.hpp>
#include <limits>

#include "jobtrail/view/output.h"
#include "jobtrail/view/time_format.h"

using namespace jobtrail;
using namespace jobtrail::view;

namespace {
constexpr Micros ms = 1000;
constexpr Micros second = 1000 * ms;
constexpr Micros minute = 60 * second;
constexpr Micros hour = 60 * minute;
constexpr Micros day = 24 * hour;
}  // namespace

TEST_CASE("durations print compactly and truncate", "[cli]") {
  CHECK(format_duration(0) == "0s");
  CHECK(format_duration(850) == "850µs");
  CHECK(format_duration(999) == "999µs");
  CHECK(format_duration(250 * ms) == "250ms");
  CHECK(format_duration(999'999) == "999ms");
  CHECK(format_duration(1'290 * ms) == "1.2s");
  CHECK(format_duration(9'999 * ms) == "9.9s");
  CHECK(format_duration(45 * second) == "45s");
  CHECK(format_duration(3 * minute + 5 * second) == "3m05s");
  CHECK(format_duration(8 * hour + 3 * minute + 59 * second) == "8h03m");
  CHECK(format_duration(2 * day + 4 * hour) == "2d04h");
  CHECK(format_duration(-1'200 * ms) == "-1.2s");
}

TEST_CASE("relative times say how long ago, or how far ahead, with the duration's spelling", "[cli][time]") {
  const Micros now = 1'503'964'377'123'456;
  CHECK(format_relative(now - 3 * minute - 5 * second, now) == "3m05s ago");
  CHECK(format_relative(now - 2 * hour, now) == "2h00m ago");
  CHECK(format_relative(now - 2 * day - 4 * hour, now) == "2d04h ago");
  CHECK(format_relative(now - 1'500 * ms, now) == "1.5s ago");
  // A worker whose clock runs ahead of this host's: its event is in the future.
  CHECK(format_relative(now + 5 * minute, now) == "in 5m00s");
  // Within a second either way, "850ms ago" would be noise.
  CHECK(format_relative(now, now) == "just now");
  CHECK(format_relative(now - 999'999, now) == "just now");
  CHECK(format_relative(now + 999'999, now) == "just now");
  CHECK(format_relative(now - second, now) == "1.0s ago");
}

TEST_CASE("timestamps print in UTC", "[cli]") {
  const Micros at = 1'503'964'377'123'456;  // 2017-08-28 23:52:57.123456 UTC
  CHECK(format_timestamp(at) == "2017-08-28 23:52:57.123Z");
  CHECK(format_rfc3339(at) == "2017-08-28T23:52:57.123456Z");
  CHECK(format_rfc3339(0) == "1970-01-01T00:00:00.000000Z");
  CHECK(format_timestamp(-1) == "1969-12-31 23:59:59.999Z");
}

TEST_CASE("durations parse in the units people type", "[cli]") {
  CHECK(parse_duration("90s") == 90 * second);
  CHECK(parse_duration("15m") == 15 * minute);
  CHECK(parse_duration("24h") == 24 * hour);
  CHECK(parse_duration("7d") == 7 * day);
  CHECK(parse_duration("250ms") == 250 * ms);
  CHECK(parse_duration("850us") == 850);
  CHECK(parse_duration("850µs") == 850);
  CHECK(parse_duration("1h30m") == 90 * minute);
  CHECK(parse_duration("3m05s") == 3 * minute + 5 * second);
  CHECK(parse_duration("1.5h") == 90 * minute);
  CHECK(parse_duration("0s") == 0);
  for (const char* bad : {"", "24", "h", "-5m", "5 m", "5x", "1.h", "5m ", "99999999999999d"}) {
    INFO(bad);
    CHECK_FALSE(parse_duration(bad));
  }
}

TEST_CASE("times parse as ISO-8601, dates or durations ago", "[cli]") {
  const Micros now = *parse_time("2026-11-22T10:00:00Z", 0);
  CHECK(format_rfc3339(now) == "2026-11-22T10:00:00.000000Z");
  CHECK(parse_time("24h", now) == now - 24 * hour);
  CHECK(parse_time("2026-11-22", now) == now - 10 * hour);
  CHECK(parse_time("2026-11-22T10:00Z", now) == now);
  CHECK(parse_time("2026-11-22 10:00:00", now) == now);
  CHECK(parse_time("2026-11-22T10:00:00.25Z", now) == now + 250 * ms);
  CHECK(parse_time("2026-11-22T11:00:00+01:00", now) == now);
  CHECK(parse_time("2026-11-22T05:30:00-0430", now) == now);
  for (const char* bad : {"2026-11-31", "2026-13-01", "2026-11-22T25:00Z", "2026-11-22T10:00:00Q", "22/11/2026",
                          "yesterday", "2026-11-22T"}) {
    INFO(bad);
    CHECK_FALSE(parse_time(bad, now));
  }
}

TEST_CASE("durations and times the grammar cannot represent are refused, never overflow", "[cli][time]") {
  constexpr Micros longest = 366'000 * day;  // 1000 years
  CHECK(parse_duration("366000d") == longest);
  CHECK(parse_duration("365999d23h59m59s999ms1000us") == longest);
  CHECK(parse_duration("0.999999d") == 86'399'913'600);
  // --since, --older-than, exec --every and --heartbeat all read this grammar.
  for (const char* huge : {"366001d", "366000d1us", "99999999999d", "999999999999d", "999999999999h",
                           "999999999999.999999d", "99999999999d99999999999d", "366000d366000d",
                           "300000d300000d", "9999999999999s", "9999999999999999999999ms"}) {
    INFO(huge);
    CHECK_FALSE(parse_duration(huge));
    CHECK_FALSE(parse_time(huge, 0));
  }
  // Going back from the oldest representable instant overflowed (UBSan) before it was refused.
  constexpr Micros oldest = std::numeric_limits<Micros>::min();
  CHECK_FALSE(parse_time("1us", oldest));
  CHECK_FALSE(parse_time("366000d", oldest + longest - 1));
  CHECK(parse_time("366000d", oldest + longest) == oldest);
  CHECK(parse_time("0s", oldest) == oldest);
  CHECK(parse_time("366000d", std::numeric_limits<Micros>::max()) == std::numeric_limits<Micros>::max() - longest);
  // The extremes of the ISO form stay in range.
  CHECK(parse_time("9999-12-31T23:59:60.999999-23:59", 0) == 253'402'387'140'999'999);
  CHECK(parse_time("0000-01-01T00:00:00+23:59", 0) == -62'167'305'540'000'000);
}

TEST_CASE("table cells cannot break rows or reach the terminal as escapes", "[cli]") {
  CHECK(printable("line one\nline two\t\x1b[31mred") == "line one\\nline two\\t\\x1b[31mred");
  CHECK(display_width("├─ 850µs") == 8);
}
