#pragma once
// Durations and timestamps in the checker's config and rows, the way the CLI writes them.

#include <optional>
#include <string>
#include <string_view>

#include "jobtrail/event.h"

namespace jobtrail::check {

/// The longest duration the grammar accepts: 366,000 days (1000 years, as the CLI's grammar).
/// Anything longer is a typo, and staying this far below INT64_MAX microseconds keeps every sum
/// with a timestamp (`now - window`, a deadline) clear of overflow.
inline constexpr Micros longest_duration = 366'000LL * 86'400'000'000LL;

/// "500ms", "30s", "15m", "2h", "7d", "1h30m"; nothing for anything else (a bare number is
/// ambiguous: seconds? minutes?), including a total longer than `longest_duration` (then
/// `too_long`, when given, is set, so the message can say why).
std::optional<Micros> parse_duration(std::string_view text, bool* too_long = nullptr);

/// "45s", "3m05s", "8h03m", "2d04h".
std::string format_duration(Micros duration);

/// RFC 3339 UTC with seconds: "2026-11-22T23:52:57Z".
std::string format_rfc3339(Micros at);

}  // namespace jobtrail::check
