// Output a terminal and a pipe can trust: columns measured in display width, every byte an ID
// or a message brings escaped on every path (tables, confirmations, errors), multi-line errors
// as lines, write errors as errors. Stores are made with `jobtrail emit`, as a script would.

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "cli_runner.h"

using namespace jobtrail::cli_testing;

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
