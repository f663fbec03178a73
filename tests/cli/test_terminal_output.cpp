// Output a terminal and a pipe can trust: columns measured in display width, every byte an ID
// or a message brings escaped on every path (tables, confirmations, errors), multi-line errors
// as lines, write errors as errors. Stores are made with `jobtrail emit`, as a script would.

#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "cli_runner.h"

using namespace jobtrail::cli_testing;

extern char** environ;

namespace {

const std::string now = "2026-12-01T12:00:00Z";

/// An ID that, printed raw, sets the terminal's title, rings its bell and clears the screen.
/// (The store refuses bytes that are not UTF-8 in an ID; the table tests cover those.)
const std::string hostile_id = "evil\x1b]0;pwned\x07\x1b[2J-\xc2\x9b" "31m-id";

class EmittedStore {
 public:
  EmittedStore() : path_((dir_.path() / "store.db").string()) {}
  const std::string& path() const { return path_; }

  /// Runs `jobtrail --db STORE emit ARGS...`, which must succeed.
  CliResult emit(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--db", path_, "emit"});
    const CliResult result = run_cli(args);
    INFO("stderr: " << result.err);
    REQUIRE(result.exit_code == 0);
    return result;
  }

  CliResult run(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--db", path_, "--now", now});
    return run_cli(args);
  }

 private:
  TempDir dir_;
  std::string path_;
};

void check_golden(const std::string& name, const std::string& actual) {
  INFO("golden file tests/cli/golden/" << name << " (JOBTRAIL_UPDATE_GOLDEN=1 rewrites it)");
  CHECK(actual == golden(name, actual));
}

/// No byte that a terminal acts on: C0 controls but newline, DEL, C1 controls (as UTF-8), and
/// no byte that is not part of valid UTF-8 (which could complete a sequence with what follows).
bool is_terminal_safe(const std::string& text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if ((byte < 0x20 && byte != '\n') || byte == 0x7F) return false;
    if (byte == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xA0) return false;
    if (byte == 0xFF || byte == 0xFE || byte == 0xC0 || byte == 0xC1) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("table columns line up in display width: CJK and emoji take two columns, marks none",
          "[cli][golden][terminal]") {
  const EmittedStore store;
  store.emit({"--job-id", "請求書-2026-12", "--state", "enqueued", "--job", "請求書ジョブ", "--queue", "メール",
              "--at", "2026-12-01T10:00:00Z"});
  store.emit({"--job-id", "party-🎉-1", "--state", "started", "--job", "PartyJob", "--queue", "fun",
              "--at", "2026-12-01T10:01:00Z"});
  // "cafe" with a combining acute accent: five code points, four columns.
  store.emit({"--job-id", "cafe\xcc\x81-1", "--state", "succeeded", "--job", "CafeJob", "--queue", "q",
              "--at", "2026-12-01T10:02:00Z"});
  store.emit({"--job-id", "plain-1", "--state", "failed", "--job", "PlainJob", "--queue", "default",
              "--at", "2026-12-01T10:03:00Z"});
  const CliResult ls = store.run({"ls"});
  REQUIRE(ls.exit_code == 0);
  check_golden("terminal_wide_ls.txt", ls.out);
}

TEST_CASE("hostile IDs and messages are escaped on every output path", "[cli][golden][terminal]") {
  const EmittedStore store;
  // The confirmation names the job.
  const CliResult recorded = store.emit({"--job-id", hostile_id, "--state", "failed", "--job", "Evil\x1b[5mJob",
                                         "--error", "boom\x1b]0;owned\x07", "--at", "2026-12-01T10:00:00Z"});
  CHECK(is_terminal_safe(recorded.out));
  CHECK(recorded.out == "recorded failed of job evil\\x1b]0;pwned\\x07\\x1b[2J-\\xc2\\x9b31m-id at "
                        "2026-12-01 10:00:00.000Z\n");
  // Tables.
  const CliResult ls = store.run({"ls"});
  CHECK(is_terminal_safe(ls.out));
  const CliResult show = store.run({"show", hostile_id});
  REQUIRE(show.exit_code == 0);
  CHECK(is_terminal_safe(show.out));
  check_golden("terminal_hostile_show.txt", show.out);
  // Error lines: an unknown ID, a bad option value, an unknown argument (CLI11's message).
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"show", hostile_id + "-missing"}, {"trace", hostile_id},
        {"ls", "--state", hostile_id}, {"ls", "--since", hostile_id}, {"show", "a", hostile_id}}) {
    const CliResult failed = store.run(args);
    INFO(args.front() << ": " << failed.err);
    CHECK(failed.exit_code != 0);
    CHECK(is_terminal_safe(failed.err));
    CHECK(failed.err.find("\\x1b]0;pwned\\x07") != std::string::npos);
  }
}

