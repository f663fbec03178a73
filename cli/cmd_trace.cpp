// `jobtrail trace CORRELATION_ID`: the tree of jobs one request caused.

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
#include "jobtrail/view/trace_tree.h"
#include "jobtrail/store.h"
#include "jobtrail/view/output.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::cli {
namespace {

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

void print_table(const std::vector<JobRecord>& jobs, const std::vector<TreeLine>& lines, Micros now,
                 std::ostream& out) {
  Table table({"JOB", "CLASS", "STATE", "ATTEMPTS", "WAIT", "RUN", "FLAGS"},
              {Align::left, Align::left, Align::left, Align::right, Align::right, Align::right, Align::left});
  for (const TreeLine& line : lines) {
    const JobRecord& job = *line.job;
    std::string flags = anomaly_flags(job);
    if (line.parent_missing) {
      if (!flags.empty()) flags += ",";
      flags += fmt::format("parent {} not recorded", job.parent_job_id);
    }
    table.add_row({line.prefix + job.job_id, or_dash(job.job), std::string(to_string(job.state)),
                   std::to_string(job.attempts), format_span(wait_span(job, now)),
                   format_span(run_span(job, now)), flags});
  }
  table.print(out);
  out << '\n' << summary_line(jobs) << '\n';
}

}  // namespace

CLI::App* setup_trace(CLI::App& app, TraceOptions& options) {
  CLI::App* trace = app.add_subcommand("trace", "The tree of jobs one request caused, with their timings.");
  trace->add_option("CORRELATION_ID", options.correlation_id, "The request's correlation ID.")->required();
  trace->footer(subcommand_footer(
      "Table: jobs under the job that enqueued them (oldest first), a job whose parent was\n"
      "never recorded at the top; WAIT is enqueue to start, RUN start to end of the latest\n"
      "attempt, a trailing + means still waiting or running; then a summary line.\n"
      "JSON: one object per job per line, in the same order, with \"depth\" (0 for a root)\n"
      "and \"parent_job_id\".\n"));
  return trace;
}

int run_trace(const GlobalOptions& global, const TraceOptions& options, std::ostream& out) {
  const Micros now = current_time(global);
  const auto store = open_store_for(global, StoreAccess::read_only);
  const std::vector<JobRecord> jobs = store->jobs_in_trace(options.correlation_id);
  if (jobs.empty()) {
    throw CliError(exit_not_found, fmt::format("no jobs with correlation ID '{}'", options.correlation_id));
  }
  if (global.format == OutputFormat::json) {
    for (const nlohmann::ordered_json& document : trace_documents(jobs, now)) print_json_line(out, document);
  } else {
    print_table(jobs, TreeBuilder(jobs).lines(), now, out);
  }
  return exit_ok;
}

}  // namespace jobtrail::cli
