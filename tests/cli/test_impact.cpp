// `jobtrail impact`, the blast radius: which entities the matching jobs touched, on the golden
// stories and on stores built for each shape (hostile and wide entity names, more entities than
// --limit, no match, untagged jobs), in both formats, and bad values for every flag. Golden
// files in tests/cli/golden/views (JOBTRAIL_UPDATE_GOLDEN=1 rewrites them).

#include <algorithm>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "shape_store.h"

using namespace jobtrail;
using namespace jobtrail::cli_testing;
using nlohmann::json;

namespace {

constexpr Micros t0 = 1'504'224'000'000'000;  // 2017-09-01T00:00:00Z, ten hours before golden_now
constexpr Micros second = 1'000'000;

Event tagged(std::string job_id, State state, Micros at, std::vector<std::string> entities,
             std::string job = "PaymentJob") {
  Event e;
  e.job_id = std::move(job_id);
  e.state = state;
  e.at = at;
  e.job = std::move(job);
  e.queue = "billing";
  e.attempt = 1;
  e.entities = std::move(entities);
  return e;
}

CliResult run(const std::string& store, std::vector<std::string> args) {
  return run_at_golden_now(store, std::move(args));
}

std::string output_of(const std::string& store, std::vector<std::string> args) {
  return view_output(store, std::move(args));
}

void check_golden(const std::string& name, const std::string& actual) { check_view_golden(name, actual); }

}  // namespace

TEST_CASE("impact names the entities failing jobs touched, with their jobs", "[cli][views][impact]") {
  const PreparedStore store;
  // The default window is the last 24h before --now: the welcome emails of 2017-08-30 are out.
  const std::string day = output_of(store.path(), {"impact"});
  check_golden("impact_day.txt", day);
  CHECK(day.rfind("jobs of any class in any state, first seen since 2017-08-31 10:03:00.000Z\n"
                  "10 jobs matched, 9 tagged with entities, 3 distinct entities (customer: 1, invoice: 1, user: 1)\n",
                  0) == 0);
  CHECK_FALSE(contains(day, "welcome-email-44"));  // 2017-08-30
  CHECK_FALSE(contains(day, "nightly-report"));     // matched, but tagged with nothing
  CHECK(contains(day, "jobtrail show export-acme-91; every job of an entity: jobtrail ls --entity customer:acme"));

  const std::string failures = output_of(store.path(), {"impact", "--state", "failed,dead", "--since", "7d"});
  check_golden("impact_failed_dead_7d.txt", failures);
  CHECK(contains(failures, "jobs of any class now failed or dead, first seen since 2017-08-25 10:03:00.000Z"));
  CHECK(contains(failures, "2 jobs matched, 2 tagged with entities, 2 distinct entities (invoice: 1, user: 1)"));
  CHECK(contains(failures, "welcome-email-44"));
  CHECK(contains(failures, "ledger-sync-2017-08"));

  const std::string json_text = output_of(store.path(), {"--format", "json", "impact", "--state", "failed,dead", "--since", "7d"});
  check_golden("impact_failed_dead_7d.json", json_text);
  CHECK(std::count(json_text.begin(), json_text.end(), '\n') == 1);
  const json document = json::parse(json_text);
  CHECK(document["filter"]["states"] == json::array({"failed", "dead"}));
  CHECK(document["filter"]["since"] == "2017-08-25T10:03:00.000000Z");
  CHECK(document["matching_jobs"] == 2);
  CHECK(document["by_type"] == json({{"invoice", 1}, {"user", 1}}));
  CHECK(document["entities"][0]["job_ids"].size() == 1);

  // One class, one type.
  const std::string charges = output_of(store.path(), {"impact", "--job", "ChargeCardJob", "--type", "customer"});
  CHECK(contains(charges, "ChargeCardJob jobs in any state"));
  CHECK(contains(charges, "1 job matched, 1 tagged with customer entities, 1 distinct entity (customer: 1)"));
  CHECK_FALSE(contains(charges, "invoice:2017-08"));
}

TEST_CASE("impact escapes hostile entity names and lines up wide ones", "[cli][views][impact][hostile]") {
  const ShapeStore store({tagged("pay-\x1b]0;title\x07", State::dead, t0, {"customer:\x1b[2Jacme", "invoice:7"}),
                          tagged("pay-2", State::failed, t0 + second, {"customer:\x1b[2Jacme", "user:田中"}),
                          tagged("pay-3", State::dead, t0 + 2 * second, {"customer:🙂", "note:a\r\nb"}),
                          tagged("evil-1", State::dead, t0, {"user:田中"}, "Evil\x1b]0;x\x07Job")});
  const std::string table = output_of(store.path(), {"impact", "--state", "failed,dead"});
  CHECK_FALSE(contains(table, "\x1b"));
  CHECK_FALSE(contains(table, "\r"));
  CHECK(contains(table, "customer:\\x1b[2Jacme"));
  // The hints name the first entity and job that can be pasted into a shell as they are.
  CHECK(contains(table, "a job's timeline: jobtrail show pay-2; every job of an entity: jobtrail ls --entity invoice:7"));
  check_golden("impact_hostile.txt", table);
  const std::string by_class = output_of(store.path(), {"impact", "--job", "Evil\x1b]0;x\x07Job"});
  CHECK_FALSE(contains(by_class, "\x1b"));
  CHECK(contains(by_class, "Evil\\x1b]0;x\\x07Job jobs in any state"));
  CHECK(contains(by_class, "jobtrail show evil-1; every job of an entity: jobtrail ls --entity TYPE:ID"));
  // JSON keeps the bytes, escaped the JSON way.
  const json document = json::parse(output_of(store.path(), {"--format", "json", "impact"}));
  CHECK(document["entities"][0]["entity"] == "customer:\x1b[2Jacme");
}

