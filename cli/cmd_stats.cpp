// `jobtrail stats`: per job class, how jobs ended and how long they waited and ran.

#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
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

std::string duration_or_dash(std::optional<Micros> duration) {
  return duration ? format_duration(*duration) : "-";
}

/// The group a row is about: the job class, or the queue with --by queue.
const std::string& group_of(const JobStats& stats, bool by_queue) { return by_queue ? stats.queue : stats.job; }

void print_table(const std::vector<JobStats>& all_stats, bool by_queue, std::ostream& out) {
  Table table({by_queue ? "QUEUE" : "CLASS", "TOTAL", "ENQUEUED", "RUNNING", "SUCCEEDED", "FAILED", "DEAD", "CANCELLED", "FAILURE",
               "WAIT P50", "WAIT P95", "RUN P50", "RUN P95"},
              {Align::left, Align::right, Align::right, Align::right, Align::right, Align::right, Align::right,
               Align::right, Align::right, Align::right, Align::right, Align::right, Align::right});
  for (const JobStats& stats : all_stats) {
    table.add_row({or_dash(group_of(stats, by_queue)), std::to_string(stats.total), std::to_string(stats.enqueued),
                   std::to_string(stats.running), std::to_string(stats.succeeded), std::to_string(stats.failed),
                   std::to_string(stats.dead), std::to_string(stats.cancelled),
                   has_finished_jobs(stats) ? fmt::format("{:.1f}%", stats.failure_rate * 100) : "-", duration_or_dash(stats.wait_p50),
                   duration_or_dash(stats.wait_p95), duration_or_dash(stats.run_p50),
                   duration_or_dash(stats.run_p95)});
  }
  table.print(out);
}

}  // namespace

CLI::App* setup_stats(CLI::App& app, StatsOptions& options) {
  CLI::App* stats = app.add_subcommand("stats", "Per job class: counts by state, failure rate, wait and run times.");
  stats->add_option("--since", options.since,
                    fmt::format("Only jobs first seen at or after this time (default: all jobs):\n{}.", time_syntax_help))
      ->option_text("TIME");
  stats->add_option("--until", options.until, "Only jobs first seen before this time (same syntax).")
      ->option_text("TIME");
  stats->add_option("--job", options.job, "Only jobs of this class, e.g. PaymentJob.")->option_text("CLASS");
  stats->add_option("--by", options.by, "One row per job class (default) or per queue.")
      ->check(CLI::IsMember({"class", "queue"}))
      ->option_text("class|queue");
  stats->footer(subcommand_footer(
      "Counts are by each job's current state (RUNNING = started). FAILURE is failed + dead\n"
      "over succeeded + failed + dead. WAIT is enqueue to start, RUN start to end of each\n"
      "job's latest attempt.\n"
      "JSON: one object per class per line; failure_rate is a fraction (0.25), not percent,\n"
      "and null (table: -) while none of the class's jobs has finished.\n"));
  return stats;
}

int run_stats(const GlobalOptions& global, const StatsOptions& options, std::ostream& out) {
  const Micros now = current_time(global);
  StatsFilter filter;
  if (!options.since.empty()) filter.since = parse_time_argument("--since", options.since, now);
  if (!options.until.empty()) filter.until = parse_time_argument("--until", options.until, now);
  if (filter.since && filter.until && *filter.until <= *filter.since) {
    throw CliError(exit_bad_input, "--until must be later than --since");
  }
  filter.job = options.job;
  const bool by_queue = options.by == "queue";
  filter.by = by_queue ? StatsGroup::queue : StatsGroup::job_class;
  const std::optional<Micros> since = filter.since;
  const auto store = open_store_for(global, StoreAccess::read_only);
  const std::vector<JobStats> all_stats = store->stats(filter);
  if (global.format == OutputFormat::json) {
    for (const JobStats& stats : all_stats) print_json_line(out, stats_document(stats, filter.by));
  } else if (all_stats.empty()) {
    // Like ls: no rows is an answer, but a lone header row would look like a failure.
    std::cerr << "jobtrail: no jobs recorded" << (since || filter.until || !filter.job.empty() ? " that match" : "")
              << "\n";
  } else {
    print_table(all_stats, by_queue, out);
  }
  return exit_ok;
}

}  // namespace jobtrail::cli
