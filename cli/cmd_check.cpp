// `jobtrail check --config checks.yaml`: the nightly sanity check. Runs SQL checks over the
// application's databases and the built-in checks over the job history, links each bad row
// to its jobs, stores the run, and leaves metrics for alerting.

#include <algorithm>
#include <iostream>
#include <ostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_error.h"
#include "commands.h"
#include "generate_docs.h"
#include "global_options.h"
#include "jobtrail/checker.h"
#include "jobtrail/view/job_view.h"
#include "jobtrail/store.h"
#include "jobtrail/view/output.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::cli {

namespace {

using check::CheckResult;
using check::RunReport;

/// `jobtrail check` has its own exit codes (cron reads them): 0 pass, 1 warn, 2 fail, 3 the
/// checker could not run. Every failure before the checks run is therefore 3.
constexpr ExitCode exit_check_cannot_run = exit_store_unavailable;

[[noreturn]] void cannot_run(const std::string& message) { throw CliError(exit_check_cannot_run, message); }

std::string one_line(std::string_view text, std::size_t max_width = 80) {
  std::string line = printable(text);
  if (display_width(line) > max_width) {
    // Cut on a code point boundary: a UTF-8 continuation byte is 10xxxxxx.
    std::size_t cut = max_width;
    while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
    line = line.substr(0, cut) + "…";
  }
  return line;
}

std::string error_text(const ErrorInfo& error) {
  std::string text = error.error_class;
  if (!error.message.empty()) text += (text.empty() ? "" : ": ") + error.message;
  return text;
}

std::string row_text(const check::SampleRow& sample, bool skip_nulls) {
  std::string text;
  for (const auto& [column, value] : sample.columns) {
    if (skip_nulls && !value) continue;
    if (!text.empty()) text += "  ";
    text += column + "=" + (value ? one_line(*value, 40) : "NULL");
  }
  return text;
}

std::string plural(std::int64_t count, std::string_view word) {
  return fmt::format("{} {}{}", count, word, count == 1 ? "" : "s");
}

/// "3 rows: 1 new, 2 still failing" and, when the previous run had some, "1 resolved".
std::string change_summary(const CheckResult& result) {
  std::string text = plural(result.violations, "row");
  std::vector<std::string> parts;
  if (result.compared) {
    if (result.new_violations) parts.push_back(fmt::format("{} new", result.new_violations));
    if (result.persisting) parts.push_back(fmt::format("{} still failing", result.persisting));
    if (result.resolved) parts.push_back(fmt::format("{} resolved since the last run", result.resolved));
  } else if (result.violations) {
    parts.push_back("first run");
  }
  for (std::size_t i = 0; i < parts.size(); ++i) text += (i == 0 ? ": " : ", ") + parts[i];
  return text;
}

void print_check(std::ostream& out, const CheckResult& result, std::string_view label) {
  const auto& check = result.check;
  out << fmt::format("{:<6}{}  {}  [{}]\n", label, check.name,
                     result.status == CheckStatus::error ? "could not run" : change_summary(result),
                     format_duration(result.duration));
  if (!check.description.empty()) out << "      " << one_line(check.description, 100) << '\n';
  if (result.status == CheckStatus::error) out << "      error: " << printable(result.error) << '\n';
  if (!check.runbook.empty()) out << "      runbook: " << printable(check.runbook) << '\n';
  for (const auto& sample : result.samples) {
    const std::string since = sample.is_new ? "new" : "failing since " + format_timestamp(sample.failing_since);
    // A NULL an application query returns says something; a built-in row's NULL (no error
    // yet) does not.
    out << "      - " << row_text(sample, check.builtin.has_value()) << "  (" << since << ")\n";
    if (sample.entity.empty()) continue;
    if (sample.jobs.empty()) {
      out << "          " << printable(sample.entity) << ": no jobs recorded\n";
      continue;
    }
    for (const auto& job : sample.jobs) {
      std::string line = fmt::format("          {}: {}  {}  {}  attempts {}", printable(sample.entity),
                                     printable(job.job_id), printable(job.job), to_string(job.state), job.attempts);
      if (!job.last_error.empty()) line += "  last error: " + one_line(error_text(job.last_error), 70);
      out << line << '\n';
    }
  }
  if (static_cast<std::int64_t>(result.samples.size()) < result.violations) {
    out << fmt::format("      … and {} more\n", plural(result.violations - static_cast<std::int64_t>(result.samples.size()), "row"));
  }
  for (const auto& resolved : result.resolved_samples) out << "      resolved: " << one_line(resolved, 100) << '\n';
}

void print_table_report(std::ostream& out, const RunReport& report) {
  out << fmt::format("jobtrail check: {} failed, {} with warnings, {} could not run, {} passed ({} checks, {}, {})\n",
                     report.count(CheckStatus::fail), report.count(CheckStatus::warn),
                     report.count(CheckStatus::error), report.count(CheckStatus::pass), report.results.size(),
                     format_duration(report.finished_at - report.started_at), format_timestamp(report.started_at));
  // Worst first: what needs a human is at the top of the cron mail.
  const std::pair<CheckStatus, std::string_view> groups[] = {
      {CheckStatus::fail, "FAIL"}, {CheckStatus::error, "ERROR"}, {CheckStatus::warn, "WARN"}};
  for (const auto& [status, label] : groups) {
    bool first = true;
    for (const auto& result : report.results) {
      if (result.status != status) continue;
      if (first) out << '\n';
      first = false;
      print_check(out, result, label);
    }
  }
  std::string passed;
  for (const auto& result : report.results) {
    if (result.status != CheckStatus::pass) continue;
    passed += (passed.empty() ? "" : ", ") + result.check.name;
    if (result.resolved) passed += fmt::format(" ({} resolved)", result.resolved);
  }
  if (!passed.empty()) out << "\nPASS  " << passed << '\n';
}

nlohmann::ordered_json optional_time(std::optional<Micros> at) {
  return at ? nlohmann::ordered_json(format_rfc3339(*at)) : nlohmann::ordered_json(nullptr);
}

nlohmann::ordered_json report_json(const RunReport& report) {
  nlohmann::ordered_json checks = nlohmann::ordered_json::array();
  for (const auto& result : report.results) {
    nlohmann::ordered_json samples = nlohmann::ordered_json::array();
    for (const auto& sample : result.samples) {
      nlohmann::ordered_json row = nlohmann::ordered_json::object();
      for (const auto& [column, value] : sample.columns) row[column] = value ? nlohmann::ordered_json(*value) : nullptr;
      nlohmann::ordered_json jobs = nlohmann::ordered_json::array();
      for (const auto& job : sample.jobs) {
        jobs.push_back({{"job_id", job.job_id},
                        {"job", job.job},
                        {"state", to_string(job.state)},
                        {"attempts", job.attempts},
                        {"last_event_at", format_rfc3339(job.last_event_at)},
                        {"error_class", job.last_error.error_class.empty() ? nullptr : nlohmann::ordered_json(job.last_error.error_class)},
                        {"error_message", job.last_error.message.empty() ? nullptr : nlohmann::ordered_json(job.last_error.message)}});
      }
      samples.push_back({{"row", row},
                         {"fingerprint", sample.fingerprint},
                         {"new", sample.is_new},
                         {"failing_since", format_rfc3339(sample.failing_since)},
                         {"entity", sample.entity.empty() ? nullptr : nlohmann::ordered_json(sample.entity)},
                         {"jobs", jobs}});
    }
    nlohmann::ordered_json resolved = nlohmann::ordered_json::array();
    for (const auto& text : result.resolved_samples) {
      resolved.push_back(nlohmann::ordered_json::parse(text, nullptr, false));
    }
    checks.push_back({{"name", result.check.name},
                      {"status", to_string(result.status)},
                      {"severity", result.check.severity},
                      {"builtin", result.check.builtin.has_value()},
                      {"description", result.check.description},
                      {"runbook", result.check.runbook.empty() ? nullptr : nlohmann::ordered_json(result.check.runbook)},
                      {"violations", result.violations},
                      {"new", result.new_violations},
                      {"persisting", result.persisting},
                      {"resolved", result.resolved},
                      {"compared", result.compared},
                      {"error", result.error.empty() ? nullptr : nlohmann::ordered_json(result.error)},
                      {"duration_us", result.duration},
                      {"last_success_at", optional_time(result.last_success)},
                      {"samples", samples},
                      {"resolved_samples", resolved}});
  }
  return {{"config", report.config_path},
          {"started_at", format_rfc3339(report.started_at)},
          {"duration_us", report.finished_at - report.started_at},
          {"exit_code", report.exit_code()},
          {"run_id", report.run_id ? nlohmann::ordered_json(report.run_id) : nullptr},
          {"summary",
           {{"pass", report.count(CheckStatus::pass)},
            {"warn", report.count(CheckStatus::warn)},
            {"fail", report.count(CheckStatus::fail)},
            {"error", report.count(CheckStatus::error)}}},
          {"checks", checks}};
}

int print_history(const GlobalOptions& global, const CheckOptions& options, std::ostream& out) {
  const auto store = open_store_for(global, StoreAccess::read_only);
  const auto runs = store->check_history(options.history, options.limit);
  if (runs.empty()) cannot_run(fmt::format("no runs of a check named '{}' in the check history", options.history));
  if (global.format == OutputFormat::json) {
    for (const auto& run : runs) {
      print_json_line(out, {{"check", run.check},
                            {"run_id", run.run_id},
                            {"started_at", format_rfc3339(run.started_at)},
                            {"status", to_string(run.status)},
                            {"severity", run.severity},
                            {"violations", run.violations},
                            {"new", run.new_violations},
                            {"resolved", run.resolved},
                            {"duration_us", run.duration},
                            {"error", run.error.empty() ? nullptr : nlohmann::ordered_json(run.error)}});
    }
    return exit_ok;
  }
  // The CSV fields are the JSON lines' names.
  Table table({{"", "check"},
               {"RUN", "run_id", Align::right},
               {"STARTED", "started_at"},
               {"STATUS", "status"},
               {"", "severity"},
               {"ROWS", "violations", Align::right},
               {"NEW", "new", Align::right},
               {"RESOLVED", "resolved", Align::right},
               {"DURATION", "duration_us", Align::right},
               {"ERROR", "error"}});
  for (const auto& run : runs) {
    table.add_row({run.check, count_cell(run.run_id), time_cell(run.started_at),
                   Cell(std::string(to_string(run.status)), check_status_tone(run.status)), run.severity,
                   count_cell(run.violations), count_cell(run.new_violations), count_cell(run.resolved),
                   duration_cell(run.duration), Cell(one_line(run.error, 60), run.error)});
  }
  write_table(global, table, out);
  return exit_ok;
}

}  // namespace

