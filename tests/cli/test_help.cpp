// `jobtrail help [CMD]`, and the man page and completions the binary writes of itself: each
// checked against what the binary's own --help says, never against a list kept here, so a
// new subcommand or option (impact, --color) is covered without touching this file.

#include <algorithm>
#include <sstream>

#include <catch2/catch.hpp>

#include "cli_runner.h"

using namespace jobtrail::cli_testing;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

/// The names --help lists under `heading` ("Subcommands:", "Options:"): the first word of
/// each entry (an entry starts two spaces in; its continuation lines further).
std::vector<std::string> listed(const std::string& help, const std::string& heading) {
  std::vector<std::string> names;
  bool inside = false;
  for (const std::string& line : lines_of(help)) {
    if (line == heading) {
      inside = true;
    } else if (inside && line.empty()) {
      break;
    } else if (inside && line.size() > 2 && line.rfind("  ", 0) == 0 && line[2] != ' ') {
      names.push_back(line.substr(2, line.find(' ', 2) - 2));
    }
  }
  return names;
}

std::vector<std::string> subcommands() {
  const CliResult help = run_cli({"--help"});
  REQUIRE(help.exit_code == 0);
  std::vector<std::string> names = listed(help.out, "Subcommands:");
  REQUIRE(names.size() >= 10);  // show ... exec, help: a broken parse must not pass for "none"
  return names;
}

/// The option names of `jobtrail CMD --help` (`-f,--follow` gives both); the global ones for "".
std::vector<std::string> options_of(const std::string& subcommand) {
  const CliResult help = subcommand.empty() ? run_cli({"--help"}) : run_cli({subcommand, "--help"});
  REQUIRE(help.exit_code == 0);
  std::vector<std::string> names;
  for (const std::string& entry : listed(help.out, "Options:")) {
    std::istringstream split(entry);
    for (std::string name; std::getline(split, name, ',');) names.push_back(name);
  }
  return names;
}

}  // namespace

TEST_CASE("help prints what --help prints, for the program and for each subcommand", "[cli][help]") {
  const CliResult top = run_cli({"help"});
  CHECK(top.exit_code == 0);
  CHECK(top.err.empty());
  CHECK(top.out == run_cli({"--help"}).out);
  const std::vector<std::string> names = subcommands();
  CHECK(std::count(names.begin(), names.end(), "help") == 1);
  for (const std::string& name : names) {
    INFO("jobtrail help " << name);
    const CliResult help = run_cli({"help", name});
    CHECK(help.exit_code == 0);
    CHECK(help.err.empty());
    CHECK(help.out == run_cli({name, "--help"}).out);
    CHECK(contains(help.out, "Usage: jobtrail " + name));
  }
}

TEST_CASE("help of an unknown subcommand is bad input and names the near ones", "[cli][help]") {
  const CliResult typo = run_cli({"help", "sho"});
  CHECK(typo.exit_code == 2);
  CHECK(typo.out.empty());
  CHECK(typo.err == "jobtrail: no subcommand 'sho'; did you mean 'show'? (see 'jobtrail --help')\n");
  // Two neighbours swapped is one edit.
  CHECK(run_cli({"help", "sl"}).err == "jobtrail: no subcommand 'sl'; did you mean 'ls'? (see 'jobtrail --help')\n");
  // A start of several names offers each of them.
  CHECK(contains(run_cli({"help", "st"}).err, "did you mean 'stats'?"));
  // Nothing near: the list of subcommands, all of them.
  const CliResult far = run_cli({"help", "xyzzy"});
  CHECK(far.exit_code == 2);
  CHECK(far.err.rfind("jobtrail: no subcommand 'xyzzy': the subcommands are ", 0) == 0);
  for (const std::string& name : subcommands()) CHECK(contains(far.err, name));
  // What the user typed reaches the terminal escaped, and JSON errors stay JSON.
  CHECK(run_cli({"help", "\x1b]0;pwned\x07"}).err.find('\x1b') == std::string::npos);
  CHECK(run_cli({"--format", "json", "help", "sho"}).err ==
        "{\"error\":\"no subcommand 'sho'; did you mean 'show'? (see 'jobtrail --help')\",\"exit_code\":2}\n");
}

