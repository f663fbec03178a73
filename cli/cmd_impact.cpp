// `jobtrail impact`: the blast radius of a set of jobs — which business entities (customers,
// invoices, users) the jobs of a class, a state or a time window touched, with their jobs.

#include <algorithm>
#include <iostream>
#include <tuple>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_error.h"
#include "commands.h"
#include "global_options.h"
#include "jobtrail/store.h"
#include "jobtrail/view/documents.h"
#include "jobtrail/view/impact_text.h"
#include "jobtrail/view/job_view.h"
#include "jobtrail/view/list_filter.h"
#include "jobtrail/view/output.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::cli {
namespace {

/// --limit's bound, as for ls: a listing a terminal or a pipe can still take.
constexpr std::size_t longest_listing = 1000000;

ImpactFilter filter_from(const ImpactOptions& options, Micros now) {
  ImpactFilter filter = impact_filter(now);
  const std::string limit = std::to_string(options.limit);
  const std::string jobs_per_entity = std::to_string(options.jobs_per_entity);
  const std::string max_jobs = std::to_string(options.max_jobs);
  // (term, option, value): the terms are read by the view layer, as GET /v1/impact reads them.
  const std::tuple<std::string_view, std::string_view, const std::string&> terms[] = {
      {"job", "--job", options.job},       {"state", "--state", options.state},
      {"type", "--type", options.type},    {"since", "--since", options.since},
      {"until", "--until", options.until}, {"limit", "--limit", limit},
      {"jobs_per_entity", "--jobs-per-entity", jobs_per_entity}, {"max_jobs", "--max-jobs", max_jobs}};
  for (const auto& [name, option, value] : terms) {
    if (value.empty()) continue;
    if (std::string problem = set_impact_term(filter, name, value, now, option, longest_listing); !problem.empty()) {
      throw CliError(exit_bad_input, problem);
    }
  }
  if (std::string problem = impact_window_problem(filter, "--since", "--until"); !problem.empty()) {
    throw CliError(exit_bad_input, problem);
  }
  return filter;
}

/// The JOB IDS cell: the newest IDs and how many more there are.
std::string job_ids_cell(const EntityImpact& entity) {
  std::string cell;
  for (const std::string& id : entity.job_ids) cell += (cell.empty() ? "" : ", ") + id;
  const std::int64_t more = entity.jobs - static_cast<std::int64_t>(entity.job_ids.size());
  if (more > 0) cell += fmt::format("{}… {} more", cell.empty() ? "" : ", ", more);
  return cell;
}

/// Whether `text` can stand in a shell command as it is: the hints name a real ID when one
/// can be pasted safely, else a placeholder.
bool shell_safe(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("_.:/@%+=,-").find(c) != std::string_view::npos;
  });
}

/// The entities as a table, one column set for both renderings: the table shows JOB IDS as
/// one cell with "… N more"; CSV carries the IDs space-separated, the count of the others and
/// the entity's type in columns of their own (field names as in the JSON document).
Table entity_table(const ImpactReport& report) {
  Table table({Column("ENTITY", "entity"), Column("", "type"), Column("JOBS", "jobs", Align::right),
               Column("FIRST", "first_at"), Column("LAST", "last_at"), Column("JOB IDS"), Column("", "job_ids"),
               Column("", "more_job_ids")});
  for (const EntityImpact& entity : report.entities) {
    std::string ids;
    for (const std::string& id : entity.job_ids) ids += (ids.empty() ? "" : " ") + id;
    table.add_row({entity.entity, Cell("", entity.entity.substr(0, entity.entity.find(':'))),
                   count_cell(entity.jobs), time_cell(entity.first_at), time_cell(entity.last_at),
                   job_ids_cell(entity), Cell("", ids),
                   Cell("", std::to_string(entity.jobs - static_cast<std::int64_t>(entity.job_ids.size())))});
  }
  return table;
}