TEST_CASE("impact --format csv is a record per entity, quoted and safe for a spreadsheet", "[cli][views][impact][csv]") {
  const ShapeStore store({tagged("pay,1", State::dead, t0, {"customer:=HYPERLINK(x)", "invoice:7"}),
                          tagged("pay\"2", State::failed, t0 + second, {"customer:=HYPERLINK(x)"}),
                          tagged("pay-3", State::dead, t0 + 2 * second, {"note:a\nb"})});
  const std::string csv = output_of(store.path(), {"--format", "csv", "impact", "--state", "failed,dead"});
  // The records alone (no summary, no hints), fields as the JSON document names them; the IDs
  // newest first, space-separated; a line feed inside a quoted field is data.
  CHECK(csv ==
        "entity,type,jobs,first_at,last_at,job_ids,more_job_ids\n"
        "customer:=HYPERLINK(x),customer,2,2017-09-01T00:00:00.000000Z,2017-09-01T00:00:01.000000Z,"
        "\"pay\"\"2 pay,1\",0\n"
        "invoice:7,invoice,1,2017-09-01T00:00:00.000000Z,2017-09-01T00:00:00.000000Z,\"pay,1\",0\n"
        "\"note:a\nb\",note,1,2017-09-01T00:00:02.000000Z,2017-09-01T00:00:02.000000Z,pay-3,0\n");
  // Cut to one ID per entity: the others are counted.
  const std::string cut =
      output_of(store.path(), {"--format", "csv", "impact", "--jobs-per-entity", "1", "--type", "customer"});
  CHECK(contains(cut, ",\"pay\"\"2\",1\n"));
}

TEST_CASE("impact says when it lists only some entities or job IDs", "[cli][views][impact]") {
  std::vector<Event> events;
  // customer:0 has 6 jobs, the other customers 1 each; every job also names its invoice.
  for (int i = 0; i < 6; ++i) {
    events.push_back(tagged("pay-0-" + std::to_string(i), State::dead, t0 + i * second,
                            {"customer:0", "invoice:0-" + std::to_string(i)}));
  }
  for (int c = 1; c <= 4; ++c) {
    events.push_back(tagged("pay-" + std::to_string(c), State::failed, t0 + c * second, {"customer:" + std::to_string(c)}));
  }
  const ShapeStore store(events);
  const std::string table = output_of(store.path(), {"impact", "--limit", "3", "--jobs-per-entity", "2"});
  check_golden("impact_partial.txt", table);
  CHECK(contains(table, "10 jobs matched, 10 tagged with entities, 11 distinct entities (customer: 5, invoice: 6)"));
  CHECK(contains(table, "pay-0-5, pay-0-4, … 4 more"));
  CHECK(contains(table, "showing 3 of 11 entities; use --limit 11 to see them all"));
  CHECK(contains(table, "jobtrail show pay-0-5; every job of an entity: jobtrail ls --entity customer:0"));

  const json document = json::parse(output_of(store.path(), {"--format", "json", "impact", "--limit", "3", "--jobs-per-entity", "2"}));
  CHECK(document["entity_count"] == 11);
  CHECK(document["shown"] == 3);
  CHECK(document["entities"][0]["more_job_ids"] == 4);
  CHECK(document["entities"][0]["job_ids"] == json::array({"pay-0-5", "pay-0-4"}));

  const std::string complete = output_of(store.path(), {"impact", "--type", "customer"});
  CHECK_FALSE(contains(complete, "showing"));
  CHECK_FALSE(contains(complete, "--max-jobs"));

  // --max-jobs: the count stays exact, the rest is of the newest jobs (pay-0-5, pay-0-4, pay-4).
  const std::string newest = output_of(store.path(), {"impact", "--max-jobs", "3"});
  CHECK(contains(newest, "10 jobs matched; of the newest 3 read, 3 tagged with entities, 4 distinct entities "
                         "(customer: 2, invoice: 2)\n--max-jobs 0 reads them all\n"));
  const json bounded = json::parse(output_of(store.path(), {"--format", "json", "impact", "--max-jobs", "3"}));
  CHECK(bounded["matching_jobs"] == 10);
  CHECK(bounded["read_jobs"] == 3);
  CHECK(bounded["complete"] == false);
  CHECK(bounded["entities"][0]["entity"] == "customer:0");
  CHECK(bounded["entities"][0]["jobs"] == 2);
  CHECK_FALSE(contains(output_of(store.path(), {"impact", "--max-jobs", "10"}), "--max-jobs"));
  CHECK(contains(output_of(store.path(), {"impact", "--jobs-per-entity", "0", "--limit", "1"}), "… 6 more"));
}