TEST_CASE("a mistyped subcommand is bad input and names the near ones, as help does", "[cli][help]") {
  const CliResult typo = run_cli({"sho", "welcome-1"});
  CHECK(typo.exit_code == 2);
  CHECK(typo.out.empty());
  CHECK(typo.err == "jobtrail: no subcommand 'sho'; did you mean 'show'? (see 'jobtrail --help')\n");
  // Global options before it change nothing; the typed word reaches the terminal escaped.
  CHECK(run_cli({"--db", "x.db", "tarce"}).err ==
        "jobtrail: no subcommand 'tarce'; did you mean 'trace'? (see 'jobtrail --help')\n");
  CHECK(run_cli({"\x1b]0;pwned\x07"}).err.find('\x1b') == std::string::npos);
  CHECK(run_cli({"xyzzy"}).err.rfind("jobtrail: no subcommand 'xyzzy': the subcommands are ", 0) == 0);
  CHECK(run_cli({"--format", "json", "sl"}).err ==
        "{\"error\":\"no subcommand 'sl'; did you mean 'ls'? (see 'jobtrail --help')\",\"exit_code\":2}\n");
  // An unknown option is still CLI11's own message.
  CHECK(contains(run_cli({"--bogus"}).err, "not expected: --bogus"));
}

TEST_CASE("one subcommand per run: a later subcommand name is an argument", "[cli][help]") {
  // `help ls` is help about ls (above); after a subcommand without positionals it is a mistake.
  const CliResult two = run_cli({"--db", "x.db", "ls", "show"});
  CHECK(two.exit_code == 2);
  CHECK(contains(two.err, "not expected: show"));
}

TEST_CASE("the generator is hidden and takes man, bash or zsh", "[cli][help]") {
  CHECK_FALSE(contains(run_cli({"--help"}).out, "__generate"));
  CHECK(run_cli({"__generate", "nroff"}).exit_code == 2);
  CHECK(run_cli({"__generate", "man", "--date", "1 Jan"}).exit_code == 2);
  const CliResult man = run_cli({"__generate", "man", "--date", "2026-12-03"});
  CHECK(man.exit_code == 0);
  CHECK(contains(man.out, ".TH JOBTRAIL 1 \"2026-12-03\""));
}

TEST_CASE("the man page and the completions cover every subcommand and option --help lists", "[cli][help]") {
  const std::string man = run_cli({"__generate", "man"}).out;
  const std::string bash = run_cli({"__generate", "bash"}).out;
  const std::string zsh = run_cli({"__generate", "zsh"}).out;
  const auto roff = [](std::string name) {
    std::string escaped;
    for (const char c : name) escaped += c == '-' ? std::string("\\-") : std::string(1, c);
    return "\\fB" + escaped + "\\fR";
  };
  const std::vector<std::string> global = options_of("");
  for (const std::string& option : global) {
    INFO(option);
    CHECK(contains(man, roff(option)));
  }
  for (const std::string& name : subcommands()) {
    INFO("subcommand " << name);
    CHECK(contains(man, "\n.SS " + name + "\n"));
    REQUIRE(contains(bash, "    '" + name + "') echo '"));
    REQUIRE(contains(zsh, "        ('" + name + "')\n"));
    CHECK(contains(zsh, "        '" + name + ":"));
    // The bash line of the subcommand offers each of its options and the global ones.
    const std::size_t line_start = bash.find("    '" + name + "') echo '");
    std::string bash_line = bash.substr(line_start, bash.find('\n', line_start) - line_start) + " ";
    std::replace(bash_line.begin(), bash_line.end(), '\'', ' ');
    // The zsh block of the subcommand, up to its end.
    const std::size_t block_start = zsh.find("        ('" + name + "')\n");
    const std::string zsh_block = zsh.substr(block_start, zsh.find("          ;;", block_start) - block_start);
    for (const std::string& option : options_of(name)) {
      INFO("option " << option);
      CHECK(contains(man, roff(option)));
      CHECK(contains(bash_line, " " + option + " "));
      CHECK((contains(zsh_block, option + "[") || contains(zsh_block, option + "=[")));
    }
    for (const std::string& option : global) {
      if (option == "-h" || option == "--help") continue;
      CHECK(contains(bash_line, " " + option + " "));
    }
  }
}
