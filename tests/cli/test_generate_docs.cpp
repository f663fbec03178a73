// The generator on an app of its own: texts hostile to roff and to the shells, a subcommand
// and options it has never seen, hidden ones. Read by the real tools (groff, mandoc, bash,
// zsh), as a user's machine would.

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>

#include "cli_runner.h"
#include "generate_docs.h"
#include "jobtrail/view/job_view.h"

using namespace jobtrail::cli;
using jobtrail::cli_testing::read_file;
using jobtrail::cli_testing::TempDir;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

struct Run {
  int status = -1;
  std::string out;
  std::string err;
};

/// Runs a shell command line (the tests' own, fixed), capturing its output in files.
Run run(const TempDir& directory, const std::string& command) {
  const std::string out = directory.file("run.out");
  const std::string err = directory.file("run.err");
  const int status = std::system((command + " >" + out + " 2>" + err).c_str());
  Run result;
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_file(out);
  result.err = read_file(err);
  return result;
}

std::string write(const TempDir& directory, const std::string& name, const std::string& content) {
  const std::string path = directory.file(name);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

/// A program like jobtrail in shape, with texts that would break an unescaped document.
struct HostileApp {
  CLI::App app{".TH injected 1\n'quoted line and a back\\slash \\fBnot bold\\fR", "demo"};
  std::string db, format, state, name, hidden_value, cursor;
  std::vector<std::string> command;
  bool flag = false;

  HostileApp() {
    app.fallthrough();
    app.add_option("--db", db, "The store; a line\n.SH FAKE\nthat starts with a dot.")->option_text("URL")->check(completes(ValueKind::file));
    CLI::App* impact = app.add_subcommand("impact", "Which entities a failure touched: caf\u00e9, \u2192, \"quoted\".");
    impact->add_option("--format", format, "One of three.")->check(CLI::IsMember({"table", "json", "csv"}));
    impact->add_option("--state", state, "Job states, comma-separated.")
        ->option_text("STATE[,STATE...]")
        ->check(completes_one_of(jobtrail::view::job_state_name_list(), /*comma_list=*/true));
    // Values a shell would expand if they reached it unescaped.
    impact->add_option("--name", name, "A [bracketed]: value with 'quotes' and $(a command).")
        ->check(CLI::IsMember({"$(touch pwned-by-value)", "`touch pwned-by-tick`", "plain"}));
    impact->add_option("--hidden", hidden_value, "Not for people.")->group("");
    impact->add_flag("--dry-run,-n", flag, "A flag - with a hyphen.");
    impact->footer("Footer line one.\n\n.PP\nA paragraph after a blank line.");
    CLI::App* run_it = app.add_subcommand("run", "Runs a command.");
    run_it->add_option("command", command, "The command.")->required()->check(completes(ValueKind::command_line));
    app.add_subcommand("secret", "Hidden.")->group("");
  }
};

}  // namespace

