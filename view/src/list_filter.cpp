#include "jobtrail/view/list_filter.h"

#include <charconv>

#include <fmt/format.h>

#include "jobtrail/view/job_view.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::view {

std::string set_filter_term(JobFilter& filter, std::string_view name, std::string_view value, Micros now,
                            std::string_view shown_as, std::size_t max_limit) {
  if (name == "state") {
    const std::optional<State> state = parse_job_state(value);
    if (!state) return fmt::format("unknown job state '{}' for {} (valid: {})", value, shown_as, job_state_names());
    filter.state = state;
  } else if (name == "job") {
    filter.job = value;
  } else if (name == "queue") {
    filter.queue = value;
  } else if (name == "entity") {
    if (!is_valid_entity(value)) {
      return fmt::format("bad {} '{}': expected type:id like user:42 (type of a-z, 0-9, _ . -)", shown_as, value);
    }
    filter.entity = value;
  } else if (name == "since" || name == "until") {
    const std::optional<Micros> at = parse_time(value, now);
    if (!at) return fmt::format("bad {} '{}': expected {}", shown_as, value, time_syntax_help);
    (name == "since" ? filter.since : filter.until) = at;
  } else if (name == "anomalies") {
    if (value != "true" && value != "1" && value != "false" && value != "0") {
      return fmt::format("bad {} '{}': expected true, false, 1 or 0", shown_as, value);
    }
    filter.anomalies_only = value == "true" || value == "1";
  } else if (name == "limit") {
    std::size_t limit = 0;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), limit);
    if (error != std::errc() || end != value.data() + value.size() || limit < 1 || limit > max_limit) {
      return fmt::format("bad {} '{}': expected 1 to {}", shown_as, value, max_limit);
    }
    filter.limit = limit;
  } else {
    return fmt::format("unknown parameter '{}' (known: {})", name, filter_term_names);
  }
  return {};
}

}  // namespace jobtrail::view
