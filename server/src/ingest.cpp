#include "jobtrail/ingest.h"

#include <algorithm>
#include <array>
#include <cstring>
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

/// The text of a string value, moved out of the parsed value: each is read once.
std::string take_string(json& value) { return std::move(value.get_ref<std::string&>()); }

/// Reads an optional string field (`value` is nullptr when absent); null counts as absent.
/// Returns the reason on a wrong type.
std::string read_string(json* value, const char* field, std::string& target) {
  if (value == nullptr || value->is_null()) return {};
  if (!value->is_string()) return fmt::format("{} must be a string, not {}", field, type_name(*value));
  target = take_string(*value);
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
std::string read_at(json& value, Micros& at, SentAt& sent) {
  if (value.is_null()) return {};
  if (value.is_number_integer()) {
    if (!fits_int64(value)) return fmt::format("at {} is out of range for microseconds since the Unix epoch", value.dump());
    at = value.get<std::int64_t>();
    sent.given = true;
    return {};
  }
  if (value.is_string()) {
    std::string text = take_string(value);
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

std::string read_error(json& value, ErrorInfo& error) {
  if (value.is_null()) return {};
  if (value.is_string()) {  // the common case: just a message
    error.message = take_string(value);
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
    return found == value.end() || found->is_null() ? std::string() : take_string(*found);
  };
  error = {text("class"), text("message"), text("backtrace")};
  return {};
}

/// The fields an event may have. The object's values are found by one pass over it (with
/// a std::map lookup per field instead, the lookups cost more than reading the values).
enum Field : std::size_t {
  job_id_field, state_field, at_field, job_field, queue_field, correlation_id_field, traceparent_field,
  parent_job_id_field, idempotency_key_field, attempt_field, worker_field, error_field, entities_field
};
constexpr std::string_view known_fields[] = {
    "job_id", "state", "at", "job", "queue", "correlation_id", "traceparent", "parent_job_id",
    "idempotency_key", "attempt", "worker", "error", "entities"};
static_assert(std::size(known_fields) == entities_field + 1);

/// Fills `event` from a parsed object, as sent, moving its strings out; returns why it cannot
/// be read, or "". `sent_at` is given once "at" is read.
std::string read_event(json& object, Event& event, SentAt& sent_at) {
  if (!object.is_object()) return fmt::format("an event must be a JSON object, not {}", type_name(object));
  std::array<json*, std::size(known_fields)> fields{};  // nullptr: absent
  for (auto& [key, value] : object.get_ref<json::object_t&>()) {
    const auto known = std::find(std::begin(known_fields), std::end(known_fields), key);
    // Strict: a misspelt "correlation" would otherwise drop the trace link without a word.
    if (known == std::end(known_fields)) return fmt::format("unknown field '{}'", key);
    fields[static_cast<std::size_t>(known - std::begin(known_fields))] = &value;
  }
  json* const job_id = fields[job_id_field];
  if (job_id == nullptr || job_id->is_null()) return "job_id is missing";
  if (!job_id->is_string()) return fmt::format("job_id must be a string, not {}", type_name(*job_id));
  event.job_id = take_string(*job_id);

  const json* const state = fields[state_field];
  if (state == nullptr || state->is_null()) return "state is missing";
  if (!state->is_string()) return fmt::format("state must be a string, not {}", type_name(*state));
  const std::string& state_name = state->get_ref<const std::string&>();
  const std::optional<State> parsed_state = parse_state(state_name);
  if (!parsed_state) return fmt::format("unknown state '{}' (valid: {})", state_name, all_state_names());
  event.state = *parsed_state;

  for (const auto& [field, target] : {std::pair{job_field, &event.job}, std::pair{queue_field, &event.queue},
                                      std::pair{correlation_id_field, &event.correlation_id},
                                      std::pair{parent_job_id_field, &event.parent_job_id},
                                      std::pair{idempotency_key_field, &event.idempotency_key},
                                      std::pair{worker_field, &event.worker}}) {
    const char* name = known_fields[field].data();  // each a literal: NUL-terminated
    if (std::string problem = read_string(fields[field], name, *target); !problem.empty()) return problem;
  }
  std::string traceparent;
  if (std::string problem = read_string(fields[traceparent_field], "traceparent", traceparent); !problem.empty()) {
    return problem;
  }
  if (!traceparent.empty()) {
    const std::optional<std::string> trace_id = correlation_from_traceparent(traceparent);
    if (!trace_id) return fmt::format("traceparent '{}' is not a W3C traceparent header", traceparent);
    // An explicit correlation_id wins: the client chose it on purpose.
    if (event.correlation_id.empty()) event.correlation_id = *trace_id;
  }
  if (json* const at = fields[at_field]; at != nullptr) {
    if (std::string problem = read_at(*at, event.at, sent_at); !problem.empty()) return problem;
  }
  if (const json* const attempt = fields[attempt_field]; attempt != nullptr && !attempt->is_null()) {
    if (!attempt->is_number_integer()) return fmt::format("attempt must be an integer, not {}", type_name(*attempt));
    const auto value = fits_int64(*attempt) ? attempt->get<std::int64_t>() : -1;
    if (value < 0 || value > std::numeric_limits<std::int32_t>::max()) {
      return fmt::format("attempt {} is out of range (0 to 2147483647)", attempt->dump());
    }
    event.attempt = static_cast<std::int32_t>(value);
  }
  if (json* const error = fields[error_field]; error != nullptr) {
    if (std::string problem = read_error(*error, event.error); !problem.empty()) return problem;
  }
  if (json* const entities = fields[entities_field]; entities != nullptr && !entities->is_null()) {
    if (!entities->is_array()) return fmt::format("entities must be an array of strings, not {}", type_name(*entities));
    if (entities->size() > EventLimits::max_entities) {
      return fmt::format("entities has {} items; at most {}", entities->size(), EventLimits::max_entities);
    }
    event.entities.reserve(entities->size());
    for (json& entity : *entities) {
      if (!entity.is_string()) return fmt::format("entities must hold strings, not {}", type_name(entity));
      event.entities.push_back(take_string(entity));
    }
  }
  return {};
}

/// The event in a parsed object, checked once by the tracker's own rules (check_event()), so
/// Tracker::record() takes it as it is; or no event, and why in `problem`. The object's
/// strings are moved into the event.
EventCheck event_from(json& object, Micros now) {
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

/// One JSON text parsed, or why not. A number beyond a double (3e476) is no syntax error: the
/// text is JSON, the event in it just cannot be represented, so it is that event's problem.
struct ParsedValue {
  json value;
  std::string problem;        ///< "" when parsed
  bool syntax_error = false;  ///< not JSON at all, as opposed to an unrepresentable number
};

/// Builds the value as nlohmann's own parser does, and notes the first duplicate key of an
/// event or its error object ({"state":"succeeded","state":"failed"}): the parser would keep
/// the last silently, so which one the client meant is anyone's guess. A SAX handler of our
/// own rather than json::parse() with a callback: that one calls a std::function and copies
/// each key into a json for every token, which was a third of serve's parsing time.
/// One parser reads all the events of a body in turn, keeping its buffers' capacity.
/// Not thread-safe.
class EventParser {
 public:
  /// Parses `text` into `root`; false on an error, then error_id() and error() say which.
  bool parse(std::string_view text, json& root) {
    root_ = &root;
    open_.clear();
    slot_ = nullptr;
    object_depth_ = 0;
    duplicate_.clear();
    error_id_ = 0;
    error_.clear();
    // Strict parsing: invalid UTF-8 is an error here too, so nothing malformed reaches the store.
    return json::sax_parse(text, this);
  }

  bool null() { return put(nullptr); }
  bool boolean(bool value) { return put(value); }
  bool number_integer(json::number_integer_t value) { return put(value); }
  bool number_unsigned(json::number_unsigned_t value) { return put(value); }
  bool number_float(json::number_float_t value, const std::string&) { return put(value); }
  bool string(std::string& value) { return put(std::move(value)); }
  bool binary(json::binary_t& value) { return put(std::move(value)); }

  bool start_object(std::size_t) {
    // Deeper objects are refused anyway (no field takes one), so only two levels keep key sets.
    if (++object_depth_ <= tracked_depth) keys_[object_depth_ - 1].clear();
    return open(json::value_t::object);
  }
  bool key(std::string& key) {
    if (object_depth_ <= tracked_depth && duplicate_.empty()) {
      std::vector<std::string>& seen = keys_[object_depth_ - 1];
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        duplicate_ = key;
      } else {
        seen.push_back(key);
      }
    }
    slot_ = &(*open_.back())[key];
    return true;
  }
  bool end_object() {
    --object_depth_;
    open_.pop_back();
    return true;
  }
  bool start_array(std::size_t) { return open(json::value_t::array); }
  bool end_array() {
    open_.pop_back();
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const json::exception& error) {
    error_id_ = error.id;
    error_ = error.what();
    return false;
  }

  const std::string& duplicate() const { return duplicate_; }
  /// nlohmann's exception id (101 and up: syntax; 406: a number beyond a double), or 0.
  int error_id() const { return error_id_; }
  const std::string& error() const { return error_; }

 private:
  static constexpr std::size_t tracked_depth = 2;

  /// Where a value goes: the root, the end of the open array, or the object's last key.
  json* place(json&& value) {
    if (open_.empty()) {
      *root_ = std::move(value);
      return root_;
    }
    if (open_.back()->is_array()) {
      open_.back()->push_back(std::move(value));
      return &open_.back()->back();
    }
    *slot_ = std::move(value);
    return slot_;
  }
  bool put(json&& value) {
    place(std::move(value));
    return true;
  }
  bool open(json::value_t type) {
    open_.push_back(place(json(type)));
    return true;
  }

  json* root_ = nullptr;
  std::vector<json*> open_;   // the objects and arrays being filled, innermost last
  json* slot_ = nullptr;      // the value of the open object's last key
  std::size_t object_depth_ = 0;
  std::array<std::vector<std::string>, tracked_depth> keys_;  // per open object; few: a scan beats a set
  std::string duplicate_;
  int error_id_ = 0;
  std::string error_;
};

/// "line 1, column 12: unexpected end of input" rather than nlohmann's "[json.exception...]".
std::string parse_problem(std::string what) {
  // what() reads "[json.exception.parse_error.101] parse error at line 1, column 12: ..."
  if (const auto at = what.find("parse error"); at != std::string::npos) what = what.substr(at);
  return "not valid JSON: " + what;
}

ParsedValue parse_value(std::string_view text, EventParser& parser) {
  ParsedValue result;
  if (parser.parse(text, result.value)) {
    if (!parser.duplicate().empty()) {
      result.problem = fmt::format("duplicate key '{}': which of its values counts is ambiguous", parser.duplicate());
    }
    return result;
  }
  result.value = nullptr;  // what was built before the error is no event
  if (parser.error_id() >= 100 && parser.error_id() < 200) {
    result.problem = parse_problem(parser.error());
    result.syntax_error = true;
  } else {
    // out_of_range.406, "number overflow parsing '3e476'": the only other error parsing has.
    std::string what = parser.error();
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
  EventParser parser;
  ParsedValue parsed = parse_value(text, parser);
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
  EventParser parser;
  const auto take = [&](ParsedValue& parsed, std::size_t position) {
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
      const ParsedValue whole = parse_value(content, parser);
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
    result.events.reserve(elements->size());
    result.positions.reserve(elements->size());
    for (std::size_t index = 0; index < elements->size(); ++index) {
      parsed.push_back(parse_value((*elements)[index], parser));
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
    ParsedValue parsed = parse_value(content, parser);
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
  // One event a line, usually: room for them at once rather than copies as the vectors grow.
  std::size_t lines = 1;
  for (const char* at = body.data(); (at = static_cast<const char*>(std::memchr(at, '\n', body.data() + body.size() - at))) != nullptr; ++at) {
    ++lines;
  }
  result.events.reserve(std::min(lines, options.max_events));
  result.positions.reserve(std::min(lines, options.max_events));
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
    ParsedValue parsed = parse_value(line, parser);
    take(parsed, line_number);
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