TEST_CASE("the man page prints every text as written, with no warning from groff or mandoc", "[cli][help]") {
  HostileApp demo;
  const TempDir directory;
  const std::string page = write(directory, "demo.1", generate_document(demo.app, DocumentKind::man, "1.0", "2026-12-03"));

  const Run lint = run(directory, "groff -man -Tutf8 -ww -z " + page);
  CHECK(lint.status == 0);
  CHECK(lint.err.empty());
  const Run mandoc = run(directory, "mandoc -Tlint -W warning " + page);
  INFO(mandoc.out << mandoc.err);
  CHECK(mandoc.status == 0);
  CHECK(mandoc.out.empty());

  // Rendered without hyphenation or adjustment, at a width no line reaches, so each text
  // can be looked for as a whole.
  const Run rendered = run(directory, "groff -man -Tutf8 -P-cbou -rHY=0 -rLL=300n -dAD=l " + page);
  REQUIRE(rendered.status == 0);
  INFO(rendered.out);
  CHECK(contains(rendered.out, ".TH injected 1 'quoted line and a back\\slash \\fBnot bold\\fR"));
  CHECK(contains(rendered.out, "The store; a line .SH FAKE that starts with a dot."));
  CHECK(contains(rendered.out, "caf\u00e9, \u2192, \"quoted\""));
  CHECK(contains(rendered.out, "--dry-run"));
  CHECK(contains(rendered.out, "A flag - with a hyphen."));
  CHECK(contains(rendered.out, "Footer line one."));
  CHECK(contains(rendered.out, ".PP A paragraph after a blank line."));
  // The pretend requests did not become sections.
  CHECK_FALSE(contains(rendered.out, "\nFAKE"));
  CHECK_FALSE(contains(rendered.out, "\ninjected"));
  // A subcommand it has never seen is in; hidden ones are not.
  CHECK(contains(rendered.out, "demo impact [OPTIONS]"));
  CHECK(contains(rendered.out, "demo run [OPTIONS] command"));
  CHECK_FALSE(contains(rendered.out, "secret"));
  CHECK_FALSE(contains(rendered.out, "--hidden"));
}

TEST_CASE("the bash completion offers what the definitions allow, and runs nothing it offers", "[cli][help]") {
  HostileApp demo;
  const TempDir directory;
  const std::string script = write(directory, "demo.bash", generate_document(demo.app, DocumentKind::bash, "1.0", ""));
  REQUIRE(run(directory, "bash -n " + script).status == 0);
  const auto complete = [&](const std::string& words) {
    const Run result = run(directory, "cd " + directory.path().string() + " && bash " JOBTRAIL_TESTS_CLI_DIR
                                      "/bash_complete.sh " + script + " " + words);
    INFO(result.err);
    CHECK(result.status == 0);
    return result.out;
  };
  CHECK(complete("demo ''") == "impact\nrun\n");
  CHECK(complete("demo impact --") == "--help\n--format\n--state\n--name\n--dry-run\n--db\n");
  CHECK(complete("demo impact --format ''") == "table\njson\ncsv\n");
  CHECK(complete("demo impact --state failed,d") == "failed,dead\n");
  CHECK(complete("demo impact --name ''") == "$(touch pwned-by-value)\n`touch pwned-by-tick`\nplain\n");
  CHECK_FALSE(std::filesystem::exists(directory.file("pwned-by-value")));
  CHECK_FALSE(std::filesystem::exists(directory.file("pwned-by-tick")));
  CHECK(complete("demo impact --hid").empty());
  CHECK(complete("demo sec").empty());
}

TEST_CASE("the zsh completion is valid zsh and offers what the definitions allow", "[cli][help]") {
  HostileApp demo;
  const TempDir directory;
  std::filesystem::create_directory(directory.file("functions"));
  const std::string script =
      write(directory, "functions/_demo", generate_document(demo.app, DocumentKind::zsh, "1.0", ""));
  REQUIRE(run(directory, "zsh -n " + script).status == 0);
  const auto complete = [&](const std::string& line) {
    const Run result = run(directory, "cd " + directory.path().string() + " && zsh " JOBTRAIL_TESTS_CLI_DIR
                                      "/zsh_complete.zsh " + directory.file("functions") + " '" + line + "'");
    INFO(result.err);
    CHECK(result.status == 0);
    return result.out;
  };
  CHECK(complete("demo ") == "impact\nrun\n");
  CHECK(complete("demo impact --format ") == "csv\njson\ntable\n");
  CHECK(complete("demo impact --dr") == "--dry-run\n");
  CHECK(complete("demo impact --name ") == "$(touch pwned-by-value)\n`touch pwned-by-tick`\nplain\n");
  CHECK_FALSE(std::filesystem::exists(directory.file("pwned-by-value")));
  CHECK_FALSE(std::filesystem::exists(directory.file("pwned-by-tick")));
}
