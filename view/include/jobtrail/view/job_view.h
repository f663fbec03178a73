#pragma once
/// \file
/// What show, trace and ls say about one job, computed once so the three agree.

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "jobtrail/store.h"
#include "jobtrail/view/output.h"

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

/// How a state looks on a colour terminal: succeeded green, failed red, dead bold red,
/// started yellow, enqueued blue, cancelled magenta, a heartbeat (an event only) plain.
Tone state_tone(State state);

/// How a check's result looks: pass green, warn yellow, fail red, error (could not run) bold red.
Tone check_status_tone(CheckStatus status);

/// Table cells of a job's fields, each with its display form and its raw value for CSV
/// (see Cell); every list (ls, trace, show's timeline, stats) builds its cells with these.
/// The state's name, in its tone.
Cell state_cell(State state);
/// The FLAGS cell: anomaly names comma-separated (anomaly_flags), in the alert tone.
Cell flags_cell(const JobRecord& job);
/// A time: format_timestamp or "-"; raw RFC 3339 UTC with microseconds, or "".
Cell time_cell(std::optional<Micros> at);
/// A time as people ask about it on call, relative to `now` ("3m05s ago", format_relative);
/// raw RFC 3339 UTC.
Cell relative_time_cell(Micros at, Micros now);
/// A span: format_span ("1.2s", "8h03m+", "-"); raw integer microseconds, or "".
Cell span_cell(const Span& span);
/// A duration: format_duration or "-"; raw integer microseconds, or "".
Cell duration_cell(std::optional<Micros> duration);
/// A text: or_dash; raw the text itself ("" for none).
Cell text_cell(const std::string& text);
/// A count, the same for people and programs.
Cell count_cell(std::int64_t count);
/// A yes/no that only CSV carries (the table folds it into another cell): raw "true"/"false".
Cell flag_cell(bool flag);

/// The names of the states a job can be in (every State but heartbeat, which is only ever an
/// event), in lifecycle order: what `ls --state` takes, and what its completion offers.
std::vector<std::string> job_state_name_list();
/// The same names comma-separated, for help texts and error messages.
std::string job_state_names();
/// The job state called `name`; nothing for an unknown name or for "heartbeat".
std::optional<State> parse_job_state(std::string_view name);
/// The states of a comma-separated list ("failed,dead"), for `ls --state` and GET /v1/jobs?state=.
/// Throws std::invalid_argument naming the first bad entry ("unknown job state 'x'").
std::vector<State> parse_job_states(std::string_view list);

/// The first line of an error, "Class: message", for a one-line cell ("" when there is none);
/// " [+N lines]" says what the cell leaves out.
std::string error_summary(const ErrorInfo& error);

/// `text`, or "-" when it is empty, for table cells.
std::string or_dash(const std::string& text);

/// JSON null for an absent value, the value otherwise.
nlohmann::ordered_json json_time(std::optional<Micros> at);
nlohmann::ordered_json json_text(const std::string& text);
nlohmann::ordered_json json_error(const ErrorInfo& error);

/// The fields show, trace and ls print for a job in JSON, and GET /v1/jobs... answers.
/// wait_us and run_us are the spans the table shows: for a job still waiting or running they
/// are measured up to `now` and wait_ongoing / run_ongoing is true (the table's trailing "+").
nlohmann::ordered_json job_json(const JobRecord& job, Micros now);

/// What a page of a list leaves out, in JSON: {"next": cursor or null, "shown", "total",
/// "total_exact"}. GET /v1/jobs answers it beside "jobs"; `ls --format json` prints it on stderr
/// when the page is partial.
nlohmann::ordered_json page_json(const JobPage& page);
/// What a page holds of what matches from its first job on, for people: "showing 50 of 1234
/// jobs", "showing 50 of more than 10050 jobs" (the count is bounded, see list_page). The one
/// wording of `ls`'s note and the console's search page.
std::string page_count(const JobPage& page);
/// The same for people: "showing 50 of 1234 jobs; more: add --cursor X"; `from_cursor`: the
/// page started at a cursor (its total counts from there on). Empty for a complete list.
std::string page_note(const JobPage& page, bool from_cursor);

}  // namespace jobtrail::view