TEST_CASE("a multi-line error message or backtrace prints as lines, each escaped", "[cli][golden][terminal]") {
  const EmittedStore store;
  store.emit({"--job-id", "multi-1", "--state", "failed", "--job", "MultiJob",
              "--error", "first line\nsecond line\x1b[31m\n\tthird, tab-indented", "--error-class", "Multi::Error",
              "--backtrace", "app.rb:1:in `a'\n\tapp.rb:2:in `b'\x1b[0m\n", "--at", "2026-12-01T10:00:00Z"});
  const CliResult show = store.run({"show", "multi-1"});
  REQUIRE(show.exit_code == 0);
  CHECK(is_terminal_safe(show.out));
  check_golden("terminal_multiline_show.txt", show.out);
  const CliResult backtrace = store.run({"show", "multi-1", "--backtrace"});
  REQUIRE(backtrace.exit_code == 0);
  CHECK(is_terminal_safe(backtrace.out));
  check_golden("terminal_multiline_show_backtrace.txt", backtrace.out);
  // An error line quoting what the user typed stays one line: the newline is shown as \n.
  const CliResult missing = run_cli({"--db", "/nonexistent\n\x1b]0;x\x07/store.db", "ls"});
  CHECK(missing.exit_code == 3);
  CHECK(missing.err == "jobtrail: no jobtrail store at '/nonexistent\\n\\x1b]0;x\\x07/store.db' (check --db or "
                       "JOBTRAIL_DB)\n");
}

TEST_CASE("an output that cannot be written is an error, not a silent success", "[cli][terminal]") {
  const EmittedStore store;
  store.emit({"--job-id", "job-1", "--state", "enqueued", "--job", "AJob", "--at", "2026-12-01T10:00:00Z"});
  for (const char* format : {"table", "json"}) {
    INFO(format);
    const std::string command = "'" JOBTRAIL_CLI_PATH "' --db '" + store.path() + "' --format " + format +
                                " ls 2>&1 >/dev/full";
    FILE* pipe = popen(command.c_str(), "r");
    REQUIRE(pipe);
    std::string err;
    char buffer[512];
    while (const std::size_t got = std::fread(buffer, 1, sizeof buffer, pipe)) err.append(buffer, got);
    const int status = pclose(pipe);
    INFO(err);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 5);
    CHECK(err == (std::string(format) == "json"
                      ? "{\"error\":\"cannot write the output: No space left on device\",\"exit_code\":5}\n"
                      : "jobtrail: cannot write the output: No space left on device\n"));
  }
}

// --format csv: the tables' rows for export, RFC 4180, raw values, no formula and no escape
// sequence however hostile the IDs; colour for states on a terminal only; relative times.