void print_table(const GlobalOptions& global, const ImpactFilter& filter, const ImpactReport& report,
                 std::ostream& out) {
  // Every line below may quote a class or an entity type an event brought: escaped like cells.
  out << printable(impact_scope(filter)) << '\n' << printable(impact_summary(filter, report)) << '\n';
  if (!report.complete()) out << "--max-jobs 0 reads them all\n";
  if (report.entities.empty()) {
    if (report.matching_jobs > 0 && report.tagged_jobs == 0 && filter.entity_type.empty()) {
      out << "tag jobs with the business objects they work on (emit --entity user:42, Event::entities)\n"
             "to see what they touched\n";
    }
    return;
  }
  out << '\n';
  write_table(global, entity_table(report), out);
  out << '\n';
  if (const std::string shown = impact_shown(report); !shown.empty()) {
    out << fmt::format("{}; use --limit {} to see them all\n", shown, report.entity_count);
  }
  // The examples: the first job and the first entity listed that can be pasted as they are.
  std::string job, entity;
  for (const EntityImpact& listed : report.entities) {
    if (entity.empty() && shell_safe(listed.entity)) entity = listed.entity;
    for (const std::string& id : listed.job_ids) {
      if (job.empty() && shell_safe(id)) job = id;
    }
  }
  if (job.empty()) job = "JOB_ID";
  if (entity.empty()) entity = "TYPE:ID";
  out << fmt::format("a job's timeline: jobtrail show {}; every job of an entity: jobtrail ls --entity {}\n", job,
                     entity);
}

}  // namespace

CLI::App* setup_impact(CLI::App& app, ImpactOptions& options) {
  CLI::App* impact = app.add_subcommand(
      "impact", "Blast radius: the business entities (customers, invoices, users) matching jobs touched.");
  impact->add_option("--job", options.job, "Only jobs of this class, e.g. PaymentJob.")->option_text("CLASS");
  add_job_states_option(*impact, options.state);
  impact->add_option("--type", options.type, "Only entities of this type, e.g. customer (for customer:42).")
      ->option_text("TYPE");
  impact->add_option("--since", options.since,
                     fmt::format("Only jobs first seen at or after this time (default {}):\n{}.",
                                 default_impact_since, time_syntax_help))
      ->option_text("TIME");
  impact->add_option("--until", options.until, "Only jobs first seen before this time (same syntax).")
      ->option_text("TIME");
  impact->add_option("--limit", options.limit, "At most this many entities, most jobs first (default 50).")
      ->check(CLI::Range(std::size_t{1}, longest_listing))
      ->option_text("N");
  impact->add_option("--jobs-per-entity", options.jobs_per_entity,
                     fmt::format("Job IDs named per entity, newest first (default 5, 0 to {}).", most_jobs_per_entity))
      ->check(CLI::Range(std::size_t{0}, most_jobs_per_entity))
      ->option_text("N");
  impact->add_option("--max-jobs", options.max_jobs,
                     fmt::format("Read the tags of at most the newest N matching jobs, a bound on the work\n"
                                 "however many match (default 0: all of them; at most {}).",
                                 most_impact_jobs))
      ->check(CLI::Range(std::size_t{0}, most_impact_jobs))
      ->option_text("N");
  impact->footer(subcommand_footer(
      "Reads the entity tags of the jobs that match (e.g. --job PaymentJob --state failed,dead\n"
      "--since 1h): what was asked, then \"N jobs matched, M tagged with entities, K distinct\n"
      "entities (customer: 3, invoice: 5)\" - every count exact - and per entity its matching\n"
      "jobs, the first event of the oldest and the newest of them, and their newest IDs. More\n"
      "entities than --limit: a line says how many were left out. With --max-jobs, the count of\n"
      "matching jobs stays exact and the rest is of the newest N, as the summary says. No match\n"
      "exits 0.\n"
      "JSON: one object, the one GET /v1/impact answers (docs/cli.md). CSV: a record per\n"
      "entity (entity, type, jobs, first_at, last_at, job_ids space-separated, more_job_ids).\n"));
  return impact;
}

int run_impact(const GlobalOptions& global, const ImpactOptions& options, std::ostream& out) {
  const Micros now = current_time(global);
  const ImpactFilter filter = filter_from(options, now);
  const auto store = open_store_for(global, StoreAccess::read_only);
  const ImpactReport report = store->impact(filter);
  if (global.format == OutputFormat::json) {
    print_json_line(out, impact_document(filter, report));
  } else if (global.format == OutputFormat::csv) {
    write_table(global, entity_table(report), out);  // the records alone: no summary, no hints
  } else {
    print_table(global, filter, report, out);
  }
  return exit_ok;
}

}  // namespace jobtrail::cli
