// The man page and the shell completions, written from the CLI11 definitions (generate_docs.h).
//
// First the app is read into a small model (CommandDoc: options, positionals and what each
// value may be), then each document is written from that model alone, so the three agree
// with each other and with what the binary parses.

#include "generate_docs.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <ostream>
#include <string_view>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli_error.h"
#include "global_options.h"

namespace jobtrail::cli {
namespace {

// A completion hint is a check that passes everything, named "<prefix><kind>[:<values>]": CLI11
// keeps it with the option and lets the generator read it back by index, while the help text
// never shows it (a check's name appears nowhere, and its description is empty).
constexpr std::string_view hint_prefix = "jobtrail-completes:";

/// What a value (of an option or a positional) may be.
struct ValueDoc {
  enum class Kind { any, choices, comma_list, file, directory, subcommand, command_line };
  Kind kind = Kind::any;
  std::vector<std::string> choices;  ///< for choices and comma_list
};

struct OptionDoc {
  std::vector<std::string> names;  ///< "-f", "--follow": short names first, as --help lists them
  std::string value_name;          ///< what --help shows after the name; empty for a flag
  std::string description;
  bool required = false;
  bool repeatable = false;
  bool is_help = false;  ///< -h,--help, which every command has
  ValueDoc value;
  bool takes_value() const { return !value_name.empty(); }
};

struct PositionalDoc {
  std::string name;
  std::string description;
  bool required = false;
  bool repeatable = false;
  ValueDoc value;
};

struct CommandDoc {
  std::string name;  ///< the subcommand's name; the program's for the top level
  std::string description;
  std::string footer;
  bool takes_global_options = false;  ///< the parent's options may follow it (CLI11's fallthrough)
  std::vector<OptionDoc> options;
  std::vector<PositionalDoc> positionals;
};

struct ProgramDoc {
  CommandDoc top;  ///< the program itself: its options are the global ones
  std::vector<CommandDoc> commands;
};

std::vector<std::string> split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  std::size_t begin = 0;
  for (;;) {
    const std::size_t end = std::min(text.find(separator, begin), text.size());
    parts.emplace_back(text.substr(begin, end - begin));
    if (end == text.size()) return parts;
    begin = end + 1;
  }
}

std::vector<std::string> lines_of(std::string_view text) {
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  return split(text, '\n');
}

/// The first line of a description, for the completions' one-line explanations.
std::string first_line(std::string_view text) { return lines_of(text).front(); }

std::vector<CLI::Validator*> validators_of(CLI::Option& option) {
  std::vector<CLI::Validator*> found;
  // CLI11 2.1 gives no count: get_validator(index) throws past the last one.
  for (int index = 0;; ++index) {
    try {
      found.push_back(option.get_validator(index));
    } catch (const CLI::OptionNotFound&) {
      return found;
    }
  }
}

/// What the option's checks say about its values: a completion hint, else the set of an
/// IsMember check, which CLI11 exposes only as its description "{a,b,c}".
ValueDoc value_of(CLI::Option& option) {
  ValueDoc set_value;
  for (CLI::Validator* validator : validators_of(option)) {
    const std::string& name = validator->get_name();
    if (name.rfind(hint_prefix, 0) == 0) {
      const std::string hint = name.substr(hint_prefix.size());
      const std::size_t colon = hint.find(':');
      const std::string kind = hint.substr(0, colon);
      ValueDoc value;
      if (colon != std::string::npos) value.choices = split(std::string_view(hint).substr(colon + 1), ',');
      static const std::pair<std::string_view, ValueDoc::Kind> kinds[] = {
          {"one-of", ValueDoc::Kind::choices},     {"list-of", ValueDoc::Kind::comma_list},
          {"file", ValueDoc::Kind::file},          {"directory", ValueDoc::Kind::directory},
          {"subcommand", ValueDoc::Kind::subcommand}, {"command-line", ValueDoc::Kind::command_line}};
      for (const auto& [spelled, meaning] : kinds) {
        if (kind == spelled) value.kind = meaning;
      }
      return value;
    }
    const std::string set = validator->get_description();
    // A map's description ("{a->1,...}") names keys and values: not a list of choices.
    if (set.size() > 2 && set.front() == '{' && set.back() == '}' && set.find("->") == std::string::npos) {
      set_value.kind = ValueDoc::Kind::choices;
      set_value.choices = split(std::string_view(set).substr(1, set.size() - 2), ',');
    }
  }
  return set_value;
}

CommandDoc describe(CLI::App& app) {
  CommandDoc command;
  command.name = app.get_name();
  command.description = app.get_description();
  command.footer = app.get_footer();
  command.takes_global_options = app.get_fallthrough();
  const CLI::Option* help = app.get_help_ptr();
  for (CLI::Option* option : app.get_options()) {
    if (option->get_group().empty()) continue;  // hidden
    if (!option->nonpositional()) {
      PositionalDoc positional;
      positional.name = option->get_name(true);
      positional.description = option->get_description();
      positional.required = option->get_required();
      positional.repeatable = option->get_expected_max() > 1;
      positional.value = value_of(*option);
      command.positionals.push_back(std::move(positional));
      continue;
    }
    OptionDoc doc;
    for (const std::string& name : option->get_snames()) doc.names.push_back("-" + name);
    for (const std::string& name : option->get_lnames()) doc.names.push_back("--" + name);
    if (option->get_items_expected_max() > 0) {  // a flag expects no value
      doc.value_name = !option->get_option_text().empty() ? option->get_option_text() : option->get_type_name();
      if (doc.value_name.empty()) doc.value_name = "VALUE";
    }
    doc.description = option->get_description();
    doc.required = option->get_required();
    doc.repeatable = doc.takes_value() && option->get_expected_max() > 1;
    doc.is_help = option == help;
    doc.value = value_of(*option);
    command.options.push_back(std::move(doc));
  }
  return command;
}

ProgramDoc describe_program(CLI::App& app) {
  ProgramDoc program;
  program.top = describe(app);
  // The visible subcommands, in the order --help lists them (hidden ones have no group).
  for (CLI::App* subcommand : app.get_subcommands([](CLI::App* sub) { return !sub->get_group().empty(); })) {
    program.commands.push_back(describe(*subcommand));
  }
  return program;
}

/// The global options that may follow a subcommand that takes them: all but --help, which
/// each subcommand has of its own.
std::vector<OptionDoc> global_options_after_subcommand(const ProgramDoc& program) {
  std::vector<OptionDoc> options;
  for (const OptionDoc& option : program.top.options) {
    if (!option.is_help) options.push_back(option);
  }
  return options;
}

/// `text` without a trailing `tail` (and the blank lines before it).
std::string without_tail(std::string text, std::string_view tail) {
  if (text.size() >= tail.size() && text.compare(text.size() - tail.size(), tail.size(), tail) == 0) {
    text.erase(text.size() - tail.size());
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// ---- roff ---------------------------------------------------------------------------------

/// Decodes one UTF-8 sequence at `text[at]`; U+FFFD (and one byte) for an invalid one.
char32_t next_code_point(std::string_view text, std::size_t& at) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(at);
  const std::size_t length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
  if (length == 0 || at + length > text.size()) {
    ++at;
    return 0xFFFD;
  }
  char32_t code = length == 1 ? lead : lead & (0xFF >> (length + 1));
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(at + i) >> 6) != 0x2) {
      ++at;
      return 0xFFFD;
    }
    code = (code << 6) | (byte(at + i) & 0x3F);
  }
  at += length;
  return code;
}

