#include "jobtrail/ingest.h"

#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "jobtrail/context.h"
#include "time_format.h"

namespace jobtrail {
namespace {

using json = nlohmann::json;

std::string all_state_names() {
  std::string names;
  for (const State state : all_states()) {
    if (!names.empty()) names += ", ";
    names += to_string(state);
  }
  return names;
}

const char* type_name(const json& value) {
  // nlohmann's type_name() says "number" for all three; a client fixing its payload wants more.
  if (value.is_number_float()) return "a fractional number";
  if (value.is_number()) return "a number";
  if (value.is_string()) return "a string";
  if (value.is_boolean()) return "a boolean";
  if (value.is_array()) return "an array";
  if (value.is_object()) return "an object";
  return "null";
}

/// Reads an optional string field; null counts as absent. Returns the reason on a wrong type.
std::string read_string(const json& object, const char* field, std::string& target) {
  const auto found = object.find(field);
  if (found == object.end() || found->is_null()) return {};
  if (!found->is_string()) return fmt::format("{} must be a string, not {}", field, type_name(*found));
  target = found->get<std::string>();
  return {};
}

std::string read_at(const json& value, Micros& at) {
  if (value.is_null()) return {};
  if (value.is_number_integer()) {
    // Microseconds since the epoch; seconds or milliseconds are a common mistake, and they
    // would land in 1970 silently, so refuse anything before 2001 (1e15 µs).
    const auto micros = value.get<std::int64_t>();
    if (micros < 1'000'000'000'000'000) {
      return fmt::format("at {} is not microseconds since the Unix epoch (seconds or milliseconds?)", micros);
    }
    at = micros;
    return {};
  }
  if (value.is_string()) {
    const std::string text = value.get<std::string>();
    // Only absolute times: "24h" (a duration ago) makes no sense coming from a worker.
    const std::optional<Micros> parsed = text.find('T') != std::string::npos ? cli::parse_time(text, 0) : std::nullopt;
    if (!parsed || *parsed < 0) {
      return fmt::format("at '{}' is not an RFC 3339 time such as 2026-11-22T10:00:00.123456Z", text);
    }
    at = *parsed;
    return {};
  }
  return fmt::format("at must be an RFC 3339 string or integer microseconds, not {}", type_name(value));
}

std::string read_error(const json& value, ErrorInfo& error) {
  if (value.is_null()) return {};
  if (value.is_string()) {  // the common case: just a message
    error.message = value.get<std::string>();
    return {};
  }
  if (!value.is_object()) return fmt::format("error must be an object or a string, not {}", type_name(value));
  for (const auto& [key, item] : value.items()) {
    if (key != "class" && key != "message" && key != "backtrace") {
      return fmt::format("unknown field 'error.{}' (known: class, message, backtrace)", key);
    }
    if (!item.is_null() && !item.is_string()) {
      return fmt::format("error.{} must be a string, not {}", key, type_name(item));
    }
  }
  const auto text = [&](const char* key) {
    const auto found = value.find(key);
    return found == value.end() || found->is_null() ? std::string() : found->get<std::string>();
  };
  error = {text("class"), text("message"), text("backtrace")};
  return {};
}

constexpr std::string_view known_fields[] = {
    "job_id", "state", "at", "job", "queue", "correlation_id", "traceparent", "parent_job_id",
    "idempotency_key", "attempt", "worker", "error", "entities"};

/// Fills `event` from a parsed object; returns why it cannot be an event, or "".
std::string event_from(const json& object, Event& event) {
  if (!object.is_object()) return fmt::format("an event must be a JSON object, not {}", type_name(object));
  for (const auto& item : object.items()) {
    bool known = false;
    for (const std::string_view field : known_fields) known = known || item.key() == field;
    // Strict: a misspelt "correlation" would otherwise drop the trace link without a word.
    if (!known) return fmt::format("unknown field '{}'", item.key());
  }
  const auto job_id = object.find("job_id");
  if (job_id == object.end() || job_id->is_null()) return "job_id is missing";
  if (!job_id->is_string()) return fmt::format("job_id must be a string, not {}", type_name(*job_id));
  event.job_id = job_id->get<std::string>();

  const auto state = object.find("state");
  if (state == object.end() || state->is_null()) return "state is missing";
  if (!state->is_string()) return fmt::format("state must be a string, not {}", type_name(*state));
  const std::optional<State> parsed_state = parse_state(state->get<std::string>());
  if (!parsed_state) {
    return fmt::format("unknown state '{}' (valid: {})", state->get<std::string>(), all_state_names());
  }
  event.state = *parsed_state;

  for (const auto& [field, target] : {std::pair{"job", &event.job}, std::pair{"queue", &event.queue},
                                      std::pair{"correlation_id", &event.correlation_id},
                                      std::pair{"parent_job_id", &event.parent_job_id},
                                      std::pair{"idempotency_key", &event.idempotency_key},
                                      std::pair{"worker", &event.worker}}) {
    if (std::string problem = read_string(object, field, *target); !problem.empty()) return problem;
  }
  std::string traceparent;
  if (std::string problem = read_string(object, "traceparent", traceparent); !problem.empty()) return problem;
  if (!traceparent.empty()) {
    const std::optional<std::string> trace_id = correlation_from_traceparent(traceparent);
    if (!trace_id) return fmt::format("traceparent '{}' is not a W3C traceparent header", traceparent);
    // An explicit correlation_id wins: the client chose it on purpose.
    if (event.correlation_id.empty()) event.correlation_id = *trace_id;
  }
  if (const auto at = object.find("at"); at != object.end()) {
    if (std::string problem = read_at(*at, event.at); !problem.empty()) return problem;
  }
  if (const auto attempt = object.find("attempt"); attempt != object.end() && !attempt->is_null()) {
    if (!attempt->is_number_integer()) return fmt::format("attempt must be an integer, not {}", type_name(*attempt));
    const auto value = attempt->get<std::int64_t>();
    if (value < 0 || value > std::numeric_limits<std::int32_t>::max()) {
      return fmt::format("attempt {} is out of range (0 to 2147483647)", value);
    }
    event.attempt = static_cast<std::int32_t>(value);
  }
  if (const auto error = object.find("error"); error != object.end()) {
    if (std::string problem = read_error(*error, event.error); !problem.empty()) return problem;
  }
  if (const auto entities = object.find("entities"); entities != object.end() && !entities->is_null()) {
    if (!entities->is_array()) return fmt::format("entities must be an array of strings, not {}", type_name(*entities));
    if (entities->size() > EventLimits::max_entities) {
      return fmt::format("entities has {} items; at most {}", entities->size(), EventLimits::max_entities);
    }
    for (const json& entity : *entities) {
      if (!entity.is_string()) return fmt::format("entities must hold strings, not {}", type_name(entity));
      event.entities.push_back(entity.get<std::string>());
    }
  }
  // Lengths, entity syntax and the rest: the tracker's own rules, so both paths agree.
  return validation_error(event);
}

/// "line 1, column 12: unexpected end of input" rather than nlohmann's "[json.exception...]".
std::string parse_problem(const json::parse_error& error) {
  std::string what = error.what();
  // what() reads "[json.exception.parse_error.101] parse error at line 1, column 12: ..."
  if (const auto at = what.find("parse error"); at != std::string::npos) what = what.substr(at);
  return "not valid JSON: " + what;
}

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

}  // namespace

std::string decode_event(std::string_view text, Event& event) {
  try {
    // Strict parsing: invalid UTF-8 throws here too, so nothing malformed reaches the store.
    return event_from(json::parse(text), event);
  } catch (const json::parse_error& error) {
    return parse_problem(error);
  }
}

DecodedEvents decode_events(std::string_view body, const DecodeOptions& options) {
  DecodedEvents result;
  const std::string_view content = trim(body);
  if (content.empty()) {
    result.body_error = "the body is empty: send one JSON event, a JSON array of events, or NDJSON";
    return result;
  }
  const auto take = [&](const json& value, std::size_t position) {
    Event event;
    if (std::string problem = event_from(value, event); !problem.empty()) {
      result.rejected.push_back({position, std::move(problem)});
      return;
    }
    result.events.push_back(std::move(event));
    result.positions.push_back(position);
  };

  if (content.front() == '[' && !options.ndjson) {
    result.shape = BodyShape::array;
    json array;
    try {
      array = json::parse(content);
    } catch (const json::parse_error& error) {
      // A broken array cannot be split into good and bad elements: refuse all of it.
      result.body_error = parse_problem(error);
      return result;
    }
    if (array.size() > options.max_events) {
      result.body_error = fmt::format("{} events in one body; at most {}", array.size(), options.max_events);
      result.too_many = true;
      return result;
    }
    for (std::size_t index = 0; index < array.size(); ++index) take(array[index], index);
    return result;
  }

  // One object, possibly pretty-printed over several lines, unless the client said NDJSON.
  if (!options.ndjson) {
    json object = json::parse(content, nullptr, false);
    if (!object.is_discarded()) {
      result.shape = BodyShape::object;
      take(object, 0);
      return result;
    }
    if (content.find('\n') == std::string_view::npos) {
      result.shape = BodyShape::object;
      try {
        [[maybe_unused]] const json reparsed = json::parse(content);
      } catch (const json::parse_error& error) {
        result.body_error = parse_problem(error);
      }
      return result;
    }
  }

  result.shape = BodyShape::ndjson;
  std::size_t line_number = 0;
  std::size_t start = 0;
  std::size_t counted = 0;
  while (start <= body.size()) {
    std::size_t end = body.find('\n', start);
    if (end == std::string_view::npos) end = body.size();
    ++line_number;
    const std::string_view line = trim(body.substr(start, end - start));
    start = end + 1;
    if (line.empty()) continue;  // a trailing newline or a blank line is not an event
    if (++counted > options.max_events) {
      result = DecodedEvents{};
      result.shape = BodyShape::ndjson;
      result.body_error = fmt::format("more than {} events in one body", options.max_events);
      result.too_many = true;
      return result;
    }
    try {
      take(json::parse(line), line_number);
    } catch (const json::parse_error& error) {
      result.rejected.push_back({line_number, parse_problem(error)});
    }
    if (end == body.size()) break;
  }
  return result;
}

std::string event_to_json(const Event& event) {
  json object = json::object();
  object["job_id"] = event.job_id;
  object["state"] = std::string(to_string(event.state));
  if (event.at != 0) object["at"] = event.at;
  const auto put = [&](const char* field, const std::string& value) {
    if (!value.empty()) object[field] = value;
  };
  put("job", event.job);
  put("queue", event.queue);
  put("correlation_id", event.correlation_id);
  put("parent_job_id", event.parent_job_id);
  put("idempotency_key", event.idempotency_key);
  put("worker", event.worker);
  if (event.attempt != 0) object["attempt"] = event.attempt;
  if (!event.error.empty()) {
    json error = json::object();
    if (!event.error.error_class.empty()) error["class"] = event.error.error_class;
    if (!event.error.message.empty()) error["message"] = event.error.message;
    if (!event.error.backtrace.empty()) error["backtrace"] = event.error.backtrace;
    object["error"] = std::move(error);
  }
  if (!event.entities.empty()) object["entities"] = event.entities;
  // Replace, not throw: a command's stderr tail may hold any bytes.
  return object.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace jobtrail
