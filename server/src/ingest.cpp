#include "jobtrail/ingest.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "jobtrail/context.h"
#include "jobtrail/view/event_time.h"
#include "jobtrail/view/time_format.h"

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

/// Whether an integer fits an int64 (nlohmann keeps 2^63 to 2^64 - 1 as unsigned).
bool fits_int64(const json& value) {
  return value.is_number_integer() &&
         (!value.is_number_unsigned() ||
          value.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()));
}

/// How an event's "at" came, for the reason when it is implausible: the number itself, or the
/// text as sent. Kept as it came, so an event that passes builds no words.
struct SentAt {
  bool given = false;
  std::string text;  ///< the RFC 3339 form as sent, or "" for integer microseconds
};

/// Both forms of "at" become microseconds. The rule for them is check_event()'s.
std::string read_at(const json& value, Micros& at, SentAt& sent) {
  if (value.is_null()) return {};
  if (value.is_number_integer()) {
    if (!fits_int64(value)) return fmt::format("at {} is out of range for microseconds since the Unix epoch", value.dump());
    at = value.get<std::int64_t>();
    sent.given = true;
    return {};
  }
  if (value.is_string()) {
    std::string text = value.get<std::string>();
    // Only absolute times: "24h" (a duration ago) makes no sense coming from a worker.
    const std::optional<Micros> parsed = text.find('T') != std::string::npos ? view::parse_time(text, 0) : std::nullopt;
    if (!parsed) return fmt::format("at '{}' is not an RFC 3339 time such as 2026-11-22T10:00:00.123456Z", text);
    at = *parsed;
    sent = {true, std::move(text)};
    return {};
  }
  return fmt::format("at must be an RFC 3339 string or integer microseconds, not {}", type_name(value));
}

/// Why the "at" the client sent cannot be, naming it as sent and spelling out what it reads as
/// (view/event_time.h).
std::string implausible_at(const SentAt& sent, Micros at, Micros now) {
  const std::string problem = view::implausible_event_time(at, now);
  return sent.text.empty() ? fmt::format("at {} {}", at, problem) : fmt::format("at '{}' {}", sent.text, problem);
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

/// Fills `event` from a parsed object, as sent; returns why it cannot be read, or "". `sent_at`
/// is given once "at" is read.
std::string read_event(const json& object, Event& event, SentAt& sent_at) {
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
    if (std::string problem = read_at(*at, event.at, sent_at); !problem.empty()) return problem;
  }
  if (const auto attempt = object.find("attempt"); attempt != object.end() && !attempt->is_null()) {
    if (!attempt->is_number_integer()) return fmt::format("attempt must be an integer, not {}", type_name(*attempt));
    const auto value = fits_int64(*attempt) ? attempt->get<std::int64_t>() : -1;
    if (value < 0 || value > std::numeric_limits<std::int32_t>::max()) {
      return fmt::format("attempt {} is out of range (0 to 2147483647)", attempt->dump());
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
  return {};
}

/// The event in a parsed object, checked once by the tracker's own rules (check_event()), so
/// Tracker::record() takes it as it is; or no event, and why in `problem`.
EventCheck event_from(const json& object, Micros now) {
  Event event;
  SentAt sent_at;
  EventCheck refused;
  refused.problem = read_event(object, event, sent_at);
  if (!refused.problem.empty()) {
    // A field after "at" cannot be read, so check_event() never runs: a wrong time is still the
    // first thing the client hears of, as when everything else can be read.
    if (sent_at.given && !is_plausible_event_time(event.at, now)) refused.problem = implausible_at(sent_at, event.at, now);
    return refused;
  }
  if (sent_at.given && event.at == 0) {
    // 0 is "not given, stamp it when recorded" to check_event(); sent, it is 1970 like any
    // other time before 2000 (EventTimeRule::earliest).
    refused.problem = implausible_at(sent_at, event.at, now);
    return refused;
  }
  EventCheck check = check_event(event, now);
  if (check.implausible_time) check.problem = implausible_at(sent_at, event.at, now);
  return check;
}

/// "line 1, column 12: unexpected end of input" rather than nlohmann's "[json.exception...]".
std::string parse_problem(const json::parse_error& error) {
  std::string what = error.what();
  // what() reads "[json.exception.parse_error.101] parse error at line 1, column 12: ..."
  if (const auto at = what.find("parse error"); at != std::string::npos) what = what.substr(at);
  return "not valid JSON: " + what;
}

/// One JSON text parsed, or why not. A number beyond a double (3e476) is no syntax error: the
/// text is JSON, the event in it just cannot be represented, so it is that event's problem.
struct ParsedValue {
  json value;
  std::string problem;        ///< "" when parsed
  bool syntax_error = false;  ///< not JSON at all, as opposed to an unrepresentable number
};

ParsedValue parse_value(std::string_view text) {
  ParsedValue result;
  // Duplicate keys in an event or its error object ({"state":"succeeded","state":"failed"}):
  // the parser would keep the last silently, so which one the client meant is anyone's guess.
  // Deeper objects are refused anyway (no field takes one), so only two levels keep key sets.
  constexpr std::size_t tracked_depth = 2;
  std::size_t depth = 0;
  std::vector<std::vector<std::string>> keys;  // few keys per object: a scan beats a set
  std::string duplicate;
  const json::parser_callback_t find_duplicates = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      if (++depth <= tracked_depth) keys.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (depth-- <= tracked_depth) keys.pop_back();
    } else if (event == json::parse_event_t::key && depth <= tracked_depth && duplicate.empty()) {
      std::string key = parsed.get<std::string>();
      std::vector<std::string>& seen = keys.back();
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        duplicate = std::move(key);
      } else {
        seen.push_back(std::move(key));
      }
    }
    return true;
  };
  try {
    // Strict parsing: invalid UTF-8 throws here too, so nothing malformed reaches the store.
    result.value = json::parse(text, find_duplicates);
    if (!duplicate.empty()) result.problem = fmt::format("duplicate key '{}': which of its values counts is ambiguous", duplicate);
  } catch (const json::parse_error& error) {
    result.problem = parse_problem(error);
    result.syntax_error = true;
  } catch (const json::exception& error) {
    // out_of_range.406, "number overflow parsing '3e476'": the only other error parse() has.
    std::string what = error.what();
    if (const auto end = what.find("] "); what.starts_with("[json.exception.") && end != std::string::npos) {
      what = what.substr(end + 2);
    }
    result.problem = fmt::format("a number is too large to represent ({})", what);
  }
  return result;
}

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