/// Text as roff input: a backslash printed as \e, every hyphen as \- (so an option name stays
/// an ASCII hyphen that can be copied and searched for), and anything beyond ASCII as
/// \[uXXXX], so the page reads the same whatever encoding troff assumes. For text inside one
/// input line; roff_text makes the lines.
std::string roff_escaped(std::string_view text) {
  std::string out;
  for (std::size_t at = 0; at < text.size();) {
    const char c = text[at];
    if (static_cast<unsigned char>(c) >= 0x80) {
      out += fmt::format("\\[u{:04X}]", static_cast<std::uint32_t>(next_code_point(text, at)));
      continue;
    }
    ++at;
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else if (c == '\t') {
      out += ' ';
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      continue;  // no control character reaches troff
    } else {
      out += c;
    }
  }
  return out;
}

/// An input line that begins with . or ' would be a request: \& before it keeps it text.
std::string guarded(std::string line) {
  return !line.empty() && (line.front() == '.' || line.front() == '\'') ? "\\&" + line : line;
}

std::string roff_line(std::string_view text) { return guarded(roff_escaped(text)); }

/// Text as roff input lines of at most 80 bytes where the words allow (troff fills them into
/// paragraphs anyway; the line breaks of the --help text are for a terminal); a blank line
/// starts a new paragraph.
std::string roff_text(std::string_view text) {
  constexpr std::size_t widest = 80;
  std::string out;
  std::string line;
  const auto end_line = [&] {
    if (!line.empty()) out += guarded(line) + '\n';
    line.clear();
  };
  bool pending_paragraph = false;
  for (const std::string& source_line : lines_of(text)) {
    if (source_line.find_first_not_of(' ') == std::string::npos) {
      end_line();
      pending_paragraph = !out.empty();
      continue;
    }
    if (pending_paragraph) out += ".PP\n";
    pending_paragraph = false;
    for (const std::string& word : split(source_line, ' ')) {
      if (word.empty()) continue;
      const std::string escaped = roff_escaped(word);
      if (!line.empty() && line.size() + 1 + escaped.size() > widest) end_line();
      line += (line.empty() ? "" : " ") + escaped;
    }
  }
  end_line();
  return out;
}

