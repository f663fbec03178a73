// `jobtrail stats`: per job class, how jobs ended and how long they waited and ran.

#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
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

std::string duration_or_dash(std::optional<Micros> duration) {
  return duration ? format_duration(*duration) : "-";
}

nlohmann::ordered_json duration_json(std::optional<Micros> duration) {
  return duration ? nlohmann::ordered_json(*duration) : nlohmann::ordered_json(nullptr);
}

/// Without a finished job there is no rate: 0.0% would claim a perfect record.
bool has_finished_jobs(const JobStats& stats) { return stats.succeeded + stats.failed + stats.dead > 0; }

void print_table(const std::vector<JobStats>& all_stats, std::ostream& out) {
  Table table({"CLASS", "TOTAL", "ENQUEUED", "RUNNING", "SUCCEEDED", "FAILED", "DEAD", "CANCELLED", "FAILURE",
               "WAIT P50", "WAIT P95", "RUN P50", "RUN P95"},
              {Align::left, Align::right, Align::right, Align::right, Align::right, Align::right, Align::right,
               Align::right, Align::right, Align::right, Align::right, Align::right, Align::right});
  for (const JobStats& stats : all_stats) {
    table.add_row({or_dash(stats.job), std::to_string(stats.total), std::to_string(stats.enqueued),
                   std::to_string(stats.running), std::to_string(stats.succeeded), std::to_string(stats.failed),
                   std::to_string(stats.dead), std::to_string(stats.cancelled),
                   has_finished_jobs(stats) ? fmt::format("{:.1f}%", stats.failure_rate * 100) : "-", duration_or_dash(stats.wait_p50),
                   duration_or_dash(stats.wait_p95), duration_or_dash(stats.run_p50),
                   duration_or_dash(stats.run_p95)});
  }
  table.print(out);
}

void print_json(const std::vector<JobStats>& all_stats, std::ostream& out) {
  for (const JobStats& stats : all_stats) {
    print_json_line(out, {{"job", json_text(stats.job)},
                          {"total", stats.total},
                          {"enqueued", stats.enqueued},
                          {"running", stats.running},
                          {"succeeded", stats.succeeded},
                          {"failed", stats.failed},
                          {"dead", stats.dead},
                          {"cancelled", stats.cancelled},
                          {"failure_rate", has_finished_jobs(stats) ? nlohmann::ordered_json(stats.failure_rate) : nullptr},
                          {"wait_p50_us", duration_json(stats.wait_p50)},
                          {"wait_p95_us", duration_json(stats.wait_p95)},
                          {"run_p50_us", duration_json(stats.run_p50)},
                          {"run_p95_us", duration_json(stats.run_p95)}});
  }
}

}  // namespace

CLI::App* setup_stats(CLI::App& app, StatsOptions& options) {
  CLI::App* stats = app.add_subcommand("stats", "Per job class: counts by state, failure rate, wait and run times.");
  stats->add_option("--since", options.since,
                    fmt::format("Only jobs first seen at or after this time (default: all jobs):\n{}.", time_syntax_help))
      ->option_text("TIME");
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
  std::optional<Micros> since;
  if (!options.since.empty()) since = parse_time_argument("--since", options.since, now);
  const auto store = open_store_for(global, StoreAccess::read_only);
  const std::vector<JobStats> all_stats = store->stats(since);
  if (global.format == OutputFormat::json) {
    print_json(all_stats, out);
  } else if (all_stats.empty()) {
    // Like ls: no rows is an answer, but a lone header row would look like a failure.
    std::cerr << "jobtrail: no jobs recorded" << (since ? " in that time" : "") << "\n";
  } else {
    print_table(all_stats, out);
  }
  return exit_ok;
}

}  // namespace jobtrail::cli