namespace {

/// A store whose IDs and texts attack CSV: commas, quotes, newlines, formulas, escapes.
class HostileCsvStore : public EmittedStore {
 public:
  HostileCsvStore() {
    const std::string parent = "inv,1 \"quoted\"";
    const std::string trace = "req,\"x\"";
    emit({"--job-id", parent, "--state", "enqueued", "--job", "Csv,Job", "--queue", "billing", "--correlation-id", trace,
          "--at", "2026-12-01T10:00:00Z"});
    emit({"--job-id", parent, "--state", "started", "--job", "Csv,Job", "--worker", "w,1", "--at", "2026-12-01T10:00:01Z"});
    emit({"--job-id", parent, "--state", "succeeded", "--job", "Csv,Job", "--at", "2026-12-01T10:00:03.5Z"});
    const std::string formula = "=cmd|' /C calc'!A0";
    emit({"--job-id", formula, "--state", "enqueued", "--job", "@SUM(A1)", "--queue", "-q", "--correlation-id", trace,
          "--parent-id", parent, "--at", "2026-12-01T10:01:00Z"});
    emit({"--job-id", formula, "--state", "started", "--job", "@SUM(A1)", "--worker", "+w2", "--at",
          "2026-12-01T10:01:00.25Z"});
    emit({"--job-id", formula, "--state", "failed", "--job", "@SUM(A1)", "--worker", "+w2", "--error-class", "Evil::Error",
          "--error", "line one\nline two, \"quoted\"\r\nthird", "--backtrace", "a.rb:1\n\tb.rb:2", "--at",
          "2026-12-01T10:01:02Z"});
    emit({"--job-id", "multi\nline-id", "--state", "started", "--job", "MultiJob", "--at", "2026-12-01T10:02:00Z"});
    emit({"--job-id", hostile_id, "--state", "dead", "--job", "Evil\x1b[5mJob", "--error", "boom\x1b]0;owned\x07",
          "--at", "2026-12-01T10:03:00Z"});
  }
};

/// The records of an RFC 4180 text with LF line ends (a CR LF inside a quoted field is data).
/// Fails the test on a quote where none may be.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string field;
  bool quoted = false, was_quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c != '"') {
        field += c;
      } else if (i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else {
        quoted = false;
      }
      continue;
    }
    if (c == '"') {
      REQUIRE(field.empty());  // a quote opens a field or is doubled inside one
      REQUIRE_FALSE(was_quoted);
      quoted = was_quoted = true;
    } else if (c == ',' || c == '\n') {
      record.push_back(field);
      field.clear();
      was_quoted = false;
      if (c == '\n') {
        records.push_back(record);
        record.clear();
      }
    } else {
      REQUIRE_FALSE(was_quoted);  // nothing after a closing quote but a separator
      field += c;
    }
  }
  REQUIRE_FALSE(quoted);
  REQUIRE(field.empty());  // the text ends with a line end
  REQUIRE(record.empty());
  return records;
}

/// A CSV export: parses, every record has the header's fields, nothing a terminal acts on
/// but line breaks and tabs, and no field a spreadsheet takes for a formula.
void check_csv(const std::string& text, const std::string& first_field) {
  INFO(text);
  const auto records = parse_csv(text);
  REQUIRE(records.size() >= 2);
  CHECK(records.front().front() == first_field);
  for (const auto& record : records) {
    CHECK(record.size() == records.front().size());
    for (const std::string& field : record) {
      if (field.empty()) continue;
      const bool number = field.find_first_not_of("-0123456789.") == std::string::npos;
      CHECK((std::string("=+-@\t\r").find(field.front()) == std::string::npos || number));
    }
  }
  std::string without_line_breaks = text;
  std::erase(without_line_breaks, '\t');
  for (std::size_t at; (at = without_line_breaks.find("\r\n")) != std::string::npos;) without_line_breaks.erase(at, 1);
  CHECK(is_terminal_safe(without_line_breaks));
}

