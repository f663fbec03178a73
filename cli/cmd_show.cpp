// `jobtrail show JOB_ID`: one job's derived row and its whole timeline.

#include <algorithm>
#include <ostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli_error.h"
#include "commands.h"
#include "global_options.h"
#include "jobtrail/view/job_view.h"
#include "jobtrail/store.h"
#include "jobtrail/view/output.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::cli {
namespace {

// More would not help anyone reading one job; JSON gets the same list.
constexpr std::size_t max_anomalies_shown = 20;

std::string time_or_dash(std::optional<Micros> at) { return at ? format_timestamp(*at) : "-"; }

std::string describe(const AnomalyRecord& anomaly) {
  std::string text = fmt::format("{} at {}", to_string(anomaly.kind), format_timestamp(anomaly.at));
  if (!anomaly.other_job_id.empty()) text += fmt::format(", like job {}", anomaly.other_job_id);
  if (!anomaly.detail.empty()) text += fmt::format(" ({})", anomaly.detail);
  return text;
}

std::string describe(const ErrorInfo& error) {
  if (error.error_class.empty()) return error.message;
  if (error.message.empty()) return error.error_class;
  return fmt::format("{}: {}", error.error_class, error.message);
}

/// The first line of a message, for a table cell; the rest go below the row (add_lines).
std::string_view first_line(std::string_view text) { return text.substr(0, text.find('\n')); }
std::string_view after_first_line(std::string_view text) {
  const std::size_t end = text.find('\n');
  return end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
}

void add_lines(Table& table, std::string_view text, std::string_view indent) {
  std::size_t begin = 0;
  while (begin < text.size()) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(begin, end - begin);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    table.add_detail_line(fmt::format("{}{}", indent, line));
    begin = end + 1;
  }
}

Micros first_event_time(const JobRecord& job, const std::vector<EventRecord>& events) {
  Micros first = job.first_event_at;
  for (const EventRecord& event : events) first = std::min(first, event.at);
  return first;
}

void print_table(const JobRecord& job, const std::vector<EventRecord>& events,
                 const std::vector<AnomalyRecord>& anomalies, const ShowOptions& options, Micros now,
                 std::ostream& out) {
  Table summary({});
  summary.add_row({"job ID", job.job_id});
  summary.add_row({"class", or_dash(job.job)});
  summary.add_row({"state", std::string(to_string(job.state))});
  summary.add_row({"attempts", std::to_string(job.attempts)});
  summary.add_row({"queue", or_dash(job.queue)});
  summary.add_row({"correlation ID", or_dash(job.correlation_id)});
  summary.add_row({"parent job", or_dash(job.parent_job_id)});
  summary.add_row({"idempotency key", or_dash(job.idempotency_key)});
  summary.add_row({"enqueued", time_or_dash(job.enqueued_at)});
  summary.add_row({"started", time_or_dash(job.started_at)});
  summary.add_row({"finished", time_or_dash(job.finished_at)});
  if (job.heartbeat_at) {
    // For a job still running, how long it has been silent is what tells stuck from slow.
    const std::string silence =
        is_final(job.state) ? "" : fmt::format(" ({} ago)", format_duration(now - *job.heartbeat_at));
    summary.add_row({"last heartbeat", format_timestamp(*job.heartbeat_at) + silence});
  }
  summary.add_row({"wait", format_span(wait_span(job, now))});
  summary.add_row({"run", format_span(run_span(job, now))});
  summary.add_row({"worker", or_dash(job.worker)});
  summary.add_row({"entities", job.entities.empty() ? "-" : fmt::format("{}", fmt::join(job.entities, " "))});
  if (!anomalies.empty()) {
    for (std::size_t i = 0; i < anomalies.size(); ++i) {
      summary.add_row({i == 0 ? "anomalies" : "", describe(anomalies[i])});
    }
  } else if (job.anomalies != 0) {
    summary.add_row({"anomalies", fmt::format("{}", fmt::join(anomaly_names(job.anomalies), ", "))});
  } else {
    summary.add_row({"anomalies", "none"});
  }
  if (!job.last_error.empty()) {
    // A multi-line message prints as lines below its row, not as one line with "\n" in it.
    const std::string error = describe(job.last_error);
    summary.add_row({"last error", std::string(first_line(error))});
    add_lines(summary, after_first_line(error), "    ");
  }
  summary.print(out);

  out << fmt::format("\n{} event{}:\n", events.size(), events.size() == 1 ? "" : "s");
  const Micros first = first_event_time(job, events);
  Table timeline({"TIME", "OFFSET", "STATE", "ATTEMPT", "WORKER", "ERROR"},
                 {Align::left, Align::right, Align::left, Align::right, Align::left, Align::left});
  std::size_t hidden_backtraces = 0;
  for (const EventRecord& event : events) {
    timeline.add_row({format_timestamp(event.at), "+" + format_duration(event.at - first),
                      std::string(to_string(event.state)),
                      event.attempt > 0 ? std::to_string(event.attempt) : "-", or_dash(event.worker),
                      std::string(first_line(describe(event.error)))});
    add_lines(timeline, after_first_line(describe(event.error)), "    ");
    if (event.error.backtrace.empty()) continue;
    if (options.backtrace) {
      add_lines(timeline, event.error.backtrace, "    ");
    } else {
      ++hidden_backtraces;
    }
  }
  timeline.print(out);
  if (hidden_backtraces > 0) {
    out << fmt::format("({} backtrace{} hidden; add --backtrace to show)\n", hidden_backtraces,
                       hidden_backtraces == 1 ? "" : "s");
  }
}