std::string bold(std::string_view text) { return "\\fB" + roff_line(text) + "\\fR"; }
std::string italic(std::string_view text) { return "\\fI" + roff_line(text) + "\\fR"; }

/// "\fB\-f\fR, \fB\-\-follow\fR \fIN\fR": the tag line of an option.
std::string option_tag(const OptionDoc& option) {
  std::vector<std::string> names;
  for (const std::string& name : option.names) names.push_back(bold(name));
  std::string tag = fmt::format("{}", fmt::join(names, ", "));
  if (option.takes_value()) tag += " " + italic(option.value_name);
  return tag;
}

/// The usage line of a subcommand: its required options, [OPTIONS], then its positionals.
std::string synopsis(const std::string& program, const CommandDoc& command) {
  std::string line = bold(program + " " + command.name);
  for (const OptionDoc& option : command.options) {
    if (option.required) line += " " + bold(option.names.back()) + (option.takes_value() ? " " + italic(option.value_name) : "");
  }
  line += " [" + italic("OPTIONS") + "]";
  for (const PositionalDoc& positional : command.positionals) {
    const std::string name = italic(positional.name) + (positional.repeatable ? "\\ ..." : "");
    line += positional.required ? " " + name : " [" + name + "]";
  }
  return line;
}

void write_options(std::string& out, const std::vector<OptionDoc>& options) {
  for (const OptionDoc& option : options) {
    out += ".TP\n" + option_tag(option) + '\n';
    std::string description = option.description;
    if (option.required) description += " Required.";
    if (option.repeatable && description.find("repeatable") == std::string::npos) description += " Repeatable.";
    out += roff_text(description);
  }
}

