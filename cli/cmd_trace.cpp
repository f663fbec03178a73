// `jobtrail trace CORRELATION_ID`: the tree of jobs one request caused.

#include <algorithm>
#include <chrono>
#include <map>
#include <iostream>
#include <set>
#include <thread>

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
#include "jobtrail/view/trace_tree.h"

namespace jobtrail::cli {
namespace {

std::string link_flag(const TreeLine& line) {
  const JobRecord& job = *line.job;
  switch (line.link) {
    case ParentLink::other_trace:
      return fmt::format("parent {} is in trace {} (jobtrail trace {})", job.parent_job_id, line.parent_trace,
                         line.parent_trace);
    case ParentLink::elsewhere:
      return fmt::format("parent {} has no trace (jobtrail show {})", job.parent_job_id, job.parent_job_id);
    case ParentLink::not_recorded: return fmt::format("parent {} not recorded", job.parent_job_id);
    case ParentLink::not_looked_up: return fmt::format("parent {} outside this trace", job.parent_job_id);
    case ParentLink::self: return "its own parent";
    case ParentLink::cycle: return fmt::format("parent cycle {}", line.cycle);
    case ParentLink::none:
    case ParentLink::in_trace: return "";
  }
  return "";
}

std::string summary_line(const std::vector<JobRecord>& jobs) {
  std::vector<std::string> counts;
  for (const State state : all_states()) {
    const auto count = std::count_if(jobs.begin(), jobs.end(), [state](const JobRecord& job) { return job.state == state; });
    if (count > 0) counts.push_back(fmt::format("{} {}", count, to_string(state)));
  }
  Micros first = jobs.front().first_event_at, last = jobs.front().last_event_at;
  for (const JobRecord& job : jobs) {
    first = std::min(first, job.first_event_at);
    last = std::max(last, job.last_event_at);
  }
  return fmt::format("{} job{}: {}; span {} ({} to {})", jobs.size(), jobs.size() == 1 ? "" : "s",
                     fmt::join(counts, ", "), format_duration(last - first), format_timestamp(first),
                     format_timestamp(last));
}

std::string hidden_note(std::size_t hidden) {
  return fmt::format("{} job{} below not shown", hidden, hidden == 1 ? "" : "s");
}

/// The tree as a table; as CSV, one record per job in the same order, its fields named as in
/// the trace's JSON documents (the tree drawn by depth and parent_job_id instead of prefixes).
Table trace_table(const std::vector<TreeLine>& lines, Micros now) {
  Table table({{"JOB", "job_id"},
               {"", "depth"},
               {"", "parent_job_id"},
               {"CLASS", "job"},
               {"STATE", "state"},
               {"ATTEMPTS", "attempts", Align::right},
               {"WAIT", "wait_us", Align::right},
               {"", "wait_ongoing"},
               {"RUN", "run_us", Align::right},
               {"", "run_ongoing"},
               {"FLAGS", "anomalies"},
               {"", "parent_link"},
               {"", "parent_correlation_id"},
               {"", "hidden_below"}});
  for (const TreeLine& line : lines) {
    if (line.job == nullptr) {
      table.add_detail_line(line.hidden_prefix + "… " + hidden_note(line.hidden_below));
      continue;
    }
    const JobRecord& job = *line.job;
    // The table's FLAGS also says where the parent is; CSV has that as parent_link.
    const Cell anomalies = flags_cell(job);
    std::string shown_flags(anomalies.shown());
    if (const std::string link = link_flag(line); !link.empty()) {
      if (!shown_flags.empty()) shown_flags += ",";
      shown_flags += link;
    }
    // Where the parent is, alone, is a note, no alarm.
    const Cell flags(shown_flags, anomalies.value(), anomalies.shown().empty() ? Tone::plain : anomalies.tone());
    const Span wait = wait_span(job, now), run = run_span(job, now);
    table.add_row({Cell(line.prefix + job.job_id, job.job_id), Cell("", std::to_string(line.depth)),
                   Cell("", job.parent_job_id), text_cell(job.job), state_cell(job.state), count_cell(job.attempts),
                   span_cell(wait), flag_cell(wait.ongoing), span_cell(run), flag_cell(run.ongoing), flags,
                   Cell("", std::string(link_name(line.link))), Cell("", line.parent_trace),
                   Cell("", std::to_string(line.hidden_below))});
  }
  return table;
}

void print_table(const GlobalOptions& global, const std::vector<JobRecord>& jobs, const std::vector<TreeLine>& lines,
                 std::size_t hidden, Micros now, std::ostream& out) {
  write_table(global, trace_table(lines, now), out);
  if (global.format == OutputFormat::csv) return;
  out << '\n' << summary_line(jobs);
  if (hidden > 0) out << fmt::format(" ({} hidden by --depth/--width)", hidden);
  out << '\n';
}

/// What --follow compares between two looks at the trace.
struct Seen {
  State state;
  std::int32_t attempts;
  Micros last_event_at;
};

/// Prints a line per job that appeared or changed since `seen`, and updates it.
void print_changes(const std::vector<JobRecord>& jobs, std::map<std::string, Seen>& seen, const GlobalOptions& global,
                   Micros now, std::ostream& out) {
  for (const JobRecord& job : jobs) {
    const auto found = seen.find(job.job_id);
    if (found != seen.end() && found->second.last_event_at == job.last_event_at &&
        found->second.state == job.state && found->second.attempts == job.attempts) {
      continue;
    }
    if (global.format == OutputFormat::json) {
      nlohmann::ordered_json line = job_json(job, now);
      line["change"] = found == seen.end() ? "new" : "changed";
      print_json_line(out, line);
    } else {
      const std::string change = found == seen.end()
                                     ? fmt::format("new, {}", to_string(job.state))
                                     : fmt::format("{} → {}", to_string(found->second.state), to_string(job.state));
      Table table({});
      table.add_row({format_timestamp(job.last_event_at), job.job_id, or_dash(job.job),
                     Cell(change, state_tone(job.state)), fmt::format("attempt {}", job.attempts)});
      write_table(global, table, out);
    }
    seen[job.job_id] = {job.state, job.attempts, job.last_event_at};
  }
  out.flush();
}

[[noreturn]] void follow(Store& store, const GlobalOptions& global, const TraceOptions& options,
                         const std::vector<JobRecord>& first, std::ostream& out) {
  std::map<std::string, Seen> seen;
  for (const JobRecord& job : first) seen[job.job_id] = {job.state, job.attempts, job.last_event_at};
  if (global.format == OutputFormat::table) {
    out << fmt::format("following: a line per job that appears or changes (Ctrl-C stops)\n");
  }
  out.flush();
  for (;;) {
    // One look-up of the trace's index a second: cheap however large the store is.
    std::this_thread::sleep_for(std::chrono::seconds(1));
    print_changes(store.jobs_in_trace(options.correlation_id), seen, global, current_time(global), out);
  }
}

}  // namespace

CLI::App* setup_trace(CLI::App& app, TraceOptions& options) {
  CLI::App* trace = app.add_subcommand("trace", "The tree of jobs one request caused, with their timings.");
  trace->add_option("CORRELATION_ID", options.correlation_id, "The request's correlation ID.")->required();
  trace->add_option("--depth", options.depth,
                    "Draw jobs down to this depth (0: the roots only) and count the rest under the\n"
                    "last job drawn.")
      ->check(CLI::Range(std::size_t{0}, std::size_t{1000000}))
      ->option_text("N");
  trace->add_option("--width", options.width, "Draw at most this many children of each job; count the rest.")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}))
      ->option_text("N");
  trace->add_flag("--follow", options.follow,
                  "After the tree, print a line for each job of the request that appears or\n"
                  "changes state, as it lands (checked every second), until Ctrl-C. Waits for\n"
                  "the first job when none is recorded yet.");
  trace->footer(subcommand_footer(
      "Table: jobs under the job that enqueued them (oldest first); WAIT is enqueue to start,\n"
      "RUN start to end of the latest attempt, a trailing + means still waiting or running;\n"
      "then a summary line. A job whose parent is elsewhere is a root, and FLAGS says where\n"
      "the parent is: in another trace (with the command that shows it), recorded without a\n"
      "trace, or not recorded; also a job that is its own parent, and parent cycles\n"
      "(a → b → a: a's parent is b, b's parent is a), drawn once from their oldest job.\n"
      "Deeper than 16 levels the depth is written as [N] instead of indenting further.\n"
      "JSON: one object per job per line, in the same order, with \"depth\" (0 for a root),\n"
      "\"parent_link\" (none, in_trace, other_trace, no_trace, not_recorded, not_looked_up,\n"
      "self, cycle), \"parent_correlation_id\" and \"hidden_below\" (jobs not drawn below it);\n"
      "--follow adds one object per change with \"change\": new or changed.\n"
      "CSV: one record per job in the same order, the JSON fields of the table's columns\n"
      "plus depth, parent_job_id, parent_link, parent_correlation_id and hidden_below; no\n"
      "summary line. --follow takes table or json only.\n"));
  return trace;
}