/// Where the object or array that opens `text` ends (one past its closing bracket), found by
/// counting brackets outside strings, or npos when they never balance. It builds nothing, so
/// any depth costs no memory; the parser judges the syntax of what it delimits.
std::size_t value_end(std::string_view text) {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') ++depth;
    else if ((c == ']' || c == '}') && depth > 0 && --depth == 0) return i + 1;
    if (depth == 0) return std::string_view::npos;  // text does not open with a bracket
  }
  return std::string_view::npos;
}

/// The texts of the elements of the array `text` (which opens with '['), at most `limit` + 1
/// of them; nothing when its brackets or quotes do not balance or text follows it. Elements
/// are parsed one by one, so a number beyond a double costs its own element only.
std::optional<std::vector<std::string_view>> split_array(std::string_view text, std::size_t limit) {
  if (text.back() != ']' || value_end(text) != text.size()) return std::nullopt;
  std::vector<std::string_view> elements;
  std::size_t depth = 0;
  std::size_t element_start = 1;
  bool in_string = false;
  for (std::size_t i = 1; i + 1 < text.size() && elements.size() <= limit; ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') ++depth;
    else if (c == ']' || c == '}') --depth;  // balanced: value_end said so
    else if (c == ',' && depth == 0) {
      elements.push_back(text.substr(element_start, i - element_start));
      element_start = i + 1;
    }
  }
  const std::string_view last = text.substr(element_start, text.size() - 1 - element_start);
  // "[]" has no element; "[1,]" has an empty last one, which the parser then refuses.
  if (!elements.empty() || !trim(last).empty()) elements.push_back(last);
  return elements;
}

}  // namespace

std::string decode_event(std::string_view text, Event& event, Micros now) {
  ParsedValue parsed = parse_value(text);
  if (!parsed.problem.empty()) return parsed.problem;
  EventCheck check = event_from(parsed.value, now != 0 ? now : now_micros());
  if (check.checked) event = check.checked->event();
  return check.problem;
}

DecodedEvents decode_events(std::string_view body, const DecodeOptions& options) {
  DecodedEvents result;
  const std::string_view content = trim(body);
  if (content.empty()) {
    result.body_error = "the body is empty: send one JSON event, a JSON array of events, or NDJSON";
    return result;
  }
  const Micros now = options.now != 0 ? options.now : now_micros();
  const auto take = [&](const ParsedValue& parsed, std::size_t position) {
    if (!parsed.problem.empty()) {
      result.rejected.push_back({position, parsed.problem});
      return;
    }
    EventCheck check = event_from(parsed.value, now);
    if (!check.checked) {
      result.rejected.push_back({position, std::move(check.problem)});
      return;
    }
    if (check.cut.any()) result.truncated.push_back({position, check.cut});
    result.events.push_back(std::move(*check.checked));
    result.positions.push_back(position);
  };

  if (content.front() == '[' && !options.ndjson) {
    result.shape = BodyShape::array;
    const std::optional<std::vector<std::string_view>> elements = split_array(content, options.max_events);
    if (!elements) {
      // A broken array cannot be split into good and bad elements: refuse all of it.
      const ParsedValue whole = parse_value(content);
      result.body_error = whole.syntax_error ? whole.problem : "not valid JSON: the array's brackets do not balance";
      return result;
    }
    if (elements->size() > options.max_events) {
      result.body_error = fmt::format("more than {} events in one body", options.max_events);
      result.too_many = true;
      return result;
    }
    std::vector<ParsedValue> parsed;
    parsed.reserve(elements->size());
    for (std::size_t index = 0; index < elements->size(); ++index) {
      parsed.push_back(parse_value((*elements)[index]));
      if (parsed.back().syntax_error) {
        // Not JSON inside: the array as a whole is not JSON, as a parser of the body would say.
        result.body_error = fmt::format("{} (in element {})", parsed.back().problem, index);
        return result;
      }
    }
    for (std::size_t index = 0; index < parsed.size(); ++index) take(parsed[index], index);
    return result;
  }

  // One object, possibly pretty-printed over several lines, unless the client said NDJSON.
  if (!options.ndjson) {
    const bool one_line = content.find('\n') == std::string_view::npos;
    const bool one_object = content.front() == '{' && value_end(content) == content.size();
    const ParsedValue parsed = parse_value(content);
    if (parsed.problem.empty() || one_line || (one_object && !parsed.syntax_error)) {
      result.shape = BodyShape::object;
      if (parsed.syntax_error) {
        result.body_error = parsed.problem;
      } else {
        take(parsed, 0);
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
    take(parse_value(line), line_number);
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
