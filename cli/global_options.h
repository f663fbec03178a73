#pragma once
/// \file
/// The options every subcommand shares (--db, --format, --now) and the glue that turns
/// them into an open store, a clock and parsed times.

#include <memory>
#include <string>
#include <string_view>

#include "jobtrail/event.h"

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

enum class OutputFormat { table, json };

struct GlobalOptions {
  std::string db;               ///< --db; empty means JOBTRAIL_DB
  OutputFormat format = OutputFormat::table;
  std::string now;              ///< --now; empty means the clock
};

/// Registers --db, --format and --now on the top-level app.
void setup_global_options(CLI::App& app, GlobalOptions& options);

/// The store URL from --db, else JOBTRAIL_DB. Throws CliError (bad input) when neither is set.
std::string store_url(const GlobalOptions& options);

/// Read-only commands must never create or migrate a store (a typo in --db would otherwise
/// leave an empty database behind and report "no jobs" instead of the mistake).
enum class StoreAccess {
  read_only,        ///< show, trace, ls, stats
  read_write,       ///< prune: the store must already exist
  create_if_missing ///< emit
};

/// Opens the store named by the options. Throws CliError with a one-line explanation.
std::unique_ptr<Store> open_store_for(const GlobalOptions& options, StoreAccess access);

/// "Now" for relative times and running durations: --now if given, else the clock.
Micros current_time(const GlobalOptions& options);

/// Parses the value of a time option (see time_syntax_help) or throws CliError (bad input)
/// naming the option.
Micros parse_time_argument(std::string_view option_name, std::string_view text, Micros now);

/// Parses the value of a duration option or throws CliError (bad input) naming the option.
Micros parse_duration_argument(std::string_view option_name, std::string_view text);

}  // namespace jobtrail::cli
