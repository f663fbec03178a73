// `jobtrail prune --older-than 30d`: retention.

#include <optional>
#include <ostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_error.h"
#include "commands.h"
#include "global_options.h"
#include "jobtrail/store.h"
#include "jobtrail/view/job_view.h"
#include "jobtrail/view/output.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::cli {

CLI::App* setup_prune(CLI::App& app, PruneOptions& options) {
  CLI::App* prune = app.add_subcommand("prune", "Delete finished jobs whose last event is older than a duration.");
  prune->add_option("--older-than", options.older_than, "How old a job's last event must be, e.g. 30d, 12h.")
      ->required()
      ->option_text("DURATION");
  prune->add_flag("--dry-run", options.dry_run, "Count what would be deleted, by the same rule; delete nothing.");
  prune->add_flag("--reclaim", options.reclaim,
                  "Then give the freed space back to the file system and say how much (SQLite: the\n"
                  "first time a VACUUM that holds writers back while it runs, later prunes in\n"
                  "steps; PostgreSQL: VACUUM).");
  prune->get_option("--dry-run")->excludes("--reclaim");
  prune->footer(subcommand_footer(
      "Jobs still waiting or running are kept however old they are. Check results of older\n"
      "runs go too, but each check's newest result and newest pass stay. Prints how many were\n"
      "deleted, or with --dry-run would be (JSON: {\"jobs\", \"events\", \"check_results\",\n"
      "\"cutoff\", \"dry_run\"}, with --reclaim also \"bytes_before\", \"bytes_after\"). Without\n"
      "--reclaim the freed space stays in the store for new events. The store must exist.\n"));
  return prune;
}

namespace {

std::string plural(std::int64_t count, const char* noun) {
  return fmt::format("{} {}{}", count, noun, count == 1 ? "" : "s");
}

std::string mebibytes(std::int64_t bytes) { return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20)); }

}  // namespace

int run_prune(const GlobalOptions& global, const PruneOptions& options, std::ostream& out) {
  refuse_csv(global, "prune");
  const Micros age = parse_duration_argument("--older-than", options.older_than);
  const Micros cutoff = current_time(global) - age;
  const auto store = open_store_for(global, options.dry_run ? StoreAccess::read_only : StoreAccess::read_write);
  const PruneResult result = options.dry_run ? store->prunable(cutoff) : store->prune(cutoff);
  std::optional<SpaceReport> space;
  if (options.reclaim) space = store->reclaim_space();
  if (global.format == OutputFormat::json) {
    nlohmann::ordered_json document = {{"jobs", result.jobs},
                                       {"events", result.events},
                                       {"check_results", result.check_results},
                                       {"cutoff", format_rfc3339(cutoff)},
                                       {"dry_run", options.dry_run}};
    if (space) {
      document["bytes_before"] = space->bytes_before;
      document["bytes_after"] = space->bytes_after;
      document["reclaim"] = json_text(space->note);
    }
    print_json_line(out, document);
    return exit_ok;
  }
  const char* verb = options.dry_run ? "would delete" : "deleted";
  out << fmt::format("{} {} ({}) last active before {}\n", verb, plural(result.jobs, "job"),
                     plural(result.events, "event"), format_timestamp(cutoff));
  if (result.check_results > 0) {
    out << fmt::format("{} {} of runs before then (each check keeps its newest and its newest pass)\n", verb,
                       plural(result.check_results, "check result"));
  }
  if (space) {
    out << fmt::format("store size {} -> {}: {}\n", mebibytes(space->bytes_before), mebibytes(space->bytes_after),
                       printable(space->note));
  } else if (!options.dry_run && result.jobs + result.check_results > 0) {
    out << "the freed space stays in the store for new events; add --reclaim to give it back to the file system\n";
  }
  return exit_ok;
}

}  // namespace jobtrail::cli
