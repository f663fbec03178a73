// The on-call views on stores built for each shape: every anomaly of a job with the other job,
// show by ID prefix, traces with parents elsewhere, self-parents, cycles, deep chains and
// hostile IDs, trace --follow, stats by queue, prune --dry-run and the space given back,
// impact, help. Golden files in tests/cli/golden/views (JOBTRAIL_UPDATE_GOLDEN=1 rewrites them).

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "shape_store.h"

using namespace jobtrail;
using namespace jobtrail::cli_testing;

namespace {

constexpr Micros t0 = 1'504'224'000'000'000;  // 2017-09-01T00:00:00Z
constexpr Micros second = 1'000'000;

Event event(std::string job_id, State state, Micros at, std::string correlation = "", std::string parent = "",
            std::string job = "ChargeJob", std::string queue = "billing") {
  Event e;
  e.job_id = std::move(job_id);
  e.state = state;
  e.at = at;
  e.job = std::move(job);
  e.queue = std::move(queue);
  e.correlation_id = std::move(correlation);
  e.parent_job_id = std::move(parent);
  e.attempt = 1;
  return e;
}

CliResult run(const ShapeStore& store, std::vector<std::string> args) {
  return run_at_golden_now(store.path(), std::move(args));
}

std::string output_of(const ShapeStore& store, std::vector<std::string> args) {
  return view_output(store.path(), std::move(args));
}

void check_golden(const std::string& name, const std::string& actual) { check_view_golden(name, actual); }

std::size_t longest_line(const std::string& text) {
  std::size_t longest = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) longest = std::max(longest, line.size());
  return longest;
}

}  // namespace

TEST_CASE("show lists every anomaly of a job with the other job", "[cli][views]") {
  // charge-a succeeds twice; charge-b then succeeds under the same key: charge-a is flagged
  // twice, the second time on charge-b's record.
  auto first = event("charge-a", State::succeeded, t0);
  first.idempotency_key = "invoice-7";
  auto again = event("charge-a", State::succeeded, t0 + second);
  auto other = event("charge-b", State::succeeded, t0 + 2 * second);
  other.idempotency_key = "invoice-7";
  const ShapeStore store({first, again, other});
  const std::string table = output_of(store, {"show", "charge-a"});
  CHECK(contains(table, "duplicate_success at 2017-09-01 00:00:01.000Z (succeeded 2 times)"));
  CHECK(contains(table, "duplicate_idempotency_key at 2017-09-01 00:00:02.000Z, job charge-b succeeded again under its key (invoice-7)"));
  check_golden("show_two_anomalies.txt", table);
  const std::string json = output_of(store, {"--format", "json", "show", "charge-a"});
  CHECK(contains(json, R"("kind":"duplicate_idempotency_key","at":"2017-09-01T00:00:02.000000Z","other_job_id":"charge-b")"));
  CHECK(contains(output_of(store, {"show", "charge-b"}), "like job charge-a (invoice-7)"));
}

TEST_CASE("show finds a job by a unique prefix of its ID and names candidates", "[cli][views]") {
  const ShapeStore store({event("welcome-email-41", State::succeeded, t0), event("welcome-email-42", State::failed, t0),
                          event("5f2b9c0e11aa", State::succeeded, t0), event("5f2b9c0e22bb", State::succeeded, t0),
                          event("payment-\x1b]0;pwned\x07-1", State::succeeded, t0)});
  CHECK(contains(output_of(store, {"show", "welcome-email-42"}), "welcome-email-42"));
  const std::string by_prefix = output_of(store, {"show", "5f2b9c0e1"});
  CHECK(contains(by_prefix, "job ID           5f2b9c0e11aa"));

  const CliResult ambiguous = run(store, {"show", "welcome-"});
  CHECK(ambiguous.exit_code == 1);
  CHECK(ambiguous.out.empty());
  CHECK(ambiguous.err ==
        "jobtrail: job ID 'welcome-' is ambiguous: 'welcome-email-41', 'welcome-email-42' start with it; give more "
        "of the ID\n");
  const CliResult hex_ambiguous = run(store, {"show", "5f2b"});
  CHECK(hex_ambiguous.err == "jobtrail: job ID '5f2b' is ambiguous: '5f2b9c0e11aa', '5f2b9c0e22bb' start with it; give more of the ID\n");

  const CliResult typo = run(store, {"show", "welcome-email-43"});
  CHECK(typo.exit_code == 1);
  CHECK(typo.err == "jobtrail: no job with ID 'welcome-email-43'; did you mean 'welcome-email-41', 'welcome-email-42'?\n");
  const CliResult nothing_like_it = run(store, {"show", "zzz"});
  CHECK(nothing_like_it.err == "jobtrail: no job with ID 'zzz' (jobtrail ls lists the recorded ones)\n");
  // A hostile ID is escaped in the suggestion, never sent to the terminal raw.
  const CliResult hostile = run(store, {"show", "payment-\x1b]0;pwneX"});
  CHECK(hostile.err == "jobtrail: no job with ID 'payment-\\x1b]0;pwneX'; did you mean 'payment-\\x1b]0;pwned\\x07-1'?\n");
  CHECK_FALSE(contains(hostile.err, "\x1b"));
}

