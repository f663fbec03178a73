// `jobtrail prune --older-than 30d`: retention.

#include <ostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_error.h"
#include "commands.h"
#include "global_options.h"
#include "jobtrail/store.h"
#include "jobtrail/view/output.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::cli {

CLI::App* setup_prune(CLI::App& app, PruneOptions& options) {
  CLI::App* prune = app.add_subcommand("prune", "Delete finished jobs whose last event is older than a duration.");
  prune->add_option("--older-than", options.older_than, "How old a job's last event must be, e.g. 30d, 12h.")
      ->required()
      ->option_text("DURATION");
  prune->footer(subcommand_footer(
      "Jobs still waiting or running are kept however old they are. Check results of older\n"
      "runs go too, but each check's newest result and newest pass stay. Prints how many were\n"
      "deleted (JSON: {\"jobs\", \"events\", \"check_results\", \"cutoff\"}). The store must exist.\n"));
  return prune;
}

int run_prune(const GlobalOptions& global, const PruneOptions& options, std::ostream& out) {
  const Micros age = parse_duration_argument("--older-than", options.older_than);
  const Micros cutoff = current_time(global) - age;
  const auto store = open_store_for(global, StoreAccess::read_write);
  const PruneResult result = store->prune(cutoff);
  if (global.format == OutputFormat::json) {
    print_json_line(out, {{"jobs", result.jobs},
                          {"events", result.events},
                          {"check_results", result.check_results},
                          {"cutoff", format_rfc3339(cutoff)}});
  } else {
    out << fmt::format("deleted {} job{} ({} event{}) last active before {}\n", result.jobs,
                       result.jobs == 1 ? "" : "s", result.events, result.events == 1 ? "" : "s",
                       format_timestamp(cutoff));
    if (result.check_results > 0) {
      out << fmt::format("deleted {} check result{} of runs before then (each check keeps its newest and its "
                         "newest pass)\n",
                         result.check_results, result.check_results == 1 ? "" : "s");
    }
  }
  return exit_ok;
}

}  // namespace jobtrail::cli
