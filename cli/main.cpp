// `jobtrail`: forensics over the job history for the engineer on call.

#include <cerrno>
#include <cstring>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli_error.h"
#include "commands.h"
#include "generate_docs.h"
#include "global_options.h"
#include "jobtrail/store.h"
#include "jobtrail/view/output.h"

namespace {

using namespace jobtrail::cli;

/// Whether --format json was asked for: a script that reads JSON from stdout then reads its
/// failure from stderr as JSON too, one object of one shape (README, "Exit codes").
bool json_errors = false;

/// Every error reaches the user as exactly one line, whatever the message contained: with
/// --format json the object {"error": MESSAGE, "exit_code": N}, else "jobtrail: MESSAGE",
/// escaped: a message quotes what the user gave (an ID, a path, a value), and a newline or an
/// escape sequence in it must neither break the line nor act on the terminal (the drivers
/// already join a server's multi-line message with "; ").
int print_error(std::string_view message, int exit_code) {
  if (json_errors) {
    const nlohmann::ordered_json error = {{"error", message}, {"exit_code", exit_code}};
    // Replace, not throw: a message may quote any bytes an ID or a file held.
    std::cerr << error.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
    return exit_code;
  }
  std::cerr << "jobtrail: " << jobtrail::view::printable(message) << '\n';
  return exit_code;
}

/// Whether the command line asked for --format json, read from what CLI11 collected even when
/// parsing stopped at a mistake further on (its option callbacks run only once all is parsed).
bool asked_for_json(CLI::App& app, const GlobalOptions& global) {
  if (global.format == OutputFormat::json) return true;
  const CLI::Option* format = app.get_option_no_throw("--format");
  return format != nullptr && !format->results().empty() && format->results().back() == "json";
}

/// Runs one subcommand and then makes sure its output reached stdout: a full disk or a closed
/// file must not look like success to a script (`jobtrail ls > /dev/full` used to exit 0).
template <typename Run>
int run_and_flush(Run run, int failure_code = exit_write_failed) {
  const int code = run();
  errno = 0;
  std::cout.flush();
  if (std::cout) return code;
  const int error = errno;
  return print_error(error != 0 ? fmt::format("cannot write the output: {}", std::strerror(error))
                                : std::string("cannot write the output"),
                     failure_code);
}

int exit_code_for(const jobtrail::StoreError& error) {
  switch (error.kind()) {
    case jobtrail::StoreError::Kind::invalid_url:
    case jobtrail::StoreError::Kind::invalid_event:
      return exit_bad_input;
    default:
      return exit_store_unavailable;
  }
}

/// "show" when the parse failed inside `jobtrail show ...`, so the hint names the right --help.
std::string help_hint(const CLI::App& app) {
  const std::vector<CLI::App*> chosen = app.get_subcommands();
  return chosen.empty() ? "jobtrail --help" : fmt::format("jobtrail {} --help", chosen.front()->get_name());
}

/// "show, trace, ... or help": the subcommands --help lists (the hidden generator is not one),
/// read from the app so a new subcommand is named without a second list to keep.
std::string subcommand_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* command : app.get_subcommands([](const CLI::App* sub) { return !sub->get_group().empty(); })) {
    names.push_back(command->get_name());
  }
  if (names.size() < 2) return names.empty() ? std::string() : names.front();
  const std::string last = names.back();
  names.pop_back();
  return fmt::format("{} or {}", fmt::join(names, ", "), last);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("jobtrail: what happened to your background jobs. Reads and records the job history.",
               "jobtrail");
  app.set_version_flag("--version", "jobtrail " JOBTRAIL_VERSION);
  // Global options may follow the subcommand too: `jobtrail show ID --db x` is what people type.
  app.fallthrough();
  // One subcommand per run: a later word that names one is an argument (`help ls`, `exec ls`).
  app.require_subcommand(0, 1);
  app.footer(fmt::format("Run 'jobtrail help SUBCOMMAND' (or 'jobtrail SUBCOMMAND --help') for a subcommand's\n"
                         "options and output.\n\n{}",
                         exit_codes_help));

  GlobalOptions global;
  setup_global_options(app, global);
  ShowOptions show_options;
  TraceOptions trace_options;
  LsOptions ls_options;
  StatsOptions stats_options;
  EmitOptions emit_options;
  PruneOptions prune_options;
  CheckOptions check_options;
  ServeOptions serve_options;
  ExecOptions exec_options;
  ImpactOptions impact_options;
  const CLI::App* show = setup_show(app, show_options);
  const CLI::App* trace = setup_trace(app, trace_options);
  const CLI::App* ls = setup_ls(app, ls_options);
  const CLI::App* stats = setup_stats(app, stats_options);
  const CLI::App* impact = setup_impact(app, impact_options);
  const CLI::App* emit = setup_emit(app, emit_options);
  const CLI::App* prune = setup_prune(app, prune_options);
  const CLI::App* check = setup_check(app, check_options);
  const CLI::App* serve = setup_serve(app, serve_options);
  const CLI::App* exec = setup_exec(app, exec_options);
  // help and the hidden generator read the app when they run, so they see every subcommand.
  HelpOptions help_options;
  const CLI::App* help = setup_help(app, help_options);
  GenerateOptions generate_options{.what = {}, .version = JOBTRAIL_VERSION, .date = {}};
  const CLI::App* generate = setup_generate(app, generate_options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& request) {
    return app.exit(request);  // --help and --version print to stdout and exit 0
  } catch (const CLI::ParseError& error) {
    json_errors = asked_for_json(app, global);
    // `check` runs from cron, where 2 means "a check failed": its bad usage is "could not run".
    const std::vector<CLI::App*> chosen = app.get_subcommands();
    // A word where a subcommand belongs that names none (`jobtrail sho`): CLI11 calls it an
    // unexpected argument; say what it may have meant, as `jobtrail help sho` does.
    if (const std::vector<std::string> extra = app.remaining();
        chosen.empty() && dynamic_cast<const CLI::ExtrasError*>(&error) && !extra.empty() && !extra.front().starts_with("-")) {
      return print_error(no_such_subcommand(app, extra.front()), exit_bad_input);
    }
    return print_error(fmt::format("{} (see '{}')", error.what(), help_hint(app)),
                       !chosen.empty() && chosen.front() == check ? exit_store_unavailable : exit_bad_input);
  }
  json_errors = global.format == OutputFormat::json;

  try {
    if (show->parsed()) return run_and_flush([&] { return run_show(global, show_options, std::cout); });
    if (trace->parsed()) return run_and_flush([&] { return run_trace(global, trace_options, std::cout); });
    if (ls->parsed()) return run_and_flush([&] { return run_ls(global, ls_options, std::cout); });
    if (stats->parsed()) return run_and_flush([&] { return run_stats(global, stats_options, std::cout); });
    if (emit->parsed()) return run_and_flush([&] { return run_emit(global, emit_options, std::cout); });
    if (prune->parsed()) return run_and_flush([&] { return run_prune(global, prune_options, std::cout); });
    if (check->parsed()) return run_and_flush([&] { return run_check(global, check_options, std::cout); },
                                               exit_store_unavailable);  // check's "could not run"
    if (serve->parsed()) return run_and_flush([&] { return run_serve(global, serve_options, std::cout); });
    if (exec->parsed()) return run_and_flush([&] { return run_exec(global, exec_options, std::cout); });
    if (impact->parsed()) return run_and_flush([&] { return run_impact(global, impact_options, std::cout); });
    if (help->parsed()) return run_and_flush([&] { return run_help(app, help_options, std::cout); });
    if (generate->parsed()) return run_and_flush([&] { return run_generate(app, generate_options, std::cout); });
    return print_error(fmt::format("a subcommand is required: {} (see 'jobtrail --help')", subcommand_names(app)),
                       exit_bad_input);
  } catch (const CliError& error) {
    return print_error(error.what(), error.exit_code());
  } catch (const jobtrail::StoreError& error) {
    return print_error(error.what(), exit_code_for(error));
  } catch (const std::exception& error) {
    // Anything else came from reading the store (out of memory, a corrupt row): the
    // store could not be read, as far as the caller can act on it.
    return print_error(error.what(), exit_store_unavailable);
  }
}