/// Runs `jobtrail ARGS` with stdout (and stdin, stderr) on a pseudo-terminal, as a person at a
/// terminal would, with TERM and NO_COLOR as given (unset when absent); what it printed.
std::string run_on_terminal(const std::vector<std::string>& args, const std::map<std::string, std::string>& environment) {
  std::vector<std::string> argv_storage{JOBTRAIL_CLI_PATH};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view name = std::string_view(*entry).substr(0, std::string_view(*entry).find('='));
    if (name != "TERM" && name != "NO_COLOR" && name != "JOBTRAIL_DB") env_storage.emplace_back(*entry);
  }
  for (const auto& [name, value] : environment) env_storage.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (std::string& entry : env_storage) envp.push_back(entry.data());
  envp.push_back(nullptr);

  int terminal = -1;
  const pid_t child = forkpty(&terminal, nullptr, nullptr, nullptr);
  REQUIRE(child >= 0);
  if (child == 0) {
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  std::string output;
  char buffer[4096];
  for (;;) {
    const ssize_t got = read(terminal, buffer, sizeof buffer);
    if (got > 0) {
      output.append(buffer, static_cast<std::size_t>(got));
    } else if (got < 0 && errno == EINTR) {
      continue;
    } else {
      break;  // EIO: the child closed the terminal's last writer
    }
  }
  close(terminal);
  int status = 0;
  while (waitpid(child, &status, 0) < 0) REQUIRE(errno == EINTR);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  return output;
}

bool has_escape(const std::string& text) { return text.find('\x1b') != std::string::npos; }

/// `text` without the SGR sequences colour adds.
std::string without_colour(std::string text) {
  for (std::size_t at; (at = text.find("\x1b[")) != std::string::npos;) text.erase(at, text.find('m', at) + 1 - at);
  return text;
}

}  // namespace

TEST_CASE("ls, stats, trace and show export CSV that hostile IDs cannot break", "[cli][golden][csv]") {
  const HostileCsvStore store;
  const auto csv_of = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--format", "csv"});
    const CliResult result = store.run(args);
    INFO("stderr: " << result.err);
    REQUIRE(result.exit_code == 0);
    CHECK(result.err.empty());
    return result.out;
  };
  const std::string ls = csv_of({"ls"});
  check_golden("csv_ls.csv", ls);
  check_csv(ls, "first_event_at");
  const std::string wide = csv_of({"ls", "--output", "wide"});
  check_golden("csv_ls_wide.csv", wide);
  check_csv(wide, "first_event_at");
  // The failed job's message is whole, its newlines (and CR LF) inside the quoted field.
  const auto records = parse_csv(wide);
  const auto failed = std::find_if(records.begin(), records.end(), [](const auto& r) { return r[4] == "failed"; });
  REQUIRE(failed != records.end());
  CHECK(failed->at(1) == "'=cmd|' /C calc'!A0");
  CHECK(failed->back() == "line one\nline two, \"quoted\"\r\nthird");

  const std::string stats = csv_of({"stats"});
  check_golden("csv_stats.csv", stats);
  check_csv(stats, "job");
  const std::string trace = csv_of({"trace", "req,\"x\""});
  check_golden("csv_trace.csv", trace);
  check_csv(trace, "job_id");
  const std::string show = csv_of({"show", "=cmd|' /C calc'!A0"});
  check_golden("csv_show.csv", show);
  check_csv(show, "job_id");
  CHECK(parse_csv(show).size() == 4);  // the header and three events, backtrace and all
}

TEST_CASE("CSV with nothing to list is its header; a partial page says so on stderr", "[cli][csv]") {
  const HostileCsvStore store;
  const CliResult none = store.run({"--format", "csv", "ls", "--state", "cancelled"});
  CHECK(none.exit_code == 0);
  CHECK(none.out == "first_event_at,job_id,job,queue,state,last_event_at,attempts,wait_us,wait_ongoing,run_us,"
                    "run_ongoing,anomalies\n");
  CHECK(none.err == "jobtrail: no jobs match\n");
  const CliResult page = store.run({"--format", "csv", "ls", "--limit", "1"});
  CHECK(page.exit_code == 0);
  CHECK(parse_csv(page.out).size() == 2);
  CHECK(page.err.rfind("jobtrail: showing 1 of 4 jobs; more: add --cursor ", 0) == 0);
}

