#pragma once
/// \file
/// Durations and timestamps as an engineer on call reads and types them: the one grammar of
/// every command's options (--since, --every, --older-than, ...), of the HTTP API and of
/// checks.yaml (timeout, deadline, window).

#include <optional>
#include <string>
#include <string_view>

#include "jobtrail/event.h"

namespace jobtrail::view {

/// A compact, truncated duration: "850µs", "250ms", "1.2s", "45s", "3m05s", "8h03m",
/// "2d04h"; "0s" for zero and a leading "-" for a negative span (clock skew between hosts).
std::string format_duration(Micros duration);

/// How far `at` is from `now`, for people: "3m05s ago", "in 5m00s" (a time ahead of now: a
/// worker's clock ahead of this host's), "just now" within a second either way. The span is
/// format_duration's, so it reads like every other duration here.
std::string format_relative(Micros at, Micros now);

/// UTC with milliseconds for tables: "2026-11-22 23:52:57.123Z".
std::string format_timestamp(Micros at);

/// RFC 3339 in UTC with microseconds for JSON: "2026-11-22T23:52:57.123456Z".
std::string format_rfc3339(Micros at);

/// RFC 3339 in UTC to the second, for reports that name days and hours:
/// "2026-11-22T23:52:57Z" (truncated, like every display here).
std::string format_rfc3339_seconds(Micros at);

/// The longest duration the grammar accepts: 366,000 days (1000 years). Anything longer is a
/// typo, and staying this far below INT64_MAX microseconds keeps every sum with a timestamp
/// (`now - window`, a deadline) clear of overflow.
inline constexpr Micros longest_duration = 366'000LL * 86'400'000'000LL;

/// Parses a duration such as "90s", "15m", "24h", "7d", "250ms", "850us", "850µs", "1h30m" or
/// "1.5h". Nothing for anything else, including a bare number (seconds? days?) and a total
/// longer than `longest_duration`; then `too_long`, when given, is set, so a message can say why.
std::optional<Micros> parse_duration(std::string_view text, bool* too_long = nullptr);

/// Parses a point in time: an ISO-8601 timestamp ("2026-11-22T10:00:00Z", fractions and
/// "+01:00" offsets allowed, UTC when no offset is given), a date ("2026-11-22", midnight
/// UTC) or a duration meaning that long before `now` ("24h").
std::optional<Micros> parse_time(std::string_view text, Micros now);

/// What --since, --until, --at and --now accept, for help texts and error messages.
inline constexpr const char* time_syntax_help =
    "a duration ago (90s, 15m, 24h, 7d) or a UTC time (2026-11-22T10:00:00Z, 2026-11-22)";

}  // namespace jobtrail::view
