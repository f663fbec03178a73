#include "global_options.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli_error.h"
#include "generate_docs.h"
#include "jobtrail/store.h"
#include "jobtrail/view/job_view.h"
#include "jobtrail/view/time_format.h"

namespace jobtrail::cli {

void add_job_states_option(CLI::App& command, std::string& states) {
  command
      .add_option("--state", states,
                  fmt::format("Only jobs now in one of these states, comma-separated\n(failed,dead): {}.",
                              job_state_names()))
      ->option_text("STATE[,STATE...]")
      ->check(completes_one_of(job_state_name_list(), /*comma_list=*/true));
}

void setup_global_options(CLI::App& app, GlobalOptions& options) {
  app.add_option("--db", options.db,
                 "The store: sqlite:PATH or a bare PATH (postgresql://... later).\n"
                 "Defaults to $JOBTRAIL_DB.")
      ->option_text("URL")
      ->check(completes(ValueKind::file));
  app.add_option_function<std::string>(
         "--format",
         [&options](const std::string& format) {
           options.format = format == "json" ? OutputFormat::json
                            : format == "csv" ? OutputFormat::csv
                                              : OutputFormat::table;
         },
         "table (for people), json or csv.\n"
         "json: one object per line for trace, ls and stats, one object for\n"
         "show. JSON times are RFC 3339 UTC strings with microseconds (*_at),\n"
         "durations integer microseconds (*_us); absent values are null. A\n"
         "failure is then one JSON object on stderr: {\"error\", \"exit_code\"}.\n"
         "csv (RFC 4180, LF line ends): the rows of ls, stats, impact, trace,\n"
         "show's events and check --history under a header of the JSON field names;\n"
         "raw values (full IDs, RFC 3339 UTC times, *_us microseconds, empty for\n"
         "none). A field starting with = + - @ tab or CR (not a number) gets a\n"
         "leading ', so no spreadsheet runs it as a formula. Other commands\n"
         "refuse csv (exit 2).")
      ->check(CLI::IsMember({"table", "json", "csv"}))
      ->option_text("table|json|csv")
      ->default_str("table");
  app.add_option_function<std::string>(
         "--color,--colour",
         [&options](const std::string& when) {
           options.colour = when == "always" ? ColourMode::always
                            : when == "never" ? ColourMode::never
                                              : ColourMode::automatic;
         },
         "Colour states and anomaly flags in tables. auto (the default): only\n"
         "when stdout is a terminal, TERM is set and not dumb, and NO_COLOR is\n"
         "unset or empty (no-color.org); always; never. json and csv never are.")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->option_text("auto|always|never")
      ->default_str("auto");
  app.add_option("--now", options.now,
                 "Evaluate relative times (--since 24h) and the age of waiting or running jobs\n"
                 "as of this UTC time instead of the clock; makes output reproducible.")
      ->option_text("TIME");
}

std::string subcommand_footer(const std::string& details) {
  return details + "\n" + global_options_note + "\n\n" + exit_codes_help;
}

bool colour_wanted(const GlobalOptions& options) {
  if (options.format != OutputFormat::table) return false;
  return use_colour(options.colour, isatty(STDOUT_FILENO) == 1, std::getenv("NO_COLOR"), std::getenv("TERM"));
}

void write_table(const GlobalOptions& options, const Table& table, std::ostream& out, bool header) {
  if (options.format == OutputFormat::csv) {
    table.print_csv(out, header);
  } else {
    table.print(out, {header, colour_wanted(options)});
  }
}

void refuse_csv(const GlobalOptions& options, std::string_view command) {
  if (options.format != OutputFormat::csv) return;
  throw CliError(exit_bad_input,
                 fmt::format("{} prints no list: --format csv is for ls, stats, impact, trace, show (its events) and "
                             "check --history; use --format table or json",
                             command));
}

std::string store_url(const GlobalOptions& options) {
  if (!options.db.empty()) return options.db;
  const char* from_environment = std::getenv("JOBTRAIL_DB");
  if (from_environment != nullptr && *from_environment != '\0') return from_environment;
  throw CliError(exit_bad_input, "no store given: pass --db URL or set JOBTRAIL_DB");
}

bool store_exists(const std::string& url) {
  // A PostgreSQL database is never created by jobtrail (a mistyped name fails to connect),
  // and a look at a server that is down would cost its connect timeout twice.
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) return true;
  OpenOptions look;
  look.read_only = true;
  try {
    open_store(url, look);
    return true;
  } catch (const StoreError& error) {
    return error.kind() != StoreError::Kind::not_found;
  }
}

std::string new_store_note(const std::string& url) {
  return fmt::format("jobtrail: created a new, empty store at '{}' (nothing was there: check --db if you "
                     "meant an existing one)",
                     printable_url(url));
}

std::unique_ptr<Store> open_store_for(const GlobalOptions& options, StoreAccess access) {
  const std::string url = store_url(options);
  OpenOptions open_options;
  open_options.read_only = access == StoreAccess::read_only;
  open_options.create = access == StoreAccess::create_if_missing;
  try {
    const bool announce = access == StoreAccess::create_if_missing && !store_exists(url);
    std::unique_ptr<Store> store = open_store(url, open_options);
    if (announce) std::cerr << new_store_note(url) << '\n';
    return store;
  } catch (const StoreError& error) {
    // Never print a password that came in the URL.
    const std::string shown = printable_url(url);
    switch (error.kind()) {
      case StoreError::Kind::invalid_url:
        throw CliError(exit_bad_input, fmt::format("bad --db '{}': {}", shown, error.what()));
      case StoreError::Kind::not_found:
        throw CliError(exit_store_unavailable,
                       fmt::format("no jobtrail store at '{}' (check --db or JOBTRAIL_DB)", shown));
      default: {
        // Name the store once: the store's own message often names the file already.
        const std::string message = without_secrets(error.what(), url);
        const std::string path = shown.rfind("sqlite:", 0) == 0 ? shown.substr(7) : shown;
        throw CliError(exit_store_unavailable, message.find(path) != std::string::npos
                                                   ? fmt::format("cannot open store: {}", message)
                                                   : fmt::format("cannot open store '{}': {}", shown, message));
      }
    }
  }
}

Micros current_time(const GlobalOptions& options) {
  const Micros clock = now_micros();
  if (options.now.empty()) return clock;
  return parse_time_argument("--now", options.now, clock);
}

Micros parse_time_argument(std::string_view option_name, std::string_view text, Micros now) {
  if (const auto at = parse_time(text, now)) return *at;
  throw CliError(exit_bad_input,
                 fmt::format("bad {} '{}': expected {}", option_name, text, time_syntax_help));
}

Micros parse_duration_argument(std::string_view option_name, std::string_view text) {
  if (const auto duration = parse_duration(text)) return *duration;
  throw CliError(exit_bad_input,
                 fmt::format("bad {} '{}': expected a duration like 90s, 15m, 24h, 7d or 1h30m",
                             option_name, text));
}

}  // namespace jobtrail::cli
