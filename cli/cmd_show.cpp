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
#include "jobtrail/view/documents.h"
#include "jobtrail/view/job_view.h"
#include "jobtrail/store.h"
#include "jobtrail/view/output.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::cli {
namespace {

std::string time_or_dash(std::optional<Micros> at) { return at ? format_timestamp(*at) : "-"; }

// Prefixes matching more jobs than this are reported as ambiguous with this many examples.
constexpr std::size_t max_candidates = 8;

std::string describe(const ShownAnomaly& anomaly) {
  std::string text = fmt::format("{} at {}", to_string(anomaly.kind), format_timestamp(anomaly.at));
  if (anomaly.flagged_on_other) {
    text += fmt::format(", job {} succeeded again under its key", anomaly.other_job_id);
  } else if (!anomaly.other_job_id.empty()) {
    text += fmt::format(", like job {}", anomaly.other_job_id);
  }
  if (!anomaly.detail.empty()) text += fmt::format(" ({})", anomaly.detail);
  return text;
}

/// Kinds flagged on the job that no listed record explains (records pruned, or beyond the
/// limit): named, so that no flag goes unmentioned.
std::vector<std::string> unexplained_kinds(const JobRecord& job, const std::vector<ShownAnomaly>& anomalies) {
  std::vector<std::string> names;
  for (const AnomalyKind kind : {AnomalyKind::duplicate_success, AnomalyKind::duplicate_idempotency_key}) {
    if ((job.anomalies & (1u << static_cast<unsigned>(kind))) == 0) continue;
    const bool listed = std::any_of(anomalies.begin(), anomalies.end(),
                                    [kind](const ShownAnomaly& anomaly) { return anomaly.kind == kind; });
    if (!listed) names.emplace_back(to_string(kind));
  }
  return names;
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

/// The timeline: one row per event; as CSV (show --format csv), one record per event with
/// its fields named as in the events of show's JSON, the error whole.
Table timeline_table(const ShowData& data, const ShowOptions& options, std::size_t& hidden_backtraces) {
  const JobRecord& job = data.job;
  const Micros first = first_event_time(job, data.events);
  Table timeline({{"", "job_id"},
                  {"TIME", "at"},
                  {"OFFSET", "offset_us", Align::right},
                  {"STATE", "state"},
                  {"ATTEMPT", "attempt", Align::right},
                  {"WORKER", "worker"},
                  {"ERROR"},  // its first line; CSV has the whole of it:
                  {"", "error_class"},
                  {"", "error_message"},
                  {"", "backtrace"}});
  hidden_backtraces = 0;
  for (const EventRecord& event : data.events) {
    timeline.add_row({Cell("", job.job_id), time_cell(event.at),
                      Cell("+" + format_duration(event.at - first), std::to_string(event.at - first)),
                      state_cell(event.state),
                      event.attempt > 0 ? count_cell(event.attempt) : Cell("-", ""), text_cell(event.worker),
                      std::string(first_line(describe(event.error))), Cell("", event.error.error_class),
                      Cell("", event.error.message), Cell("", event.error.backtrace)});
    add_lines(timeline, after_first_line(describe(event.error)), "    ");
    if (event.error.backtrace.empty()) continue;
    if (options.backtrace) {
      add_lines(timeline, event.error.backtrace, "    ");
    } else {
      ++hidden_backtraces;
    }
  }
  return timeline;
}

/// The summary and the timeline for people; with --format csv the timeline alone (a key/value
/// summary has no CSV form, and its fields are ls's).
void print_table(const GlobalOptions& global, const ShowData& data, const ShowOptions& options, Micros now,
                 std::ostream& out) {
  const JobRecord& job = data.job;
  const std::vector<EventRecord>& events = data.events;
  std::size_t hidden_backtraces = 0;
  const Table timeline = timeline_table(data, options, hidden_backtraces);
  if (global.format == OutputFormat::csv) {
    write_table(global, timeline, out);
    return;
  }
  Table summary({});
  summary.add_row({"job ID", job.job_id});
  summary.add_row({"class", or_dash(job.job)});
  summary.add_row({"state", state_cell(job.state)});
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
        is_final(job.state) ? "" : fmt::format(" ({})", format_relative(*job.heartbeat_at, now));
    summary.add_row({"last heartbeat", format_timestamp(*job.heartbeat_at) + silence});
  }
  // How fresh the newest news of the job is, without subtracting timestamps in one's head.
  summary.add_row(
      {"last event", fmt::format("{} ({})", format_timestamp(job.last_event_at), format_relative(job.last_event_at, now))});
  summary.add_row({"wait", format_span(wait_span(job, now))});
  summary.add_row({"run", format_span(run_span(job, now))});
  summary.add_row({"worker", or_dash(job.worker)});
  summary.add_row({"entities", job.entities.empty() ? "-" : fmt::format("{}", fmt::join(job.entities, " "))});
  std::vector<std::string> anomaly_lines;
  for (const ShownAnomaly& anomaly : data.anomalies) anomaly_lines.push_back(describe(anomaly));
  if (data.more_anomalies) {
    anomaly_lines.push_back(fmt::format("more not shown (the newest {} are; --format json lists the same)",
                                        max_anomalies_shown));
  }
  for (const std::string& name : unexplained_kinds(job, data.anomalies)) {
    anomaly_lines.push_back(fmt::format("{} (flagged; its record is no longer stored)", name));
  }
  const Tone anomaly_tone = anomaly_lines.empty() ? Tone::plain : Tone::alert;
  if (anomaly_lines.empty()) anomaly_lines.push_back("none");
  for (std::size_t i = 0; i < anomaly_lines.size(); ++i) {
    summary.add_row({i == 0 ? "anomalies" : "", Cell(anomaly_lines[i], anomaly_tone)});
  }
  if (!job.last_error.empty()) {
    // A multi-line message prints as lines below its row, not as one line with "\n" in it.
    const std::string error = describe(job.last_error);
    summary.add_row({"last error", std::string(first_line(error))});
    add_lines(summary, after_first_line(error), "    ");
  }
  write_table(global, summary, out);

  out << fmt::format("\n{} event{}:\n", events.size(), events.size() == 1 ? "" : "s");
  write_table(global, timeline, out);
  if (hidden_backtraces > 0) {
    out << fmt::format("({} backtrace{} hidden; add --backtrace to show)\n", hidden_backtraces,
                       hidden_backtraces == 1 ? "" : "s");
  }
}

}  // namespace