TEST_CASE("commands that print no list refuse --format csv, naming themselves", "[cli][csv]") {
  const HostileCsvStore store;
  for (const std::string command : {"emit", "prune", "exec", "serve"}) {
    std::vector<std::string> args{"--format", "csv", command};
    if (command == "emit") args.insert(args.end(), {"--job-id", "x", "--state", "enqueued"});
    if (command == "prune") args.insert(args.end(), {"--older-than", "30d"});
    if (command == "exec") args.insert(args.end(), {"--job", "J", "--", "true"});
    const CliResult refused = store.run(args);
    INFO(command);
    CHECK(refused.exit_code == 2);
    CHECK(refused.out.empty());
    CHECK(refused.err == "jobtrail: " + command +
                             " prints no list: --format csv is for ls, stats, impact, trace, show (its events) and check "
                             "--history; use --format table or json\n");
  }
  CHECK(store.run({"show", "x,never-recorded"}).exit_code == 1);  // emit recorded nothing
  // check's own exit code for "could not run" is 3.
  const CliResult check = store.run({"--format", "csv", "check", "--config", "/nonexistent/checks.yaml"});
  CHECK(check.exit_code == 3);
  CHECK(check.err.find("check without --history prints no list") != std::string::npos);
  // trace --follow prints changes, not the tree's rows.
  const CliResult follow = store.run({"--format", "csv", "trace", "req,\"x\"", "--follow"});
  CHECK(follow.exit_code == 2);
  CHECK(follow.err == "jobtrail: trace --follow prints changes, not a table: use --format table or json\n");
  CHECK(follow.out.empty());
}

TEST_CASE("colour marks states and anomaly flags on a terminal, never on a pipe, json or csv",
          "[cli][golden][colour]") {
  const HostileCsvStore store;
  const CliResult plain = store.run({"--color", "never", "ls"});
  const CliResult always = store.run({"--color", "always", "ls"});
  REQUIRE(always.exit_code == 0);
  check_golden("colour_ls.txt", always.out);
  // Colour goes around the texts, outside the padding: take it away and the table is the same.
  CHECK(has_escape(always.out));
  CHECK(without_colour(always.out) == plain.out);
  CHECK(always.out.find("\x1b[1;31mdead\x1b[0m") != std::string::npos);
  CHECK(always.out.find("\x1b[31mfailed\x1b[0m") != std::string::npos);
  CHECK(always.out.find("\x1b[32msucceeded\x1b[0m") != std::string::npos);
  CHECK(always.out.find("\x1b[33mstarted\x1b[0m") != std::string::npos);
  // --colour is the same option.
  CHECK(store.run({"--colour", "always", "ls"}).out == always.out);
  // auto (the default) on a pipe: none.
  CHECK(store.run({"ls"}).out == plain.out);
  CHECK(store.run({"--color", "auto", "ls"}).out == plain.out);
  // Never for programs, even when asked.
  for (const char* format : {"json", "csv"}) {
    for (const std::string command : {"ls", "stats", "trace"}) {
      std::vector<std::string> args{"--color", "always", "--format", format, command};
      if (command == "trace") args.push_back("req,\"x\"");
      INFO(format << " " << command);
      CHECK_FALSE(has_escape(store.run(args).out));
    }
  }
  // show and trace colour their states too, stats its counts of failed jobs; the tables stay
  // the same without it.
  const std::pair<std::vector<std::string>, std::string> others[] = {
      {{"show", "=cmd|' /C calc'!A0"}, "\x1b[31mfailed\x1b[0m"},
      {{"trace", "req,\"x\""}, "\x1b[31mfailed\x1b[0m"},
      {{"stats"}, "\x1b[31m1\x1b[0m"}};
  for (const auto& [args, needle] : others) {
    std::vector<std::string> coloured{"--color", "always"}, uncoloured{"--color", "never"};
    coloured.insert(coloured.end(), args.begin(), args.end());
    uncoloured.insert(uncoloured.end(), args.begin(), args.end());
    const std::string with = store.run(coloured).out;
    INFO(args.front() << ": " << with);
    CHECK(with.find(needle) != std::string::npos);
    CHECK(without_colour(with) == store.run(uncoloured).out);
  }
  // A bad value is bad usage.
  CHECK(store.run({"--color", "sometimes", "ls"}).exit_code == 2);
}