TEST_CASE("trace links a parent in another trace and flags self-parents", "[cli][views]") {
  const ShapeStore store({event("nightly-batch", State::succeeded, t0, "req-cron-1", "", "BatchJob"),
                          event("export-1", State::succeeded, t0 + second, "req-export-9", "nightly-batch", "ExportJob"),
                          event("export-2", State::failed, t0 + 2 * second, "req-export-9", "export-2", "ExportJob"),
                          event("orphan", State::dead, t0 + 3 * second, "req-export-9", "never-seen", "ExportJob"),
                          event("no-trace-parent", State::succeeded, t0, "", "", "AdminJob"),
                          event("export-3", State::succeeded, t0 + 4 * second, "req-export-9", "no-trace-parent", "ExportJob")});
  const std::string table = output_of(store, {"trace", "req-export-9"});
  CHECK(contains(table, "parent nightly-batch is in trace req-cron-1 (jobtrail trace req-cron-1)"));
  CHECK(contains(table, "its own parent"));
  CHECK_FALSE(contains(table, "parent export-2 not recorded"));
  CHECK(contains(table, "parent never-seen not recorded"));
  CHECK(contains(table, "parent no-trace-parent has no trace (jobtrail show no-trace-parent)"));
  check_golden("trace_parents_elsewhere.txt", table);
  check_golden("trace_parents_elsewhere.json", output_of(store, {"--format", "json", "trace", "req-export-9"}));
}

TEST_CASE("trace flags a parent cycle and draws each job once", "[cli][views]") {
  // a's parent is b, b's parent is c, c's parent is a; d hangs off b; root-1 is a normal root.
  const ShapeStore store({event("root-1", State::succeeded, t0, "req-loop", "", "RootJob"),
                          event("cycle-a", State::succeeded, t0 + second, "req-loop", "cycle-b"),
                          event("cycle-b", State::succeeded, t0 + 2 * second, "req-loop", "cycle-c"),
                          event("cycle-c", State::succeeded, t0 + 3 * second, "req-loop", "cycle-a"),
                          event("leaf-d", State::succeeded, t0 + 4 * second, "req-loop", "cycle-b")});
  const std::string table = output_of(store, {"trace", "req-loop"});
  CHECK(contains(table, "parent cycle cycle-a → cycle-b → cycle-c → cycle-a"));
  // Header, five jobs (each drawn once), a blank line and the summary.
  CHECK(std::count(table.begin(), table.end(), '\n') == 8);
  CHECK(table.find("leaf-d") == table.rfind("leaf-d"));
  check_golden("trace_cycle.txt", table);
}