std::string man_page(const ProgramDoc& program, const std::string& version, const std::string& date) {
  const std::string& name = program.top.name;
  std::string upper = name;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  std::string out;
  out += fmt::format(".\\\" The manual page of {}, generated by `{} __generate man` from its own option\n", name, name);
  out += ".\\\" definitions at build time: edit the definitions, not this file.\n";
  // The date as given (digits and hyphens, checked by setup_generate): man and mandoc read it.
  out += fmt::format(".TH {} 1 \"{}\" \"{}\" \"User Commands\"\n", upper, date,
                     roff_escaped(name + " " + version));

  out += ".SH NAME\n";
  std::string summary = program.top.description;
  if (summary.rfind(name + ": ", 0) == 0) summary.erase(0, name.size() + 2);
  out += roff_line(name) + " \\-\n" + roff_text(first_line(summary));

  out += ".SH SYNOPSIS\n";
  out += bold(name) + " [" + italic("GLOBAL OPTIONS") + "] " + italic("COMMAND") + " [" + italic("OPTIONS") + "] [" +
         italic("ARGUMENTS") + "]\n";

  out += ".SH DESCRIPTION\n";
  out += roff_text(program.top.description);
  const std::string top_footer = without_tail(program.top.footer, exit_codes_help);
  if (!top_footer.empty()) out += ".PP\n" + roff_text(top_footer);

  out += ".SH OPTIONS\n";
  out += "These global options may come before or after the command.\n";
  write_options(out, program.top.options);

  out += ".SH COMMANDS\n";
  for (const CommandDoc& command : program.commands) {
    out += ".SS " + roff_line(command.name) + '\n';
    out += synopsis(name, command) + '\n';
    out += ".PP\n" + roff_text(command.description);
    for (const PositionalDoc& positional : command.positionals) {
      out += ".TP\n" + italic(positional.name) + '\n' + roff_text(positional.description);
    }
    std::vector<OptionDoc> own;
    for (const OptionDoc& option : command.options) {
      if (!option.is_help) own.push_back(option);
    }
    write_options(out, own);
    // The exit codes every command shares are in EXIT STATUS; a command's own stay here.
    const std::string footer = without_tail(command.footer, exit_codes_help);
    if (!footer.empty()) out += ".PP\n" + roff_text(footer);
  }

  out += ".SH EXIT STATUS\n";
  out += roff_text(exit_codes_help);
  out += "A command with exit codes of its own lists them under COMMANDS.\n";

  out += ".SH ENVIRONMENT\n";
  for (const EnvironmentVariable& variable : environment_variables) {
    out += ".TP\n" + bold(variable.name) + '\n' + roff_text(variable.meaning);
  }

  out += ".SH SEE ALSO\n";
  out += fmt::format("{} help {}, {} {} {} print these texts.\n", bold(name), italic("COMMAND"), bold(name),
                     italic("COMMAND"), bold("--help"));
  out += roff_text("The guides (checks, events, the HTTP API) are docs/*.md in the source distribution.");
  return out;
}

// ---- shells -------------------------------------------------------------------------------

/// `text` as one single-quoted shell word (bash and zsh alike).
std::string shell_word(std::string_view text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

/// `text` with a backslash before every character but letters, digits and - _ . , / = + @ %,
/// so that it stays one literal word through the expansions of bash (compgen -W expands its
/// word list) and zsh (an _arguments action is evaluated).
std::string escaped_word(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && std::string_view("-_.,/=+@%").find(c) == std::string_view::npos) {
      out += '\\';
    }
    out += c;
  }
  return out;
}

std::string escaped_words(const std::vector<std::string>& words) {
  std::vector<std::string> escaped;
  for (const std::string& word : words) escaped.push_back(escaped_word(word));
  return fmt::format("{}", fmt::join(escaped, " "));
}

