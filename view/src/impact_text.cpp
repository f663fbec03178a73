#include "jobtrail/view/impact_text.h"

#include <string_view>

#include <fmt/format.h>

#include "jobtrail/view/time_format.h"

namespace jobtrail::view {
namespace {

std::string plural(std::int64_t count, std::string_view one, std::string_view many) {
  return fmt::format("{} {}", count, count == 1 ? one : many);
}

}  // namespace

std::string impact_scope(const ImpactFilter& filter) {
  std::string line = filter.job.empty() ? "jobs of any class" : fmt::format("{} jobs", filter.job);
  if (filter.states.empty()) {
    line += " in any state";
  } else {
    line += " now ";
    for (std::size_t i = 0; i < filter.states.size(); ++i) {
      if (i > 0) line += i + 1 == filter.states.size() ? " or " : ", ";
      line += to_string(filter.states[i]);
    }
  }
  if (filter.since && filter.until) {
    line += fmt::format(", first seen from {} until {}", format_timestamp(*filter.since), format_timestamp(*filter.until));
  } else if (filter.since) {
    line += fmt::format(", first seen since {}", format_timestamp(*filter.since));
  } else if (filter.until) {
    line += fmt::format(", first seen before {}", format_timestamp(*filter.until));
  }
  return line;
}

std::string impact_summary(const ImpactFilter& filter, const ImpactReport& report) {
  std::string line = plural(report.matching_jobs, "job matched", "jobs matched");
  if (report.matching_jobs == 0) return line;
  // A read cut short at max_jobs: what follows is of the jobs read, and says so.
  if (!report.complete()) line += fmt::format("; of the newest {} read", report.read_jobs);
  const std::string tags =
      filter.entity_type.empty() ? "entities" : fmt::format("{} entities", filter.entity_type);
  if (report.tagged_jobs == 0) return fmt::format("{}, none tagged with {}", line, tags);
  line += fmt::format(", {} tagged with {}, {}", report.tagged_jobs, tags,
                      plural(report.entity_count, "distinct entity", "distinct entities"));
  std::string types;
  for (const auto& [type, count] : report.by_type) {
    types += fmt::format("{}{}: {}", types.empty() ? "" : ", ", type, count);
  }
  return fmt::format("{} ({})", line, types);
}

std::string impact_shown(const ImpactReport& report) {
  const auto shown = static_cast<std::int64_t>(report.entities.size());
  if (shown >= report.entity_count) return "";
  return fmt::format("showing {} of {} entities", shown, report.entity_count);
}

}  // namespace jobtrail::view
