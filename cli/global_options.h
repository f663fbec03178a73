#pragma once
/// \file
/// The options every subcommand shares (--db, --format, --color, --now) and the glue that
/// turns them into an open store, a clock, parsed times and printed tables.

#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>

#include "jobtrail/event.h"
#include "jobtrail/view/output.h"

namespace CLI {
class App;
}

namespace jobtrail {
class Store;
}

namespace jobtrail::view {}

namespace jobtrail::cli {

// The commands speak the view layer's vocabulary (format_duration, Table, job_json, ...) as
// their own; every subcommand includes this header.
using namespace jobtrail::view;

enum class OutputFormat { table, json, csv };

struct GlobalOptions {
  std::string db;               ///< --db; empty means JOBTRAIL_DB
  OutputFormat format = OutputFormat::table;
  ColourMode colour = ColourMode::automatic;  ///< --color
  std::string now;              ///< --now; empty means the clock
};

/// An environment variable jobtrail reads, as the man page's ENVIRONMENT lists it.
struct EnvironmentVariable {
  const char* name;
  const char* meaning;
};
/// Every environment variable jobtrail reads (a new one belongs here too).
inline constexpr EnvironmentVariable environment_variables[] = {
    {"JOBTRAIL_DB", "The store, when --db is not given: sqlite:PATH, a bare PATH or postgresql://..."},
    {"JOBTRAIL_CORRELATION_ID",
     "exec: the correlation ID of the run when --correlation-id is not given; exec sets it for the\n"
     "command it runs."},
    {"JOBTRAIL_PARENT_JOB_ID",
     "exec: the parent job of the run when --parent-id is not given; exec sets it to the run's own\n"
     "job ID for the command it runs."},
    {"NO_COLOR", "When set and not empty, --color auto (the default) colours nothing (https://no-color.org)."},
    {"TERM", "--color auto colours nothing when it is unset or \"dumb\"."},
};

/// Registers --db, --format, --color and --now on the top-level app.
void setup_global_options(CLI::App& app, GlobalOptions& options);

/// Registers `--state STATE[,STATE...]` on a command that lists jobs by their derived state
/// (ls, impact): one help text, one completion of the state names; parsed by the view layer.
void add_job_states_option(CLI::App& command, std::string& states);

/// Whether tables are coloured: only with --format table, and then as --color says
/// (use_colour, for stdout and this process's NO_COLOR and TERM).
bool colour_wanted(const GlobalOptions& options);

/// Prints a list as --format asks: `table` aligned (coloured when colour_wanted) or, with
/// --format csv, as CSV (Table::print_csv). `header` false leaves the header row out, for
/// the later batches of a followed list. Not for --format json, which has its documents.
void write_table(const GlobalOptions& options, const Table& table, std::ostream& out, bool header = true);

/// For the commands that print no list (emit, prune, serve, exec, check without --history):
/// throws CliError (bad input) naming `command` when --format csv was asked for.
void refuse_csv(const GlobalOptions& options, std::string_view command);

/// The store URL from --db, else JOBTRAIL_DB. Throws CliError (bad input) when neither is set.
std::string store_url(const GlobalOptions& options);

/// Read-only commands must never create or migrate a store (a typo in --db would otherwise
/// leave an empty database behind and report "no jobs" instead of the mistake).
enum class StoreAccess {
  read_only,        ///< show, trace, ls, stats
  read_write,       ///< prune: the store must already exist
  create_if_missing ///< emit
};

/// Opens the store named by the options. Throws CliError with a one-line explanation. With
/// create_if_missing, a store it had to create is announced on stderr (new_store_note()).
std::unique_ptr<Store> open_store_for(const GlobalOptions& options, StoreAccess access);

/// Whether a jobtrail store already exists at `url` (a store that cannot be opened counts as
/// existing: opening it for real reports why; so does any PostgreSQL URL, whose database
/// jobtrail never creates). For the commands that create one (emit,
/// serve, exec), which then say so: a mistyped --db must not start a new, empty history
/// without a word.
bool store_exists(const std::string& url);
/// What those commands print on stderr when they created the store at `url`.
std::string new_store_note(const std::string& url);

/// "Now" for relative times and running durations: --now if given, else the clock.
Micros current_time(const GlobalOptions& options);

/// Parses the value of a time option (see time_syntax_help) or throws CliError (bad input)
/// naming the option.
Micros parse_time_argument(std::string_view option_name, std::string_view text, Micros now);

/// Parses the value of a duration option or throws CliError (bad input) naming the option.
Micros parse_duration_argument(std::string_view option_name, std::string_view text);

}  // namespace jobtrail::cli