CLI::App* setup_check(CLI::App& app, CheckOptions& options) {
  CLI::App* check = app.add_subcommand(
      "check", "Run sanity checks over application databases and the job history (for cron).");
  check->add_option("--config", options.config, "The checks file (YAML; see docs/checks.md).")
      ->option_text("FILE")
      ->check(completes(ValueKind::file));
  check->add_option("--only", options.only, "Run only this check (repeatable).")->option_text("NAME");
  check->add_option("--textfile-dir", options.textfile_dir,
                    "Write metrics to DIR/jobtrail_check_<config file name>.prom for\n"
                    "node_exporter's textfile collector (written aside, then renamed over).")
      ->option_text("DIR")
      ->check(completes(ValueKind::directory));
  check->add_option("--push-gateway", options.push_gateway,
                    "Push metrics to this Prometheus Pushgateway, e.g. http://127.0.0.1:9091\n"
                    "(group job=\"jobtrail_check\", instance=<config file name>).")
      ->option_text("URL");
  check->add_flag("--no-record", options.no_record,
                  "Do not store this run in the check history (new/resolved still compare\n"
                  "with the last stored run); opens the store read-only.");
  check->add_flag("--validate", options.validate, "Only read and check the config file, then exit.");
  check->add_option("--history", options.history, "Show the past runs of check NAME instead of running checks.")
      ->option_text("NAME");
  check->add_option("--limit", options.limit, "How many past runs --history shows (default 20).")->option_text("N");
  check->footer(
      "A check returns the rows that must not exist. Each one passes, warns or fails by its\n"
      "row count (warn_if / error_if), or is an error when it cannot run; the others still\n"
      "run. The report is grouped worst first, with sample rows, whether each is new or\n"
      "failing since when, the jobs of each row's entity, and the rows resolved since the\n"
      "last run. JSON: one object for the run. The store is --db, else the config's\n"
      "`store:`, else $JOBTRAIL_DB; it must exist.\n"
      "--history NAME lists a check's past runs (also as --format csv).\n\n" + std::string(global_options_note) + "\n\n"
      "Exit codes: 0 every check passed, 1 warnings only, 2 a check failed, 3 the checker\n"
      "could not run: a bad config or option, no store, a check that could not run, or\n"
      "metrics or history that could not be written. Errors are one line on stderr.");
  return check;
}

