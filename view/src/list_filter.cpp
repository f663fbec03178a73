#include "jobtrail/view/list_filter.h"

#include <charconv>
#include <stdexcept>

#include <fmt/format.h>

#include "jobtrail/view/job_view.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::view {
namespace {

// The terms a job list and `impact` share, read one way for both.

std::string states_term(std::vector<State>& states, std::string_view value, std::string_view shown_as) {
  try {
    states = parse_job_states(value);
  } catch (const std::invalid_argument& error) {
    return fmt::format("{} in {} '{}' (valid: {}; several comma-separated)", error.what(), shown_as, value,
                       job_state_names());
  }
  return {};
}

std::string time_term(std::optional<Micros>& at, std::string_view value, Micros now, std::string_view shown_as) {
  at = parse_time(value, now);
  if (!at) return fmt::format("bad {} '{}': expected {}", shown_as, value, time_syntax_help);
  return {};
}

std::string count_term(std::size_t& count, std::string_view value, std::size_t least, std::size_t most,
                       std::string_view shown_as) {
  std::size_t parsed = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), parsed);
  if (error != std::errc() || end != value.data() + value.size() || parsed < least || parsed > most) {
    return fmt::format("bad {} '{}': expected {} to {}", shown_as, value, least, most);
  }
  count = parsed;
  return {};
}

}  // namespace

std::string set_filter_term(JobFilter& filter, std::string_view name, std::string_view value, Micros now,
                            std::string_view shown_as, std::size_t max_limit) {
  if (name == "state") {
    return states_term(filter.states, value, shown_as);
  } else if (name == "cursor") {
    filter.after = parse_cursor(value);
    if (!filter.after) {
      return fmt::format("bad {} '{}': not a cursor jobtrail gave (take the one the page before ended with: "
                         "the \"more:\" note of ls, \"next\" in JSON)",
                         shown_as, value);
    }
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
    return time_term(name == "since" ? filter.since : filter.until, value, now, shown_as);
  } else if (name == "anomalies") {
    if (value != "true" && value != "1" && value != "false" && value != "0") {
      return fmt::format("bad {} '{}': expected true, false, 1 or 0", shown_as, value);
    }
    filter.anomalies_only = value == "true" || value == "1";
  } else if (name == "limit") {
    return count_term(filter.limit, value, 1, max_limit, shown_as);
  } else {
    return fmt::format("unknown parameter '{}' (known: {})", name, filter_term_names);
  }
  return {};
}

}  // namespace jobtrail::view

namespace jobtrail::view {

bool is_impact_term(std::string_view name) {
  // Read off the list the messages show, so that the two cannot differ.
  std::string_view names = impact_term_names;
  while (!names.empty()) {
    const std::size_t comma = names.find(", ");
    if (names.substr(0, comma) == name) return true;
    names = comma == std::string_view::npos ? std::string_view() : names.substr(comma + 2);
  }
  return false;
}

ImpactFilter impact_filter(Micros now) {
  ImpactFilter filter;
  filter.since = parse_time(default_impact_since, now);
  return filter;
}

std::string set_impact_term(ImpactFilter& filter, std::string_view name, std::string_view value, Micros now,
                            std::string_view shown_as, std::size_t max_limit) {
  if (name == "state") return states_term(filter.states, value, shown_as);
  if (name == "since") return time_term(filter.since, value, now, shown_as);
  if (name == "until") return time_term(filter.until, value, now, shown_as);
  if (name == "limit") return count_term(filter.limit, value, 1, max_limit, shown_as);
  if (name == "jobs_per_entity") return count_term(filter.jobs_per_entity, value, 0, most_jobs_per_entity, shown_as);
  if (name == "max_jobs") return count_term(filter.max_jobs, value, 0, most_impact_jobs, shown_as);
  if (name == "job") {
    filter.job = value;
    return {};
  }
  if (name == "type") {
    // The type's own grammar, checked the way an event's tag is (a type with any id).
    if (!is_valid_entity(fmt::format("{}:x", value)) || value.find(':') != std::string_view::npos) {
      return fmt::format("bad {} '{}': expected an entity type like customer (a-z, 0-9, _ . -)", shown_as, value);
    }
    filter.entity_type = value;
    return {};
  }
  return fmt::format("unknown parameter '{}' (known: {})", name, impact_term_names);
}

std::string impact_window_problem(const ImpactFilter& filter, std::string_view since_shown,
                                  std::string_view until_shown) {
  if (!filter.since || !filter.until || *filter.until > *filter.since) return {};
  return fmt::format("{} ({}) must be later than {} ({}; {} ago unless given)", until_shown,
                     format_rfc3339_seconds(*filter.until), since_shown, format_rfc3339_seconds(*filter.since),
                     default_impact_since);
}

}  // namespace jobtrail::view
