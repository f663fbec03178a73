// `jobtrail help [COMMAND]`: the same text as `jobtrail --help` or `jobtrail COMMAND --help`.

#include <algorithm>
#include <ostream>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli_error.h"
#include "commands.h"
#include "generate_docs.h"
#include "global_options.h"
#include "jobtrail/view/output.h"

namespace jobtrail::cli {
namespace {

/// The edit distance of `a` and `b` where swapping two neighbours counts as one edit
/// (optimal string alignment): "sl" is one edit from "ls", "sho" one from "show".
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t substitution = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + substitution});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

/// The subcommands `typed` may have meant: those it starts, else the nearest ones within
/// a third of its length (at least one edit), so a two-letter mistake is not "corrected"
/// into an unrelated command.
std::vector<std::string> near_names(const std::string& typed, const std::vector<std::string>& names) {
  std::vector<std::string> starting;
  for (const std::string& name : names) {
    if (!typed.empty() && name.rfind(typed, 0) == 0) starting.push_back(name);
  }
  if (!starting.empty()) return starting;
  const std::size_t allowed = std::max<std::size_t>(1, typed.size() / 3);
  std::size_t best = allowed + 1;
  for (const std::string& name : names) best = std::min(best, edit_distance(typed, name));
  std::vector<std::string> nearest;
  for (const std::string& name : names) {
    if (best <= allowed && edit_distance(typed, name) == best) nearest.push_back(name);
  }
  return nearest;
}

std::string quoted_names(const std::vector<std::string>& names) {
  std::vector<std::string> shown;
  for (const std::string& name : names) shown.push_back("'" + name + "'");
  return fmt::format("{}", fmt::join(shown, ", "));
}

}  // namespace

CLI::App* setup_help(CLI::App& app, HelpOptions& options) {
  CLI::App* help = app.add_subcommand("help", "The help of jobtrail or of one subcommand (same as --help).");
  help->add_option("COMMAND", options.command, "The subcommand whose help to print; none for jobtrail's own.")
      ->check(completes(ValueKind::subcommand));
  help->footer(subcommand_footer("'jobtrail help ls' prints what 'jobtrail ls --help' prints."));
  return help;
}

int run_help(const CLI::App& app, const HelpOptions& options, std::ostream& out) {
  if (options.command.empty()) {
    // app.help() would hand over to the subcommand that was chosen, which is `help` itself.
    out << app.get_formatter()->make_help(&app, app.get_name(), CLI::AppFormatMode::Normal);
    return exit_ok;
  }
  for (const CLI::App* subcommand : app.get_subcommands([](const CLI::App* sub) { return !sub->get_group().empty(); })) {
    if (subcommand->get_name() == options.command) {
      // What `jobtrail COMMAND --help` prints: CLI11 hands that to the subcommand the same way.
      out << subcommand->help(app.get_name());
      return exit_ok;
    }
  }
  throw CliError(exit_bad_input, no_such_subcommand(app, options.command));
}

std::string no_such_subcommand(const CLI::App& app, const std::string& typed) {
  std::vector<std::string> names;
  for (const CLI::App* subcommand : app.get_subcommands([](const CLI::App* sub) { return !sub->get_group().empty(); })) {
    names.push_back(subcommand->get_name());
  }
  const std::vector<std::string> suggestions = near_names(typed, names);
  if (!suggestions.empty()) {
    return fmt::format("no subcommand '{}'; did you mean {}? (see 'jobtrail --help')", printable(typed),
                       quoted_names(suggestions));
  }
  return fmt::format("no subcommand '{}': the subcommands are {} (see 'jobtrail --help')", printable(typed),
                     fmt::join(names, ", "));
}

}  // namespace jobtrail::cli