int run_check(const GlobalOptions& global_options, const CheckOptions& options, std::ostream& out) {
  try {
    if (options.config.empty() && options.history.empty()) cannot_run("--config FILE is required (or --history NAME)");
    if (options.history.empty()) refuse_csv(global_options, "check without --history");
    check::Config config;
    if (!options.config.empty()) {
      try {
        config = check::load_config(options.config);
      } catch (const check::ConfigError& error) {
        cannot_run(error.what());
      }
    }
    GlobalOptions global = global_options;
    if (global.db.empty() && !config.store.empty()) global.db = config.store;
    if (!options.history.empty()) return print_history(global, options, out);
    for (const auto& name : options.only) {
      if (std::none_of(config.checks.begin(), config.checks.end(), [&](const auto& c) { return c.name == name; })) {
        cannot_run(fmt::format("--only {}: no such check in {}", name, options.config));
      }
    }
    if (options.validate) {
      out << fmt::format("{}: {} ok\n", options.config, plural(static_cast<std::int64_t>(config.checks.size()), "check"));
      return exit_ok;
    }
    if (!options.push_gateway.empty()) {
      // A bad URL is found before the checks run, not after a long night of them.
      if (!check::is_push_gateway_url(options.push_gateway)) {
        cannot_run(fmt::format("--push-gateway must be http://HOST:PORT (got '{}')", options.push_gateway));
      }
    }
    const auto store = open_store_for(global, options.no_record ? StoreAccess::read_only : StoreAccess::read_write);
    check::RunOptions run_options;
    run_options.now = global.now.empty() ? 0 : current_time(global);
    run_options.record_history = !options.no_record;
    run_options.only = options.only;
    // The URL the store was opened with: checks on a PostgreSQL store's database need its
    // password, which the store's location() hides.
    run_options.store_url = store_url(global);
    const RunReport report = check::run_checks(config, *store, run_options);

    if (global.format == OutputFormat::json) {
      print_json_line(out, report_json(report));
    } else {
      print_table_report(out, report);
    }
    out.flush();
    int code = report.exit_code();
    if (!report.history_error.empty()) {
      std::cerr << "jobtrail: " << printable(report.history_error) << '\n';
    }
    if (!options.textfile_dir.empty()) {
      try {
        check::write_textfile(report, options.textfile_dir);
      } catch (const std::exception& error) {
        std::cerr << "jobtrail: metrics not written: " << printable(error.what()) << '\n';
        code = exit_check_cannot_run;
      }
    }
    if (!options.push_gateway.empty()) {
      try {
        const int status = check::push_metrics(report, options.push_gateway);
        if (status < 200 || status >= 300) {
          std::cerr << "jobtrail: the Pushgateway at " << options.push_gateway << " answered "
                    << (status > 0 ? "HTTP " + std::to_string(status) : "nothing (cannot connect)") << '\n';
          code = exit_check_cannot_run;
        }
      } catch (const std::exception& error) {
        std::cerr << "jobtrail: metrics not pushed: " << printable(error.what()) << '\n';
        code = exit_check_cannot_run;
      }
    }
    return code;
  } catch (const CliError& error) {
    // Every failure of `check` itself is "could not run" (3), whatever the shared helpers say.
    if (error.exit_code() == exit_check_cannot_run) throw;
    cannot_run(error.what());
  } catch (const StoreError& error) {
    cannot_run(error.what());
  }
}

}  // namespace jobtrail::cli
