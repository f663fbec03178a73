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

/// The group a row is about: the job class, or the queue with --by queue.
const std::string& group_of(const JobStats& stats, bool by_queue) { return by_queue ? stats.queue : stats.job; }

/// The table of stats; its CSV fields are stats_document's names.
Table stats_table(const std::vector<JobStats>& all_stats, bool by_queue) {
  Table table({{by_queue ? "QUEUE" : "CLASS", by_queue ? "queue" : "job"},
               {"TOTAL", "total", Align::right},
               {"ENQUEUED", "enqueued", Align::right},
               {"RUNNING", "running", Align::right},
               {"SUCCEEDED", "succeeded", Align::right},
               {"FAILED", "failed", Align::right},
               {"DEAD", "dead", Align::right},
               {"CANCELLED", "cancelled", Align::right},
               {"FAILURE", "failure_rate", Align::right},
               {"WAIT P50", "wait_p50_us", Align::right},
               {"WAIT P95", "wait_p95_us", Align::right},
               {"RUN P50", "run_p50_us", Align::right},
               {"RUN P95", "run_p95_us", Align::right}});
  // A count of jobs that failed or died is what the eye should find.
  const auto count_of = [](std::int64_t count, State state) {
    return Cell(std::to_string(count), count > 0 ? state_tone(state) : Tone::plain);
  };
  for (const JobStats& stats : all_stats) {
    // The rate as a fraction for programs (0.25, as in JSON), in percent for people.
    const Cell failure = has_finished_jobs(stats)
                             ? Cell(fmt::format("{:.1f}%", stats.failure_rate * 100), fmt::format("{}", stats.failure_rate))
                             : Cell("-", "");
    table.add_row({text_cell(group_of(stats, by_queue)), count_cell(stats.total), count_cell(stats.enqueued),
                   count_cell(stats.running), count_cell(stats.succeeded), count_of(stats.failed, State::failed),
                   count_of(stats.dead, State::dead), count_cell(stats.cancelled), failure,
                   duration_cell(stats.wait_p50), duration_cell(stats.wait_p95), duration_cell(stats.run_p50),
                   duration_cell(stats.run_p95)});
  }
  return table;
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
      "and null (table: -) while none of the class's jobs has finished.\n"
      "CSV: the table's columns by their JSON names, failure_rate a fraction, the *_us\n"
      "columns microseconds, empty for none.\n"));
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
    // Like ls: no rows is an answer, but a lone header row would look like a failure (CSV
    // keeps its header: an export with no rows is a file with a header).
    if (global.format == OutputFormat::csv) write_table(global, stats_table(all_stats, by_queue), out);
    out.flush();
    std::cerr << "jobtrail: no jobs recorded" << (since || filter.until || !filter.job.empty() ? " that match" : "")
              << "\n";
  } else {
    write_table(global, stats_table(all_stats, by_queue), out);
  }
  return exit_ok;
}

}  // namespace jobtrail::cli