/// The assignments of the bash script that say what a value is: value_kind, and value_words
/// (a word list for compgen -W) for choices. Nothing is ever split or globbed on the way.
std::string bash_value_assignments(const ValueDoc& value) {
  switch (value.kind) {
    case ValueDoc::Kind::choices: return "value_kind=choices value_words=" + shell_word(escaped_words(value.choices));
    case ValueDoc::Kind::comma_list: return "value_kind=list value_words=" + shell_word(escaped_words(value.choices));
    case ValueDoc::Kind::file: return "value_kind=file";
    case ValueDoc::Kind::directory: return "value_kind=directory";
    case ValueDoc::Kind::subcommand: return "value_kind=subcommand";
    case ValueDoc::Kind::command_line: return "value_kind=command_line";
    case ValueDoc::Kind::any: break;
  }
  return "value_kind=any";
}

std::string bash_completion(const ProgramDoc& program) {
  const std::string& name = program.top.name;
  const std::string function = "_" + name;
  const std::vector<OptionDoc> globals = global_options_after_subcommand(program);
  std::string out;
  out += fmt::format("# bash completion for {}, generated by `{} __generate bash` from its own option\n", name, name);
  out += "# definitions at build time: edit the definitions, not this file.\n\n";
  std::vector<std::string> names;
  for (const CommandDoc& command : program.commands) names.push_back(command.name);
  out += fmt::format("{}_subcommands={}\n\n", function, shell_word(escaped_words(names)));

  const auto option_words = [](const std::vector<OptionDoc>& options) {
    std::vector<std::string> words;
    for (const OptionDoc& option : options) words.insert(words.end(), option.names.begin(), option.names.end());
    return escaped_words(words);
  };
  out += "# The options of subcommand $1 ('' before one), as a compgen -W word list; the global\n";
  out += "# ones included, as they may also follow the subcommand.\n";
  out += fmt::format("{}_options() {{\n  case $1 in\n", function);
  for (const CommandDoc& command : program.commands) {
    const std::string global_words = command.takes_global_options ? " " + option_words(globals) : "";
    out += fmt::format("    {}) echo {} ;;\n", shell_word(command.name), shell_word(option_words(command.options) + global_words));
  }
  out += fmt::format("    *) echo {} ;;\n  esac\n}}\n\n", shell_word(option_words(program.top.options)));

  out += "# What option $2 of subcommand $1 takes: sets value_kind (choices, list: comma-separated\n";
  out += "# choices, file, directory, subcommand or any) and value_words; fails for a flag.\n";
  out += fmt::format("{}_value() {{\n  value_words=\n  case \"$1 $2\" in\n", function);
  // `command` empty: the global options, for any subcommand or none.
  const auto value_cases = [&out](const std::string& command, const std::vector<OptionDoc>& options) {
    for (const OptionDoc& option : options) {
      if (!option.takes_value()) continue;
      std::vector<std::string> patterns;
      for (const std::string& option_name : option.names) {
        patterns.push_back(command.empty() ? "*" + shell_word(" " + option_name) : shell_word(command + " " + option_name));
      }
      out += fmt::format("    {}) {} ;;\n", fmt::join(patterns, "|"), bash_value_assignments(option.value));
    }
  };
  // A subcommand's own options first: one of the same name as a global option wins.
  for (const CommandDoc& command : program.commands) {
    value_cases(command.name, command.options);
    // A global option after a subcommand that does not take them is not completed as one.
    if (!command.takes_global_options) out += fmt::format("    {}) return 1 ;;\n", shell_word(command.name + " ") + "*");
  }
  value_cases("", program.top.options);
  out += "    *) return 1 ;;\n  esac\n}\n\n";

  out += "# The same for positional $2 (0 for the first) of subcommand $1; for a command line, also\n";
  out += "# value_start, the position it starts at.\n";
  out += fmt::format("{}_positional() {{\n  value_words=\n  case \"$1 $2\" in\n", function);
  for (const CommandDoc& command : program.commands) {
    for (std::size_t index = 0; index < command.positionals.size(); ++index) {
      const PositionalDoc& positional = command.positionals[index];
      const std::string pattern =
          positional.repeatable ? shell_word(command.name + " ") + "*" : shell_word(command.name + " " + std::to_string(index));
      out += fmt::format("    {}) {} value_start={} ;;\n", pattern, bash_value_assignments(positional.value), index);
      if (positional.repeatable) break;  // it takes every later word
    }
  }
  out += "    *) return 1 ;;\n  esac\n}\n\n";

  out += fmt::format(R"bash(# Sets COMPREPLY for a value of value_kind, $cur being the word so far.
{0}_complete_value() {{
  case $value_kind in
    choices) mapfile -t COMPREPLY < <(compgen -W "$value_words" -- "$cur") ;;
    list)
      # The choices already typed stay; the one after the last comma is completed.
      local typed=
      [[ $cur == *,* ]] && typed=${{cur%,*}},
      mapfile -t COMPREPLY < <(compgen -P "$typed" -W "$value_words" -- "${{cur##*,}}") ;;
    file)
      compopt -o filenames 2>/dev/null
      mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
    directory)
      compopt -o filenames 2>/dev/null
      mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
    subcommand) mapfile -t COMPREPLY < <(compgen -W "${0}_subcommands" -- "$cur") ;;
    command_line)
      # The program first, then its arguments as file names.
      compopt -o filenames 2>/dev/null
      if ((positionals == value_start)); then
        mapfile -t COMPREPLY < <(compgen -c -- "$cur" | sort -u)
      else
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
      fi ;;
    *) COMPREPLY=() ;;
  esac
}}

