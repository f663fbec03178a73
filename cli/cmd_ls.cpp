// `jobtrail ls`: jobs matching a filter, newest first.

#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli_error.h"
#include "commands.h"
#include "global_options.h"
#include "jobtrail/view/job_view.h"
#include "jobtrail/view/list_filter.h"
#include "jobtrail/store.h"
#include "jobtrail/view/output.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::cli {
namespace {

/// --limit's bound: a listing a terminal or a pipe can still take.
constexpr std::size_t longest_listing = 1000000;

JobFilter filter_from(const LsOptions& options, Micros now) {
  JobFilter filter;
  const std::pair<std::string_view, const std::string&> terms[] = {
      {"state", options.state}, {"job", options.job},       {"queue", options.queue},
      {"entity", options.entity}, {"since", options.since}, {"until", options.until}};
  for (const auto& [name, value] : terms) {
    if (value.empty()) continue;
    const std::string option = fmt::format("--{}", name);
    if (std::string problem = set_filter_term(filter, name, value, now, option, longest_listing); !problem.empty()) {
      throw CliError(exit_bad_input, problem);
    }
  }
  filter.anomalies_only = options.anomalies_only;
  filter.limit = options.limit;
  return filter;
}

}  // namespace

CLI::App* setup_ls(CLI::App& app, LsOptions& options) {
  CLI::App* ls = app.add_subcommand("ls", "Jobs matching a filter, newest first.");
  ls->add_option("--state", options.state, fmt::format("Only jobs now in this state: {}.", job_state_names()))
      ->option_text("STATE");
  ls->add_option("--job", options.job, "Only jobs of this class, e.g. WelcomeEmailJob.")->option_text("CLASS");
  ls->add_option("--queue", options.queue, "Only jobs on this queue.")->option_text("QUEUE");
  ls->add_option("--entity", options.entity, "Only jobs tagged with this business object, e.g. user:42.")
      ->option_text("TYPE:ID");
  ls->add_option("--since", options.since, fmt::format("Only jobs first seen at or after this time:\n{}.", time_syntax_help))
      ->option_text("TIME");
  ls->add_option("--until", options.until, "Only jobs first seen before this time (same syntax).")
      ->option_text("TIME");
  ls->add_flag("--anomalies", options.anomalies_only,
               "Only jobs flagged with an impossible sequence (duplicate success, duplicate\n"
               "idempotency key).");
  ls->add_option("--limit", options.limit, "At most this many jobs, the newest (default 50).")
      ->check(CLI::Range(std::size_t{1}, longest_listing))
      ->option_text("N");
  ls->footer(subcommand_footer(
      "Table: FIRST SEEN is the job's first event; WAIT is enqueue to start, RUN start to\n"
      "end of the latest attempt, a trailing + means still waiting or running. No match\n"
      "prints nothing on stdout (and a note on stderr for tables) and exits 0.\n"
      "JSON: one object per job per line.\n"));
  return ls;
}

int run_ls(const GlobalOptions& global, const LsOptions& options, std::ostream& out) {
  const Micros now = current_time(global);
  const JobFilter filter = filter_from(options, now);
  const auto store = open_store_for(global, StoreAccess::read_only);
  const std::vector<JobRecord> jobs = store->list_jobs(filter);

  if (global.format == OutputFormat::json) {
    for (const JobRecord& job : jobs) print_json_line(out, job_json(job, now));
    return exit_ok;
  }
  if (jobs.empty()) {
    // Not an error, but a blank screen would leave a person wondering whether it worked.
    std::cerr << "jobtrail: no jobs match\n";
    return exit_ok;
  }
  Table table({"FIRST SEEN", "JOB", "CLASS", "QUEUE", "STATE", "ATTEMPTS", "WAIT", "RUN", "FLAGS"},
              {Align::left, Align::left, Align::left, Align::left, Align::left, Align::right, Align::right,
               Align::right, Align::left});
  for (const JobRecord& job : jobs) {
    table.add_row({format_timestamp(job.first_event_at), job.job_id, or_dash(job.job), or_dash(job.queue),
                   std::string(to_string(job.state)), std::to_string(job.attempts),
                   format_span(wait_span(job, now)), format_span(run_span(job, now)), anomaly_flags(job)});
  }
  table.print(out);
  return exit_ok;
}

}  // namespace jobtrail::cli
