#pragma once
/// \file
/// What show, trace and ls say about one job, computed once so the three agree.

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "jobtrail/store.h"

namespace jobtrail::view {

/// A span of a job's life. `ongoing` spans (a job still waiting or running) are measured
/// up to "now" and printed with a trailing "+": the final value will be larger.
struct Span {
  std::optional<Micros> length;
  bool ongoing = false;
};

/// Enqueue to start of the latest attempt; for a job still waiting, enqueue to now.
Span wait_span(const JobRecord& job, Micros now);
/// Start to end of the latest attempt; for a job still running, start to now.
Span run_span(const JobRecord& job, Micros now);
/// "1.2s", "8h03m+" or "-".
std::string format_span(const Span& span);

/// The names of the anomaly kinds flagged in `bits` (JobRecord::anomalies).
std::vector<std::string> anomaly_names(std::uint32_t bits);
/// The FLAGS cell of trace and ls: anomaly names, comma-separated.
std::string anomaly_flags(const JobRecord& job);

/// The states a job can be in (every State but heartbeat, which is only ever an event),
/// comma-separated, for help texts and error messages.
std::string job_state_names();
/// The job state called `name`; nothing for an unknown name or for "heartbeat".
std::optional<State> parse_job_state(std::string_view name);

/// `text`, or "-" when it is empty, for table cells.
std::string or_dash(const std::string& text);

/// JSON null for an absent value, the value otherwise.
nlohmann::ordered_json json_time(std::optional<Micros> at);
nlohmann::ordered_json json_text(const std::string& text);
nlohmann::ordered_json json_error(const ErrorInfo& error);

/// The fields show, trace and ls print for a job in JSON; wait_us and run_us only for
/// spans that have ended, so JSON never depends on --now.
nlohmann::ordered_json job_json(const JobRecord& job, Micros now);

}  // namespace jobtrail::view
