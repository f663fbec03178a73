#pragma once
/// \file
/// The man page and the bash and zsh completions of `jobtrail`, generated from the CLI11
/// definitions themselves (`jobtrail __generate man|bash|zsh`, run by the build), so they list
/// exactly the subcommands, options, choices and positionals the binary accepts.
///
/// What a shell may offer as an option's value comes from the option: the set of a
/// CLI::IsMember check (`--format`), or a hint attached with `->check(completes(...))` where
/// the command checks the value itself with its own message (`ls --state`, file names).

#include <iosfwd>
#include <string>
#include <vector>

namespace CLI {
class App;
class Validator;
}  // namespace CLI

namespace jobtrail::cli {

/// The kinds of value a completion offers without a fixed list.
enum class ValueKind {
  file,         ///< a file name (--db, --config, --token-file)
  directory,    ///< a directory (--textfile-dir)
  subcommand,   ///< a subcommand's name (`help CMD`)
  command_line  ///< a program and its arguments (`exec -- CMD...`)
};

/// A check that accepts every value and tells the completions what to offer. Checks nothing:
/// the option's own code keeps its error message.
CLI::Validator completes(ValueKind kind);

/// The same for a value that is one of `values` or, with `comma_list`, several of them
/// separated by commas ("failed,dead").
CLI::Validator completes_one_of(const std::vector<std::string>& values, bool comma_list = false);

/// The documents the generator writes.
enum class DocumentKind { man, bash, zsh };

/// The man page (roff), or the bash or zsh completion script, of `app` and its visible
/// subcommands; `version` and `date` go into the man page's title line.
std::string generate_document(CLI::App& app, DocumentKind kind, const std::string& version, const std::string& date);

/// `jobtrail __generate WHAT`: hidden from --help; the build runs it.
struct GenerateOptions {
  std::string what;     ///< man, bash or zsh
  std::string version;  ///< the binary's version, for the man page
  std::string date;     ///< --date: the man page's date; none if empty
};
CLI::App* setup_generate(CLI::App& app, GenerateOptions& options);
int run_generate(CLI::App& app, const GenerateOptions& options, std::ostream& out);

}  // namespace jobtrail::cli
