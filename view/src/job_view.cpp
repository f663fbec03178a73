#include "jobtrail/view/job_view.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "jobtrail/view/time_format.h"

namespace jobtrail::view {

std::string job_state_names() {
  std::vector<std::string_view> names;
  for (const State state : all_states()) {
    if (state != State::heartbeat) names.push_back(to_string(state));
  }
  return fmt::format("{}", fmt::join(names, ", "));
}

std::optional<State> parse_job_state(std::string_view name) {
  const std::optional<State> state = parse_state(name);
  if (state == State::heartbeat) return std::nullopt;
  return state;
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
  const auto ended = [](const Span& span) {
    return span.length && !span.ongoing ? nlohmann::ordered_json(*span.length) : nlohmann::ordered_json(nullptr);
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
  result["wait_us"] = ended(wait_span(job, now));
  result["run_us"] = ended(run_span(job, now));
  result["worker"] = json_text(job.worker);
  result["last_error"] = json_error(job.last_error);
  result["anomalies"] = anomaly_names(job.anomalies);
  return result;
}

}  // namespace jobtrail::view