CLI::App* setup_show(CLI::App& app, ShowOptions& options) {
  CLI::App* show = app.add_subcommand("show", "One job: its derived state and its whole timeline of events.");
  show->add_option("JOB_ID", options.job_id,
                   "The job's ID, as its enqueuer recorded it, or the start of it if only one\n"
                   "job's ID starts so (else the candidates are named and it exits 1).")
      ->required();
  show->add_flag("--backtrace", options.backtrace,
                 "Print each failed attempt's backtrace under its event. Off by default so a job\n"
                 "that failed many times still fits a screen; JSON always includes them.");
  show->footer(subcommand_footer(
      "Table: a summary, then the events in lifecycle order with their offset from the\n"
      "first event. A duration ending in + is still growing (the job is waiting or running).\n"
      "Anomalies lists every flag with the other job of the pair, also when the other job\n"
      "was the one flagged (a later success under this job's idempotency key).\n"
      "\"last event\" also says how long ago it was (as of --now).\n"
      "JSON: one object with the job's fields, \"anomaly_records\" and \"events\".\n"
      "CSV: the timeline only, one record per event: job_id, at (RFC 3339 UTC), offset_us,\n"
      "state, attempt, worker, error_class, error_message and backtrace, whole (newlines\n"
      "kept inside quoted fields); the job's own fields are in ls --format csv or JSON.\n"));
  return show;
}

namespace {

std::size_t common_start(std::string_view a, std::string_view b) {
  std::size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

std::string quoted_list(const std::vector<std::string>& ids) {
  std::vector<std::string> shown;
  for (const std::string& id : ids) shown.push_back("'" + printable(id) + "'");
  return fmt::format("{}", fmt::join(shown, ", "));
}

/// The job `typed` names: its exact ID, else the one job whose ID starts with it. Throws
/// CliError (not found) naming the candidates when the prefix is ambiguous or matches nothing.
JobRecord resolve_job(Store& store, const std::string& typed) {
  if (std::optional<JobRecord> job = store.find_job(typed)) return std::move(*job);
  const std::vector<std::string> matches = store.job_ids_with_prefix(typed, max_candidates + 1);
  if (matches.size() == 1) {
    if (std::optional<JobRecord> job = store.find_job(matches.front())) return std::move(*job);
  }
  if (matches.size() > 1) {
    const bool more = matches.size() > max_candidates;
    const std::vector<std::string> shown(matches.begin(), matches.begin() + static_cast<std::ptrdiff_t>(
                                                                  std::min(matches.size(), max_candidates)));
    throw CliError(exit_not_found, fmt::format("job ID '{}' is ambiguous: {}{} start with it; give more of the ID",
                                               printable(typed), quoted_list(shown), more ? " and more" : ""));
  }
  // Did you mean: the IDs next to it in byte order share the longest start with it; offer
  // those that share at least half of it (and at least one character).
  const std::vector<std::string> near = store.job_ids_near(typed, 3);
  std::size_t best = 0;
  for (const std::string& id : near) best = std::max(best, common_start(typed, id));
  std::vector<std::string> suggestions;
  if (best > 0 && best * 2 >= typed.size()) {
    for (const std::string& id : near) {
      if (common_start(typed, id) == best) suggestions.push_back(id);
    }
  }
  if (!suggestions.empty()) {
    throw CliError(exit_not_found, fmt::format("no job with ID '{}'; did you mean {}?", printable(typed),
                                               quoted_list(suggestions)));
  }
  throw CliError(exit_not_found,
                 fmt::format("no job with ID '{}' (jobtrail ls lists the recorded ones)", printable(typed)));
}

}  // namespace

int run_show(const GlobalOptions& global, const ShowOptions& options, std::ostream& out) {
  const Micros now = current_time(global);
  const auto store = open_store_for(global, StoreAccess::read_only);
  const JobRecord job = resolve_job(*store, options.job_id);
  const std::optional<ShowData> data = read_show(*store, job.job_id);
  if (!data) throw CliError(exit_not_found, fmt::format("no job with ID '{}' (pruned just now?)", printable(job.job_id)));
  if (global.format == OutputFormat::json) {
    print_json_line(out, show_document(*data, now));
  } else {
    print_table(global, *data, options, now, out);
  }
  return exit_ok;
}

}  // namespace jobtrail::cli