int run_trace(const GlobalOptions& global, const TraceOptions& options, std::ostream& out) {
  if (options.follow && global.format == OutputFormat::csv) {
    // Its lines are changes, not rows of the tree's columns: one CSV could not hold both.
    throw CliError(exit_bad_input, "trace --follow prints changes, not a table: use --format table or json");
  }
  const Micros now = current_time(global);
  const auto store = open_store_for(global, StoreAccess::read_only);
  const std::vector<JobRecord> jobs = store->jobs_in_trace(options.correlation_id);
  if (jobs.empty()) {
    if (!options.follow) {
      throw CliError(exit_not_found, fmt::format("no jobs with correlation ID '{}'", printable(options.correlation_id)));
    }
    std::cerr << fmt::format("jobtrail: no jobs with correlation ID '{}' yet; waiting for them (Ctrl-C stops)\n",
                             printable(options.correlation_id));
    follow(*store, global, options, jobs, out);
  }
  TreeBuilder builder(jobs, {options.depth, options.width});
  const std::vector<TreeLine> lines = builder.lines(outside_parents(*store, jobs));
  if (global.format == OutputFormat::json) {
    for (const nlohmann::ordered_json& document : trace_documents(lines, now)) print_json_line(out, document);
  } else {
    print_table(global, jobs, lines, builder.hidden(), now, out);
  }
  if (options.follow) follow(*store, global, options, jobs, out);
  return exit_ok;
}

}  // namespace jobtrail::cli