void print_json(const JobRecord& job, const std::vector<EventRecord>& events,
                const std::vector<AnomalyRecord>& anomalies, Micros now, std::ostream& out) {
  nlohmann::ordered_json result = job_json(job, now);
  result["entities"] = job.entities;
  nlohmann::ordered_json anomaly_records = nlohmann::ordered_json::array();
  for (const AnomalyRecord& anomaly : anomalies) {
    anomaly_records.push_back({{"kind", std::string(to_string(anomaly.kind))},
                               {"at", format_rfc3339(anomaly.at)},
                               {"other_job_id", json_text(anomaly.other_job_id)},
                               {"detail", json_text(anomaly.detail)}});
  }
  result["anomaly_records"] = std::move(anomaly_records);
  const Micros first = first_event_time(job, events);
  nlohmann::ordered_json timeline = nlohmann::ordered_json::array();
  for (const EventRecord& event : events) {
    timeline.push_back({{"at", format_rfc3339(event.at)},
                        {"offset_us", event.at - first},
                        {"state", std::string(to_string(event.state))},
                        {"attempt", event.attempt > 0 ? nlohmann::ordered_json(event.attempt) : nullptr},
                        {"worker", json_text(event.worker)},
                        {"error", json_error(event.error)}});
  }
  result["events"] = std::move(timeline);
  print_json_line(out, result);
}

}  // namespace

CLI::App* setup_show(CLI::App& app, ShowOptions& options) {
  CLI::App* show = app.add_subcommand("show", "One job: its derived state and its whole timeline of events.");
  show->add_option("JOB_ID", options.job_id, "The job's ID, as its enqueuer recorded it.")->required();
  show->add_flag("--backtrace", options.backtrace,
                 "Print each failed attempt's backtrace under its event. Off by default so a job\n"
                 "that failed many times still fits a screen; JSON always includes them.");
  show->footer(subcommand_footer(
      "Table: a summary, then the events in lifecycle order with their offset from the\n"
      "first event. A duration ending in + is still growing (the job is waiting or running).\n"
      "JSON: one object with the job's fields, \"anomaly_records\" and \"events\".\n"));
  return show;
}

int run_show(const GlobalOptions& global, const ShowOptions& options, std::ostream& out) {
  const Micros now = current_time(global);
  const auto store = open_store_for(global, StoreAccess::read_only);
  const std::optional<JobRecord> job = store->find_job(options.job_id);
  if (!job) throw CliError(exit_not_found, fmt::format("no job with ID '{}' (jobtrail ls lists the recorded ones)", options.job_id));
  const std::vector<EventRecord> events = store->events_of(options.job_id);
  const std::vector<AnomalyRecord> anomalies =
      job->anomalies != 0 ? store->anomalies(options.job_id, max_anomalies_shown) : std::vector<AnomalyRecord>{};
  if (global.format == OutputFormat::json) {
    print_json(*job, events, anomalies, now, out);
  } else {
    print_table(*job, events, anomalies, options, now, out);
  }
  return exit_ok;
}

}  // namespace jobtrail::cli
