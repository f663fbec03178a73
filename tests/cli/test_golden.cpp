// Golden tests: a command line in, exact output out, for every read command in both formats.
// After a deliberate change: JOBTRAIL_UPDATE_GOLDEN=1 ./cli_tests '[golden]', then read the diff.

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "prepared_store.h"
#include "spawned_process.h"

using namespace jobtrail::cli_testing;
using jobtrail::testing::SpawnedProcess;

namespace {

/// Runs `jobtrail --db STORE --now GOLDEN_NOW args...` and checks it succeeded silently.
std::string output_of(const PreparedStore& store, std::vector<std::string> args) {
  args.insert(args.begin(), {"--db", store.path(), "--now", golden_now});
  const CliResult result = run_cli(args);
  INFO("stderr: " << result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(result.err.empty());
  return result.out;
}

/// Like output_of, but stderr (where ls says a page is partial) belongs to the answer too.
CliResult result_of(const PreparedStore& store, std::vector<std::string> args) {
  args.insert(args.begin(), {"--db", store.path(), "--now", golden_now});
  CliResult result = run_cli(args);
  REQUIRE(result.exit_code == 0);
  return result;
}

/// The cursor a partial page's note ends with ("... more: add --cursor X"), or its "next" in JSON.
std::string cursor_in(const std::string& note) {
  if (note.starts_with("{")) return nlohmann::json::parse(note).at("next").get<std::string>();
  const std::string marker = "--cursor ";
  const auto at = note.rfind(marker);
  REQUIRE(at != std::string::npos);
  std::string cursor = note.substr(at + marker.size());
  while (!cursor.empty() && cursor.back() == '\n') cursor.pop_back();
  return cursor;
}

void check_golden(const std::string& name, const std::string& actual) {
  INFO("golden file tests/cli/golden/" << name << " (JOBTRAIL_UPDATE_GOLDEN=1 rewrites it)");
  CHECK(actual == golden(name, actual));
}

}  // namespace

TEST_CASE("show prints a job's summary and timeline", "[cli][golden]") {
  const PreparedStore store;
  check_golden("show_welcome_email.txt", output_of(store, {"show", "welcome-email-42"}));
  check_golden("show_welcome_email_backtrace.txt", output_of(store, {"show", "welcome-email-42", "--backtrace"}));
  check_golden("show_welcome_email.json", output_of(store, {"--format", "json", "show", "welcome-email-42"}));
  check_golden("show_duplicate_payment.txt", output_of(store, {"show", "payment-2017-08-acme"}));
  check_golden("show_stuck_report.txt", output_of(store, {"show", "nightly-report-2017-08-31"}));
}

TEST_CASE("trace draws the tree of jobs one request caused", "[cli][golden]") {
  const PreparedStore store;
  check_golden("trace_month_close.txt", output_of(store, {"trace", "req-month-close-2017-08"}));
  check_golden("trace_month_close.json", output_of(store, {"--format", "json", "trace", "req-month-close-2017-08"}));
  check_golden("trace_signup.txt", output_of(store, {"trace", "req-signup-7f3a9c"}));
}

TEST_CASE("ls lists jobs newest first, filtered", "[cli][golden]") {
  const PreparedStore store;
  check_golden("ls.txt", output_of(store, {"ls"}));
  check_golden("ls.json", output_of(store, {"ls", "--format", "json"}));
  check_golden("ls_entity_user_42.txt", output_of(store, {"ls", "--entity", "user:42"}));
  check_golden("ls_anomalies.txt", output_of(store, {"ls", "--anomalies"}));
  check_golden("ls_dead_since.txt", output_of(store, {"ls", "--state", "dead", "--since", "12h"}));
  // Three jobs match, two are shown: the note on stderr says so (before cursors it did not).
  const CliResult window = result_of(store, {"ls", "--since", "2017-09-01", "--until", "2017-09-01T02:00:00Z", "--queue",
                                             "billing", "--limit", "2"});
  check_golden("ls_window.txt", window.out);
  check_golden("ls_window.err", window.err);
  check_golden("ls_failed_dead.txt", output_of(store, {"ls", "--state", "failed,dead"}));
  check_golden("ls_wide.txt", output_of(store, {"ls", "--output", "wide", "--state", "failed,dead,started"}));
}

TEST_CASE("ls says when a page is partial and how to get the next", "[cli][golden]") {
  const PreparedStore store;
  CliResult page = result_of(store, {"ls", "--limit", "4"});
  check_golden("ls_page_1.txt", page.out);
  check_golden("ls_page_1.err", page.err);
  page = result_of(store, {"ls", "--limit", "4", "--cursor", cursor_in(page.err)});
  check_golden("ls_page_2.txt", page.out);
  check_golden("ls_page_2.err", page.err);
  // Every job once: the last page says nothing more.
  for (int pages = 0; !page.err.empty() && pages < 10; ++pages) {
    page = result_of(store, {"ls", "--limit", "4", "--cursor", cursor_in(page.err)});
  }
  CHECK(page.err.empty());
  CHECK_FALSE(page.out.empty());

  // JSON: the jobs on stdout as always, the page on stderr as GET /v1/jobs answers it.
  page = result_of(store, {"--format", "json", "ls", "--limit", "2", "--state", "failed,dead,succeeded"});
  check_golden("ls_page_1.json", page.out);
  check_golden("ls_page_1_json.err", page.err);
  page = result_of(store, {"--format", "json", "ls", "--limit", "2", "--state", "failed,dead,succeeded", "--cursor",
                           cursor_in(page.err)});
  check_golden("ls_page_2.json", page.out);
}

TEST_CASE("stats summarises each job class", "[cli][golden]") {
  const PreparedStore store;
  check_golden("stats.txt", output_of(store, {"stats"}));
  check_golden("stats.json", output_of(store, {"stats", "--format", "json"}));
  check_golden("stats_since.txt", output_of(store, {"stats", "--since", "2017-09-01T01:00:00Z"}));
}

TEST_CASE("ls --follow prints a job recorded before it started when that job changes state", "[cli]") {
  // Issue 13: `ls --state failed --follow` watched only jobs it printed or saw arrive, so a job
  // already running when it started never showed when it failed.
  const PreparedStore store;
  const auto emit = [&](std::vector<std::string> emit_args) {
    emit_args.insert(emit_args.begin(), {"--db", store.path(), "emit"});
    REQUIRE(run_cli(emit_args).exit_code == 0);
  };
  emit({"--job-id", "running-before", "--state", "started", "--job", "LongJob"});
  const TempDir capture;
  const std::string out_path = capture.file("stdout"), err_path = capture.file("stderr");
  SpawnedProcess follower({JOBTRAIL_CLI_PATH, "--db", store.path(), "--format", "json", "ls", "--follow", "--state",
                           "failed", "--limit", "1", "--interval", "100ms"},
                          out_path, err_path);
  const auto lines = [&]() {
    std::vector<nlohmann::json> printed;
    std::istringstream text(read_file(out_path));
    for (std::string line; std::getline(text, line);) printed.push_back(nlohmann::json::parse(line));
    return printed;
  };
  const auto wait_for_lines = [&](std::size_t count) {
    for (int i = 0; i < 100 && lines().size() < count; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return lines().size() >= count;
  };
  CHECK(wait_for_lines(1));  // the first page: the newest failed job
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  emit({"--job-id", "running-before", "--state", "failed", "--job", "LongJob", "--error", "out of memory"});
  CHECK(wait_for_lines(2));
  // Another change of a job it never printed, which does not match: not printed.
  emit({"--job-id", "welcome-email-44", "--state", "succeeded"});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  follower.signal(SIGINT);
  CHECK(follower.wait() == 0);
  const auto printed = lines();
  REQUIRE(printed.size() == 2);  // its row once, as it is now
  CHECK(printed[1].at("job_id") == "running-before");
  CHECK(printed[1].at("state") == "failed");
  CHECK(printed[1].at("last_error").at("message") == "out of memory");
  CHECK(read_file(err_path).empty());
}

TEST_CASE("ls --follow prints jobs as they land and changes of those it saw, until SIGINT", "[cli]") {
  const PreparedStore store;
  const TempDir capture;
  const std::string out_path = capture.file("stdout"), err_path = capture.file("stderr");
  SpawnedProcess follower({JOBTRAIL_CLI_PATH, "--db", store.path(), "ls", "--follow", "--state", "failed,dead",
                           "--limit", "1", "--interval", "100ms"},
                          out_path, err_path);
  const auto wait_for = [&](const std::string& text) {
    for (int i = 0; i < 100 && read_file(out_path).find(text) == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return read_file(out_path).find(text) != std::string::npos;
  };
  // The newest failed or dead job first, then what lands: a job that arrives enqueued shows
  // when it fails; one that stays enqueued never does.
  CHECK(wait_for("ledger-sync-2017-08"));
  const auto emit = [&](std::vector<std::string> emit_args) {
    emit_args.insert(emit_args.begin(), {"--db", store.path(), "emit"});
    REQUIRE(run_cli(emit_args).exit_code == 0);
  };
  emit({"--job-id", "follow-1", "--state", "enqueued", "--job", "FollowJob"});
  emit({"--job-id", "follow-quiet", "--state", "enqueued", "--job", "FollowJob"});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  emit({"--job-id", "follow-1", "--state", "failed", "--job", "FollowJob", "--error", "boom"});
  emit({"--job-id", "follow-2", "--state", "dead", "--job", "FollowJob"});
  CHECK(wait_for("follow-1"));
  CHECK(wait_for("follow-2"));
  follower.signal(SIGINT);
  CHECK(follower.wait() == 0);
  const std::string out = read_file(out_path);
  CHECK(out.find("follow-quiet") == std::string::npos);
  CHECK(out.rfind("FIRST SEEN", 0) == 0);
  CHECK(out.find("FIRST SEEN", 1) == std::string::npos);  // one header, however many batches
  CHECK(read_file(err_path).empty());
}

TEST_CASE("ls --follow --format csv prints its header at once, then each job's row as it lands", "[cli][csv]") {
  const PreparedStore store;
  const TempDir capture;
  const std::string out_path = capture.file("stdout"), err_path = capture.file("stderr");
  // No job matches at first: the header alone says what the columns are.
  SpawnedProcess follower({JOBTRAIL_CLI_PATH, "--db", store.path(), "--format", "csv", "ls", "--follow", "--job",
                           "CsvFollowJob", "--interval", "100ms"},
                          out_path, err_path);
  const std::string header =
      "first_event_at,job_id,job,queue,state,last_event_at,attempts,wait_us,wait_ongoing,run_us,run_ongoing,anomalies\n";
  const auto wait_for = [&](const std::string& text) {
    for (int i = 0; i < 100 && read_file(out_path).find(text) == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return read_file(out_path).find(text) != std::string::npos;
  };
  CHECK(wait_for(header));
  const auto emit = [&](std::vector<std::string> emit_args) {
    emit_args.insert(emit_args.begin(), {"--db", store.path(), "emit", "--job", "CsvFollowJob"});
    REQUIRE(run_cli(emit_args).exit_code == 0);
  };
  emit({"--job-id", "csv,follow-1", "--state", "enqueued", "--at", "2017-09-01T10:00:00Z"});
  CHECK(wait_for("\"csv,follow-1\",CsvFollowJob,,enqueued,"));
  emit({"--job-id", "=csv-follow-2", "--state", "started", "--at", "2017-09-01T10:00:01Z"});
  CHECK(wait_for("'=csv-follow-2,CsvFollowJob,,started,"));
  emit({"--job-id", "csv,follow-1", "--state", "failed", "--at", "2017-09-01T10:00:02Z"});
  CHECK(wait_for("\"csv,follow-1\",CsvFollowJob,,failed,"));
  follower.signal(SIGINT);
  CHECK(follower.wait() == 0);
  const std::string out = read_file(out_path);
  INFO(out);
  CHECK(out.rfind(header, 0) == 0);
  CHECK(out.find(header, 1) == std::string::npos);  // one header, however many batches
  CHECK(std::count(out.begin(), out.end(), '\n') == 4);
  CHECK(read_file(err_path).empty());
}
