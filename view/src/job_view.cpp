#include "jobtrail/view/job_view.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "jobtrail/view/time_format.h"

namespace jobtrail::view {

std::vector<std::string> job_state_name_list() {
  std::vector<std::string> names;
  for (const State state : all_states()) {
    if (state != State::heartbeat) names.emplace_back(to_string(state));
  }
  return names;
}

std::string job_state_names() { return fmt::format("{}", fmt::join(job_state_name_list(), ", ")); }

std::optional<State> parse_job_state(std::string_view name) {
  const std::optional<State> state = parse_state(name);
  if (state == State::heartbeat) return std::nullopt;
  return state;
}

std::vector<State> parse_job_states(std::string_view list) {
  std::vector<State> states;
  std::size_t begin = 0;
  for (;;) {
    const std::size_t comma = std::min(list.find(',', begin), list.size());
    const std::string_view name = list.substr(begin, comma - begin);
    const std::optional<State> state = parse_job_state(name);
    if (!state) {
      throw std::invalid_argument(name.empty() ? std::string("empty job state")
                                               : fmt::format("unknown job state '{}'", name));
    }
    if (std::find(states.begin(), states.end(), *state) == states.end()) states.push_back(*state);
    if (comma == list.size()) return states;
    begin = comma + 1;
  }
}

std::string error_summary(const ErrorInfo& error) {
  std::string text = error.error_class.empty() ? error.message
                     : error.message.empty()   ? error.error_class
                                               : fmt::format("{}: {}", error.error_class, error.message);
  const std::size_t newline = text.find('\n');
  if (newline == std::string::npos) return text;
  const auto more = std::count(text.begin() + static_cast<std::ptrdiff_t>(newline), text.end(), '\n');
  text.resize(newline);
  if (!text.empty() && text.back() == '\r') text.pop_back();
  return fmt::format("{} [+{} line{}]", text, more, more == 1 ? "" : "s");
}

Span wait_span(const JobRecord& job, Micros now) {
  if (!job.enqueued_at) return {};
  if (job.started_at) return {*job.started_at - *job.enqueued_at, false};
  if (job.state == State::enqueued) return {now - *job.enqueued_at, true};
  return {};
}

Span run_span(const JobRecord& job, Micros now) {
  if (!job.started_at) return {};
  if (job.state == State::started) return {now - *job.started_at, true};
  // An attempt that ended before its recorded start means the events lied or clocks
  // disagree; a negative span shows that more honestly than hiding it.
  if (job.finished_at) return {*job.finished_at - *job.started_at, false};
  return {};
}

std::string format_span(const Span& span) {
  if (!span.length) return "-";
  return format_duration(*span.length) + (span.ongoing ? "+" : "");
}

std::vector<std::string> anomaly_names(std::uint32_t bits) {
  std::vector<std::string> names;
  for (unsigned kind = 0; kind < 32; ++kind) {
    if ((bits & (1U << kind)) == 0) continue;
    const std::string_view name = to_string(static_cast<AnomalyKind>(kind));
    // A kind added by a newer jobtrail still shows up, by number.
    names.push_back(name.empty() ? fmt::format("anomaly_{}", kind) : std::string(name));
  }
  return names;
}

std::string anomaly_flags(const JobRecord& job) { return fmt::format("{}", fmt::join(anomaly_names(job.anomalies), ",")); }

Tone state_tone(State state) {
  switch (state) {
    case State::enqueued: return Tone::waiting;
    case State::started: return Tone::active;
    case State::heartbeat: return Tone::plain;
    case State::succeeded: return Tone::success;
    case State::failed: return Tone::failure;
    case State::dead: return Tone::fatal;
    case State::cancelled: return Tone::stopped;
  }
  return Tone::plain;
}

Tone check_status_tone(CheckStatus status) {
  switch (status) {
    case CheckStatus::pass: return Tone::success;
    case CheckStatus::warn: return Tone::active;
    case CheckStatus::fail: return Tone::failure;
    case CheckStatus::error: return Tone::fatal;
  }
  return Tone::plain;
}

Cell state_cell(State state) { return Cell(std::string(to_string(state)), state_tone(state)); }

Cell flags_cell(const JobRecord& job) { return Cell(anomaly_flags(job), Tone::alert); }

Cell time_cell(std::optional<Micros> at) {
  return at ? Cell(format_timestamp(*at), format_rfc3339(*at)) : Cell("-", "");
}

Cell relative_time_cell(Micros at, Micros now) { return Cell(format_relative(at, now), format_rfc3339(at)); }

Cell span_cell(const Span& span) {
  return Cell(format_span(span), span.length ? std::to_string(*span.length) : std::string());
}

Cell duration_cell(std::optional<Micros> duration) {
  return duration ? Cell(format_duration(*duration), std::to_string(*duration)) : Cell("-", "");
}

Cell text_cell(const std::string& text) { return Cell(or_dash(text), text); }

Cell count_cell(std::int64_t count) { return Cell(std::to_string(count)); }

Cell flag_cell(bool flag) { return Cell("", flag ? "true" : "false"); }

std::string or_dash(const std::string& text) { return text.empty() ? "-" : text; }

nlohmann::ordered_json json_time(std::optional<Micros> at) {
  return at ? nlohmann::ordered_json(format_rfc3339(*at)) : nlohmann::ordered_json(nullptr);
}

nlohmann::ordered_json json_text(const std::string& text) {
  return text.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(text);
}

nlohmann::ordered_json json_error(const ErrorInfo& error) {
  if (error.empty()) return nullptr;
  return {{"class", json_text(error.error_class)},
          {"message", json_text(error.message)},
          {"backtrace", json_text(error.backtrace)}};
}

nlohmann::ordered_json job_json(const JobRecord& job, Micros now) {
  const Span wait = wait_span(job, now);
  const Span run = run_span(job, now);
  const auto length = [](const Span& span) {
    return span.length ? nlohmann::ordered_json(*span.length) : nlohmann::ordered_json(nullptr);
  };
  nlohmann::ordered_json result = nlohmann::ordered_json::object();
  result["job_id"] = job.job_id;
  result["job"] = json_text(job.job);
  result["state"] = std::string(to_string(job.state));
  result["attempts"] = job.attempts;
  result["queue"] = json_text(job.queue);
  result["correlation_id"] = json_text(job.correlation_id);
  result["parent_job_id"] = json_text(job.parent_job_id);
  result["idempotency_key"] = json_text(job.idempotency_key);
  result["enqueued_at"] = json_time(job.enqueued_at);
  result["started_at"] = json_time(job.started_at);
  result["finished_at"] = json_time(job.finished_at);
  result["heartbeat_at"] = json_time(job.heartbeat_at);
  result["first_event_at"] = json_time(job.first_event_at);
  result["last_event_at"] = json_time(job.last_event_at);
  result["wait_us"] = length(wait);
  result["wait_ongoing"] = wait.ongoing;
  result["run_us"] = length(run);
  result["run_ongoing"] = run.ongoing;
  result["worker"] = json_text(job.worker);
  result["last_error"] = json_error(job.last_error);
  result["anomalies"] = anomaly_names(job.anomalies);
  result["entities"] = job.entities;
  return result;
}

nlohmann::ordered_json page_json(const JobPage& page) {
  nlohmann::ordered_json result = nlohmann::ordered_json::object();
  result["next"] = json_text(page.next_cursor);
  result["shown"] = page.jobs.size();
  result["total"] = page.total;
  result["total_exact"] = page.total_exact;
  return result;
}

std::string page_count(const JobPage& page) {
  return fmt::format("showing {} of {}{} job{}", page.jobs.size(), page.total_exact ? "" : "more than ", page.total,
                     page.total == 1 ? "" : "s");
}

std::string page_note(const JobPage& page, bool from_cursor) {
  if (!page.partial()) return "";
  return fmt::format("{}{}; more: add --cursor {}", page_count(page), from_cursor ? " from this cursor on" : "",
                     page.next_cursor);
}

}  // namespace jobtrail::view
