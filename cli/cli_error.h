#pragma once
/// \file
/// Exit codes and the one exception the subcommands use to end with one of them.

#include <stdexcept>
#include <string>

namespace jobtrail::cli {

/// The exit codes scripts rely on; they are printed in every --help footer.
enum ExitCode : int {
  exit_ok = 0,
  exit_not_found = 1,          ///< an unknown job ID or correlation ID
  exit_bad_input = 2,          ///< bad usage, a bad duration, an unknown state, an invalid event
  exit_store_unavailable = 3,  ///< the store could not be opened or read
  exit_write_failed = 5,       ///< the output could not be written (a full disk); 4 is serve's
};

/// The footer every --help ends with.
inline constexpr const char* exit_codes_help =
    "Exit codes: 0 ok, 1 job or correlation ID not found, 2 bad usage or input,\n"
    "3 the store could not be opened or read, 5 the output could not be written.\n"
    "Errors are one line on stderr, every byte a terminal would act on escaped.";

/// Where a subcommand's --help sends the reader for the options CLI11 lists only at the top.
inline constexpr const char* global_options_note =
    "Global options (--db URL, --format table|json|csv, --color auto|always|never,\n"
    "--now TIME): see 'jobtrail --help'.";

/// A subcommand's --help footer: `details` about its output, then where the global options
/// are explained (CLI11 lists only the subcommand's own), then the exit codes.
std::string subcommand_footer(const std::string& details);

/// A failure a subcommand reports to the user: main prints "jobtrail: <what>" on stderr
/// and exits with `exit_code`. Thrown only outside the hot path, so an exception is fine.
class CliError : public std::runtime_error {
 public:
  CliError(ExitCode exit_code, const std::string& message)
      : std::runtime_error(message), exit_code_(exit_code) {}
  ExitCode exit_code() const noexcept { return exit_code_; }

 private:
  ExitCode exit_code_;
};

}  // namespace jobtrail::cli