TEST_CASE("impact with no match or no tags says so and exits 0", "[cli][views][impact]") {
  const ShapeStore store({tagged("pay-1", State::dead, t0, {}), tagged("pay-2", State::succeeded, t0, {"customer:1"}),
                          tagged("old-1", State::dead, t0 - 30 * 3600 * second, {"customer:9"})});
  const std::string none = output_of(store.path(), {"impact", "--job", "NoSuchJob"});
  CHECK(none ==
        "NoSuchJob jobs in any state, first seen since 2017-08-31 10:03:00.000Z\n"
        "0 jobs matched\n");
  const std::string untagged = output_of(store.path(), {"impact", "--state", "dead"});
  check_golden("impact_untagged.txt", untagged);
  CHECK(contains(untagged, "1 job matched, none tagged with entities\n"));
  CHECK(contains(untagged, "emit --entity"));
  // old-1 is 30 h old: outside the default window, inside an explicit one.
  CHECK(contains(output_of(store.path(), {"impact", "--state", "dead", "--since", "2d"}), "customer:9"));
  const json document = json::parse(output_of(store.path(), {"--format", "json", "impact", "--job", "NoSuchJob"}));
  CHECK(document["matching_jobs"] == 0);
  CHECK(document["entities"] == json::array());
  CHECK(document["by_type"] == json::object());
}

TEST_CASE("impact refuses bad flag values with exit 2", "[cli][views][impact]") {
  const ShapeStore store({tagged("pay-1", State::dead, t0, {"customer:1"})});
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"impact", "--state", "running"}, {"impact", "--state", "failed,,dead"},
        {"impact", "--state", "heartbeat"}, {"impact", "--since", "yesterday"}, {"impact", "--until", "2017-02-30"},
        {"impact", "--since", "1h", "--until", "2h"}, {"impact", "--until", "2017-08-01"}, {"impact", "--limit", "0"},
        {"impact", "--limit", "many"}, {"impact", "--jobs-per-entity", "101"}, {"impact", "--jobs-per-entity", "-1"},
        {"impact", "--type", "Customer"}, {"impact", "--type", "customer:1"},
        {"impact", "--max-jobs", "-1"}, {"impact", "--max-jobs", "100000001"}, {"impact", "--entity", "customer:1"}}) {
    const CliResult result = run(store.path(), args);
    INFO(args[1] << " " << (args.size() > 2 ? args[2] : ""));
    CHECK(result.exit_code == 2);
    CHECK(result.out.empty());
    CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  }
  const CliResult bad_state = run(store.path(), {"impact", "--state", "failed,running"});
  CHECK(bad_state.err ==
        "jobtrail: unknown job state 'running' in --state 'failed,running' (valid: enqueued, started, succeeded, "
        "failed, dead, cancelled; several comma-separated)\n");
  // The message ls gives for the same value: one reading of --state.
  CHECK(run(store.path(), {"ls", "--state", "failed,running"}).err == bad_state.err);
  const CliResult window = run(store.path(), {"impact", "--until", "2017-08-01"});
  CHECK(window.err ==
        "jobtrail: --until (2017-08-01T00:00:00Z) must be later than --since (2017-08-31T10:03:00Z; 24h ago unless "
        "given)\n");
  const CliResult hostile_type = run(store.path(), {"impact", "--type", "a\x1b[2J"});
  CHECK(hostile_type.exit_code == 2);
  CHECK(hostile_type.err == "jobtrail: bad --type 'a\\x1b[2J': expected an entity type like customer (a-z, 0-9, _ . -)\n");
  // With --format json the failure is one JSON object.
  const CliResult json_failure = run(store.path(), {"--format", "json", "impact", "--state", "running"});
  CHECK(json_failure.exit_code == 2);
  CHECK(json::parse(json_failure.err)["exit_code"] == 2);
  // A store that is not there: exit 3, and nothing created.
  const TempDir empty;
  CHECK(run(empty.file("missing.db"), {"impact"}).exit_code == 3);
  CHECK_FALSE(std::filesystem::exists(empty.file("missing.db")));
}

TEST_CASE("impact --help describes the flags, the default window and the exit codes", "[cli][views][impact]") {
  const CliResult help = run_cli({"impact", "--help"});
  CHECK(help.exit_code == 0);
  for (const char* part : {"--job CLASS", "--state STATE[,STATE...]", "--type TYPE", "(default 24h)", "--until TIME",
                           "--limit N", "--jobs-per-entity N", "GET /v1/impact", "Exit codes:"}) {
    INFO(part);
    CHECK(contains(help.out, part));
  }
  CHECK(contains(run_cli({"--help"}).out, "impact"));
}
