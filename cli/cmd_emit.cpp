// `jobtrail emit`: record one event, for workers and scripts that cannot link the tracker.

#include <limits>
#include <ostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli_error.h"
#include "commands.h"
#include "generate_docs.h"
#include "global_options.h"
#include "jobtrail/store.h"
#include "jobtrail/view/event_time.h"
#include "jobtrail/view/output.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::cli {
namespace {

/// Every state an event may have, heartbeat included.
std::vector<std::string> event_state_names() {
  std::vector<std::string> names;
  for (const State state : all_states()) names.emplace_back(to_string(state));
  return names;
}

std::string all_state_names() { return fmt::format("{}", fmt::join(event_state_names(), ", ")); }

/// The event the options describe, with over-long free text cut (`cut` says what was).
Event event_from(const EmitOptions& options, Micros now, Truncation& cut) {
  const std::optional<State> state = parse_state(options.state);
  if (!state) {
    throw CliError(exit_bad_input, fmt::format("unknown state '{}' (valid: {})", options.state, all_state_names()));
  }
  Event event;
  event.job_id = options.job_id;
  event.state = *state;
  // Stamped here rather than left 0, so the output can say exactly what was recorded.
  event.at = options.at.empty() ? now : parse_time_argument("--at", options.at, now);
  // The one rule for a reported time (EventTimeRule): 1970 would otherwise read as "not
  // given" and be stamped now, or sit at the bottom of every list for good.
  if (const std::string problem = implausible_event_time(event.at, now); !problem.empty()) {
    throw CliError(exit_bad_input, fmt::format("bad --at '{}': {}", options.at, problem));
  }
  event.job = options.job;
  event.queue = options.queue;
  event.correlation_id = options.correlation_id;
  event.parent_job_id = options.parent_id;
  event.idempotency_key = options.idempotency_key;
  event.attempt = options.attempt;
  event.worker = options.worker;
  event.error = {options.error_class, options.error_message, options.backtrace};
  event.entities = options.entities;
  cut = truncate_free_text(event);
  if (const std::string problem = validation_error(event); !problem.empty()) {
    throw CliError(exit_bad_input, fmt::format("invalid event: {}", problem));
  }
  return event;
}

}  // namespace

CLI::App* setup_emit(CLI::App& app, EmitOptions& options) {
  CLI::App* emit = app.add_subcommand("emit", "Record one lifecycle event of a job (creates the store if needed).");
  emit->add_option("--job-id", options.job_id, "The job's unique ID.")->required()->option_text("ID");
  emit->add_option("--state", options.state, fmt::format("What happened: {}.", all_state_names()))
      ->required()
      ->option_text("STATE")
      ->check(completes_one_of(event_state_names()));
  emit->add_option("--job", options.job, "The job's class or name, e.g. WelcomeEmailJob.")->option_text("CLASS");
  emit->add_option("--queue", options.queue, "The queue it runs on.")->option_text("QUEUE");
  emit->add_option("--correlation-id", options.correlation_id, "The request that caused the job.")
      ->option_text("ID");
  emit->add_option("--parent-id", options.parent_id, "The job that enqueued this one.")->option_text("JOB_ID");
  emit->add_option("--attempt", options.attempt, "1 for the first run, 2 for the first retry, ...")
      ->check(CLI::Range(0, std::numeric_limits<std::int32_t>::max()))
      ->option_text("N");
  emit->add_option("--error", options.error_message, "What went wrong (the error message).")
      ->option_text("MESSAGE");
  emit->add_option("--error-class", options.error_class, "The error's class, e.g. Net::ReadTimeout.")
      ->option_text("CLASS");
  emit->add_option("--backtrace", options.backtrace, "The error's backtrace, lines separated by newlines.")
      ->option_text("TEXT");
  emit->add_option("--entity", options.entities, "A business object the job touches, e.g. user:42; repeatable.")
      ->option_text("TYPE:ID")
      ->allow_extra_args(false);
  emit->add_option("--idempotency-key", options.idempotency_key,
                   "Two successes under one key are flagged as a duplicate.")
      ->option_text("KEY");
  emit->add_option("--worker", options.worker, "Who ran it, e.g. host:pid.")->option_text("NAME");
  emit->add_option("--at", options.at, fmt::format("When it happened (default: now):\n{}.", time_syntax_help))
      ->option_text("TIME");
  emit->footer(subcommand_footer(
      "Prints one line saying what was recorded (JSON: {\"stored\", \"duplicates\",\n"
      "\"anomalies\", \"at\"}). An event repeated with the same --at (and state and\n"
      "attempt) is stored once; without --at every call is stamped anew, so a script that\n"
      "may retry an emit should pass --at. Give --attempt for retries: without it an event\n"
      "joins the job's current attempt (a start after an ended attempt begins the next).\n"
      "An --at before 2000 or more than a day ahead is refused (exit 2). A longer --error\n"
      "(8 KiB), --backtrace (64 KiB), --error-class or --worker (200 bytes) is cut to its\n"
      "limit and marked \"...[truncated from N bytes]\"; the event is recorded (JSON:\n"
      "\"truncated\" lists the fields cut).\n"));
  return emit;
}

int run_emit(const GlobalOptions& global, const EmitOptions& options, std::ostream& out) {
  refuse_csv(global, "emit");
  const Micros now = current_time(global);
  Truncation cut;
  const Event event = event_from(options, now, cut);
  const auto store = open_store_for(global, StoreAccess::create_if_missing);
  const AppendResult result = store->append({event});
  if (global.format == OutputFormat::json) {
    print_json_line(out, {{"stored", result.stored},
                          {"duplicates", result.duplicates},
                          {"anomalies", result.anomalies},
                          {"at", format_rfc3339(event.at)},
                          {"truncated", cut.fields()}});
    return exit_ok;
  }
  if (result.stored == 0 && result.duplicates > 0) {
    out << fmt::format("already recorded: {} of job {} at {}\n", to_string(event.state), printable(event.job_id),
                       format_timestamp(event.at));
  } else {
    out << fmt::format("recorded {} of job {} at {}\n", to_string(event.state), printable(event.job_id),
                       format_timestamp(event.at));
  }
  if (cut.any()) {
    out << fmt::format("truncated: {} (longer than its limit; the text ends with \"{}N bytes]\", see docs/events.md)\n",
                       fmt::join(cut.fields(), ", "), truncation_marker);
  }
  if (result.anomalies > 0) {
    out << fmt::format("flagged: this event makes an impossible sequence; see jobtrail show {}\n", printable(event.job_id));
  }
  return exit_ok;
}

}  // namespace jobtrail::cli