{0}() {{
  local cur=${{COMP_WORDS[COMP_CWORD]}} prev= option= subcommand= word i positionals=0 after_dashes=
  local value_kind= value_words= value_start=0
  ((COMP_CWORD > 0)) && prev=${{COMP_WORDS[COMP_CWORD - 1]}}
  # Which subcommand, and how many positionals precede the word: option values are skipped
  # (bash splits --db=PATH into '--db' '=' 'PATH', COMP_WORDBREAKS having '=').
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${{COMP_WORDS[i]}}
    if [[ -n $after_dashes ]]; then
      ((positionals++))
    elif [[ $word == -- ]]; then
      after_dashes=1
    elif [[ $word == -* ]]; then
      if [[ ${{COMP_WORDS[i + 1]-}} == = ]]; then
        ((i += 2))
      elif {0}_value "$subcommand" "$word"; then
        ((i++))
      fi
    elif [[ -z $subcommand ]]; then
      subcommand=$word
    else
      ((positionals++))
    fi
  done
  COMPREPLY=()
  if [[ -z $after_dashes ]]; then
    if [[ $cur == = ]]; then
      option=$prev
      cur=
    elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
      option=${{COMP_WORDS[COMP_CWORD - 2]}}
    elif [[ $prev == -* ]]; then
      option=$prev
    fi
    if [[ -n $option ]] && {0}_value "$subcommand" "$option"; then
      {0}_complete_value
      return
    fi
    if [[ $cur == -* ]]; then
      mapfile -t COMPREPLY < <(compgen -W "$({0}_options "$subcommand")" -- "$cur")
      return
    fi
  fi
  if [[ -z $subcommand ]]; then
    mapfile -t COMPREPLY < <(compgen -W "${0}_subcommands" -- "$cur")
    return
  fi
  {0}_positional "$subcommand" "$positionals" && {0}_complete_value
}}

complete -F {0} {1}
)bash",
                     function, name);
  return out;
}

