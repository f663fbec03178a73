#pragma once
// Durations and timestamps in the checker's config and rows, the way the CLI writes them.

#include <optional>
#include <string>
#include <string_view>

#include "jobtrail/event.h"

namespace jobtrail::check {

/// "500ms", "30s", "15m", "2h", "7d", "1h30m"; nothing for anything else (a bare number is
/// ambiguous: seconds? minutes?).
std::optional<Micros> parse_duration(std::string_view text);

/// "45s", "3m05s", "8h03m", "2d04h".
std::string format_duration(Micros duration);

/// RFC 3339 UTC with seconds: "2026-11-22T23:52:57Z".
std::string format_rfc3339(Micros at);

}  // namespace jobtrail::check