TEST_CASE("a deep chain is drawn with a bounded indent and --depth/--width collapse it", "[cli][views]") {
  std::vector<Event> chain;
  for (int i = 0; i < 2000; ++i) {
    chain.push_back(event("step-" + std::to_string(i), State::succeeded, t0 + i * 1000, "req-deep",
                          i == 0 ? "" : "step-" + std::to_string(i - 1), "StepJob"));
  }
  // A wide level under step-0 too.
  for (int i = 0; i < 30; ++i) {
    chain.push_back(event("fan-" + std::to_string(i), State::succeeded, t0 + 5000 * second + i, "req-deep", "step-0",
                          "FanJob"));
  }
  const ShapeStore store(chain);
  const std::string full = output_of(store, {"trace", "req-deep"});
  // Before: every line padded to 6,000 columns, 12 MB. Now the indent stops growing at 16.
  CHECK(full.size() < 400'000);
  CHECK(longest_line(full) < 160);
  CHECK(contains(full, "[1999] └─ step-1999"));
  const std::string collapsed = output_of(store, {"trace", "req-deep", "--depth", "3", "--width", "2"});
  check_golden("trace_deep_collapsed.txt", collapsed);
  CHECK(contains(collapsed, "… 1996 jobs below not shown"));
  CHECK(contains(collapsed, "… 29 jobs below not shown"));
  const std::string json = output_of(store, {"--format", "json", "trace", "req-deep", "--depth", "0"});
  CHECK(std::count(json.begin(), json.end(), '\n') == 1);
  CHECK(contains(json, R"("hidden_below":2029)"));
  std::vector<Event> short_chain(chain.begin(), chain.begin() + 20);
  for (auto& e : short_chain) {
    e.correlation_id = "req-20";
    e.job_id = "s" + e.job_id;
    if (!e.parent_job_id.empty()) e.parent_job_id = "s" + e.parent_job_id;
  }
  store.append(short_chain);
  check_golden("trace_chain_20.txt", output_of(store, {"trace", "req-20"}));
}

TEST_CASE("trace escapes hostile IDs", "[cli][views]") {
  const ShapeStore store({event("job-\x1b]0;title\x07", State::succeeded, t0, "req-\x1b[2J", "", "Evil\nJob"),
                          event("child\r\n", State::failed, t0 + second, "req-\x1b[2J", "job-\x1b]0;title\x07"),
                          event("kid", State::failed, t0 + second, "req-\x1b[2J", "gone-\x1b[31m")});
  const std::string table = output_of(store, {"trace", "req-\x1b[2J"});
  CHECK_FALSE(contains(table, "\x1b"));
  CHECK_FALSE(contains(table, "\r"));
  check_golden("trace_hostile.txt", table);
  const CliResult missing = run(store, {"trace", "req-\x1b[0m"});
  CHECK(missing.err == "jobtrail: no jobs with correlation ID 'req-\\x1b[0m'\n");
}

TEST_CASE("trace --follow prints jobs as they land", "[cli][views]") {
  const ShapeStore store({event("first-job", State::enqueued, t0, "req-live")});
  const TempDir capture;
  const std::string out = capture.file("out"), err = capture.file("err");
  // SIGINT after 4 s, as Ctrl-C would: the output so far must be there.
  const std::string command = std::string("timeout -s INT 4 ") + JOBTRAIL_CLI_PATH + " --db " + store.path() +
                              " trace req-live --follow > " + out + " 2> " + err;
  std::thread follower([&command]() { (void)std::system(command.c_str()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  store.append({event("first-job", State::started, t0 + second, "req-live"),
                event("second-job", State::enqueued, t0 + 2 * second, "req-live", "first-job")});
  follower.join();
  const std::string printed = read_file(out);
  INFO(printed << read_file(err));
  CHECK(contains(printed, "first-job"));
  CHECK(contains(printed, "following: a line per job that appears or changes (Ctrl-C stops)"));
  CHECK(contains(printed, "first-job  ChargeJob  enqueued → started  attempt 1"));
  CHECK(contains(printed, "second-job  ChargeJob  new, enqueued  attempt 1"));
}

TEST_CASE("the new trace flags refuse bad values", "[cli][views]") {
  const ShapeStore store({event("a", State::succeeded, t0, "req-1")});
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"trace", "req-1", "--depth", "-1"}, {"trace", "req-1", "--depth", "deep"},
        {"trace", "req-1", "--width", "0"}, {"trace", "req-1", "--width", "1.5"}}) {
    const CliResult result = run(store, args);
    INFO(args[2] << " " << (args.size() > 3 ? args[3] : ""));
    CHECK(result.exit_code == 2);
    CHECK(result.out.empty());
    CHECK(contains(result.err, "jobtrail trace --help"));
  }
}

TEST_CASE("stats groups by queue and takes --until and --job", "[cli][views]") {
  const ShapeStore store({event("c-1", State::succeeded, t0, "", "", "ChargeJob", "billing"),
                          event("c-2", State::failed, t0 + 10 * second, "", "", "ChargeJob", "urgent"),
                          event("e-1", State::succeeded, t0 + 20 * second, "", "", "EmailJob", "mailers")});
  const std::string by_queue = output_of(store, {"stats", "--by", "queue"});
  check_golden("stats_by_queue.txt", by_queue);
  CHECK(by_queue.rfind("QUEUE ", 0) == 0);
  const std::string json = output_of(store, {"--format", "json", "stats", "--by", "queue", "--job", "ChargeJob"});
  CHECK(std::count(json.begin(), json.end(), '\n') == 2);
  CHECK(contains(json, R"({"queue":"billing","total":1)"));
  const std::string window = output_of(store, {"stats", "--since", "2017-09-01T00:00:05Z", "--until", "2017-09-01T00:00:15Z"});
  CHECK(contains(window, "ChargeJob"));
  CHECK_FALSE(contains(window, "EmailJob"));
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"stats", "--by", "worker"}, {"stats", "--until", "yesterday-ish"},
        {"stats", "--since", "2017-09-02", "--until", "2017-09-01"}}) {
    const CliResult result = run(store, args);
    INFO(args[1] << " " << args[2]);
    CHECK(result.exit_code == 2);
    CHECK(result.out.empty());
  }
}