/// A description as the explanation in an _arguments spec's brackets, or after the colon of
/// a _describe item: its first line, with what those parse escaped.
std::string zsh_explanation(std::string_view description) {
  std::string out;
  for (const char c : first_line(description)) {
    if (c == '[' || c == ']' || c == ':' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

/// The message-and-action part of a spec (":VALUE:ACTION") for a value.
std::string zsh_value_action(const std::string& value_name, const ValueDoc& value, const ProgramDoc& program) {
  std::string message;
  for (const char c : value_name) {
    if (c == ':' || c == '\\') message += '\\';
    message += c;
  }
  switch (value.kind) {
    case ValueDoc::Kind::choices: return fmt::format(":{}:({})", message, escaped_words(value.choices));
    case ValueDoc::Kind::comma_list:
      return fmt::format(":{}:_values -s , {} {}", message, escaped_word(value_name), escaped_words(value.choices));
    case ValueDoc::Kind::file: return fmt::format(":{}:_files", message);
    case ValueDoc::Kind::directory: return fmt::format(":{}:_files -/", message);
    case ValueDoc::Kind::subcommand: {
      std::vector<std::string> names;
      for (const CommandDoc& command : program.commands) names.push_back(command.name);
      return fmt::format(":{}:({})", message, escaped_words(names));
    }
    case ValueDoc::Kind::command_line: return fmt::format(":{}:_normal", message);
    case ValueDoc::Kind::any: break;
  }
  return fmt::format(":{}: ", message);  // a space: nothing to offer, the message is shown
}

std::vector<std::string> zsh_option_specs(const std::vector<OptionDoc>& options, const ProgramDoc& program) {
  std::vector<std::string> specs;
  for (const OptionDoc& option : options) {
    // After --help (or --version) nothing else counts.
    const bool ends_all = option.is_help || std::find(option.names.begin(), option.names.end(), "--version") != option.names.end();
    const std::string exclusions =
        ends_all ? "(- *)" : option.names.size() > 1 ? fmt::format("({})", fmt::join(option.names, " ")) : "";
    for (const std::string& option_name : option.names) {
      std::string spec = (option.repeatable ? "*" : exclusions) + option_name;
      if (option.takes_value() && option_name.rfind("--", 0) == 0) spec += '=';  // --db=PATH or --db PATH
      spec += "[" + zsh_explanation(option.description) + "]";
      if (option.takes_value()) spec += zsh_value_action(option.value_name, option.value, program);
      specs.push_back(shell_word(spec));
    }
  }
  return specs;
}

std::string zsh_completion(const ProgramDoc& program) {
  const std::string& name = program.top.name;
  const std::string function = "_" + name;
  std::string out;
  out += fmt::format("#compdef {}\n", name);
  out += fmt::format("# zsh completion for {}, generated by `{} __generate zsh` from its own option\n", name, name);
  out += "# definitions at build time: edit the definitions, not this file.\n\n";
  out += fmt::format("{}() {{\n", function);
  out += "  local curcontext=$curcontext state state_descr line ret=1\n";
  out += "  typeset -A opt_args\n";
  out += "  # The global options may also follow the subcommand.\n";
  out += "  local -a global_options=(\n";
  for (const std::string& spec : zsh_option_specs(global_options_after_subcommand(program), program)) {
    out += "    " + spec + '\n';
  }
  out += "  )\n";
  std::vector<OptionDoc> top_help;
  for (const OptionDoc& option : program.top.options) {
    if (option.is_help) top_help.push_back(option);
  }
  out += "  _arguments -C -S";
  for (const std::string& spec : zsh_option_specs(top_help, program)) out += " " + spec;
  out += " \"${global_options[@]}\" ': :->subcommand' '*:: :->argument' && ret=0\n";
  out += "  case $state in\n";
  out += "    subcommand)\n";
  out += "      local -a subcommands=(\n";
  for (const CommandDoc& command : program.commands) {
    std::string item;
    for (const char c : command.name) {
      if (c == ':' || c == '\\') item += '\\';
      item += c;
    }
    out += "        " + shell_word(item + ":" + zsh_explanation(command.description)) + '\n';
  }
  out += "      )\n";
  out += fmt::format("      _describe -t subcommands {} subcommands && ret=0\n", shell_word(name + " subcommand"));
  out += "      ;;\n";
  out += "    argument)\n";
  out += fmt::format("      curcontext=${{curcontext%:*:*}}:{}-$words[1]:\n", name);
  out += "      case $words[1] in\n";
  for (const CommandDoc& command : program.commands) {
    out += fmt::format("        ({})\n", shell_word(command.name));
    out += command.takes_global_options ? "          _arguments -S \"${global_options[@]}\"" : "          _arguments -S";
    for (const std::string& spec : zsh_option_specs(command.options, program)) out += " \\\n            " + spec;
    for (const PositionalDoc& positional : command.positionals) {
      // "*::" hands a command line its own words (exec -- CMD ARGS...); ":" is one word.
      const std::string prefix = positional.repeatable ? (positional.value.kind == ValueDoc::Kind::command_line ? "*:" : "*")
                                                       : positional.required ? "" : ":";
      out += " \\\n            " + shell_word(prefix + zsh_value_action(positional.name, positional.value, program));
    }
    out += " && ret=0\n          ;;\n";
  }
  out += "      esac\n";
  out += "      ;;\n";
  out += "  esac\n";
  out += "  return ret\n";
  out += "}\n\n";
  // Autoloaded from $fpath, the file's body runs as the function; sourced, it registers it.
  out += fmt::format("if [[ $funcstack[1] == {0} ]]; then\n  {0} \"$@\"\nelse\n  compdef {0} {1}\nfi\n", function, name);
  return out;
}

}  // namespace

CLI::Validator completes(ValueKind kind) {
  const char* spelled = "file";
  switch (kind) {
    case ValueKind::file: spelled = "file"; break;
    case ValueKind::directory: spelled = "directory"; break;
    case ValueKind::subcommand: spelled = "subcommand"; break;
    case ValueKind::command_line: spelled = "command-line"; break;
  }
  return CLI::Validator([](std::string&) { return std::string(); }, "", std::string(hint_prefix) + spelled);
}

CLI::Validator completes_one_of(const std::vector<std::string>& values, bool comma_list) {
  const std::string name = fmt::format("{}{}:{}", hint_prefix, comma_list ? "list-of" : "one-of", fmt::join(values, ","));
  return CLI::Validator([](std::string&) { return std::string(); }, "", name);
}

std::string generate_document(CLI::App& app, DocumentKind kind, const std::string& version, const std::string& date) {
  const ProgramDoc program = describe_program(app);
  switch (kind) {
    case DocumentKind::man: return man_page(program, version, date);
    case DocumentKind::bash: return bash_completion(program);
    case DocumentKind::zsh: return zsh_completion(program);
  }
  return {};
}

CLI::App* setup_generate(CLI::App& app, GenerateOptions& options) {
  CLI::App* generate = app.add_subcommand("__generate", "Write the man page or a shell completion to stdout.");
  generate->group("");  // hidden: for the build, not for people
  generate->add_option("WHAT", options.what, "man, bash or zsh.")->required()->check(CLI::IsMember({"man", "bash", "zsh"}));
  generate->add_option("--date", options.date, "The man page's date (the build passes one that honours SOURCE_DATE_EPOCH).")
      ->option_text("YYYY-MM-DD")
      ->check(
          [](const std::string& date) {
            const bool plain = date.size() == 10 && std::all_of(date.begin(), date.end(), [](char c) {
                                 return (c >= '0' && c <= '9') || c == '-';
                               });
            return plain ? std::string() : std::string("expected YYYY-MM-DD");
          },
          "YYYY-MM-DD");
  return generate;
}

int run_generate(CLI::App& app, const GenerateOptions& options, std::ostream& out) {
  const DocumentKind kind = options.what == "man" ? DocumentKind::man : options.what == "bash" ? DocumentKind::bash : DocumentKind::zsh;
  out << generate_document(app, kind, options.version, options.date);
  return exit_ok;
}

}  // namespace jobtrail::cli