TEST_CASE("colour auto: a terminal is coloured unless NO_COLOR is set and non-empty or TERM is dumb",
          "[cli][colour]") {
  const HostileCsvStore store;
  const std::vector<std::string> ls{"--db", store.path(), "--now", now, "ls"};
  CHECK(has_escape(run_on_terminal(ls, {{"TERM", "xterm-256color"}})));
  CHECK(has_escape(run_on_terminal(ls, {{"TERM", "xterm-256color"}, {"NO_COLOR", ""}})));
  CHECK_FALSE(has_escape(run_on_terminal(ls, {{"TERM", "xterm-256color"}, {"NO_COLOR", "1"}})));
  CHECK_FALSE(has_escape(run_on_terminal(ls, {{"TERM", "dumb"}})));
  CHECK_FALSE(has_escape(run_on_terminal(ls, {})));  // no TERM at all
  // The command line overrides the environment (no-color.org).
  std::vector<std::string> always{"--color", "always"};
  always.insert(always.end(), ls.begin(), ls.end());
  CHECK(has_escape(run_on_terminal(always, {{"TERM", "dumb"}, {"NO_COLOR", "1"}})));
  std::vector<std::string> never{"--color", "never"};
  never.insert(never.end(), ls.begin(), ls.end());
  CHECK_FALSE(has_escape(run_on_terminal(never, {{"TERM", "xterm-256color"}})));
}

TEST_CASE("ls and show say how long ago a job was last seen, as of --now", "[cli][golden][time]") {
  const EmittedStore store;
  store.emit({"--job-id", "stuck-1", "--state", "started", "--job", "StuckJob", "--at", "2026-12-01T03:58:00Z"});
  store.emit({"--job-id", "recent-1", "--state", "succeeded", "--job", "RecentJob", "--at", "2026-12-01T11:56:55Z"});
  store.emit({"--job-id", "now-1", "--state", "enqueued", "--job", "NowJob", "--at", "2026-12-01T11:59:59.5Z"});
  // A worker whose clock runs ahead: its event is five minutes after --now.
  store.emit({"--job-id", "ahead-1", "--state", "enqueued", "--job", "AheadJob", "--at", "2026-12-01T12:05:00Z"});
  const CliResult ls = store.run({"ls"});
  REQUIRE(ls.exit_code == 0);
  check_golden("relative_ls.txt", ls.out);
  CHECK(ls.out.find("8h02m ago") != std::string::npos);
  CHECK(ls.out.find("3m05s ago") != std::string::npos);
  CHECK(ls.out.find("just now") != std::string::npos);
  CHECK(ls.out.find("in 5m00s") != std::string::npos);
  const CliResult show = store.run({"show", "stuck-1"});
  REQUIRE(show.exit_code == 0);
  check_golden("relative_show.txt", show.out);
  CHECK(show.out.find("last event       2026-12-01 03:58:00.000Z (8h02m ago)\n") != std::string::npos);
  // Another --now, another answer: the times are relative to it, not to the clock.
  CHECK(run_cli({"--db", store.path(), "--now", "2026-12-01T04:00:00Z", "ls"}).out.find("  2m00s ago  ") !=
        std::string::npos);
  CHECK(run_cli({"--db", store.path(), "--now", "2026-12-01T03:59:00Z", "show", "stuck-1"})
            .out.find("(1m00s ago)") != std::string::npos);
}
