// One contract: every read of the HTTP API answers the very JSON documents `jobtrail ... --format
// json` prints for the same store, compared field by field over a real HTTP client and the
// real binary.

#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "jobtrail/server.h"
#include "jobtrail/store.h"
#include "running_server.h"
#include "spawned_process.h"
#include "temp_dir.h"

using namespace jobtrail;
using nlohmann::json;

namespace {

using jobtrail::testing::RunningServer;
using jobtrail::testing::SpawnedProcess;
using jobtrail::testing::TempDir;

constexpr Micros t0 = 1'790'000'000'000'000;
constexpr Micros second = 1'000'000;

struct CliAnswer {
  int exit_code = -1;
  std::string out, err;
};

CliAnswer run_cli(const TempDir& dir, std::vector<std::string> args) {
  args.insert(args.begin(), JOBTRAIL_CLI_PATH);
  SpawnedProcess cli(std::move(args), dir.file("cli.out"), dir.file("cli.err"));
  const int exit_code = cli.wait();
  return {exit_code, cli.out(), cli.err()};
}

std::vector<json> json_lines(const std::string& text) {
  std::vector<json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  return lines;
}

Event event(std::string job_id, State state, Micros at) {
  Event e;
  e.job_id = std::move(job_id);
  e.state = state;
  e.at = at;
  e.job = "ChargeJob";
  e.queue = "billing";
  e.attempt = 1;
  e.worker = "billing-1:77";
  return e;
}

/// A store with every shape a read can show: a trace with a parent, entities, an error with
/// a backtrace, a retried job, a duplicate success (an anomaly with its other job), a job
/// still running and one still waiting.
void fill(const std::string& url) {
  auto store = open_store(url);
  std::vector<Event> events;
  auto root = event("invoice-1", State::enqueued, t0);
  root.correlation_id = "req-1";
  root.entities = {"customer:acme", "invoice:1"};
  events.push_back(root);
  for (State state : {State::started, State::succeeded}) {
    auto e = root;
    e.state = state;
    e.at += state == State::started ? second : 3 * second;
    events.push_back(e);
  }
  auto pay = event("pay-1", State::enqueued, t0 + 4 * second);
  pay.correlation_id = "req-1";
  pay.parent_job_id = "invoice-1";
  pay.idempotency_key = "charge:1";
  pay.entities = {"customer:acme"};
  events.push_back(pay);
  auto failed = pay;
  failed.state = State::failed;
  failed.at += second;
  failed.error = {"Stripe::CardError", "card declined\nsecond line", "app/pay.rb:1\napp/run.rb:2"};
  events.push_back(failed);
  for (int attempt = 2; attempt <= 3; ++attempt) {
    auto done = pay;
    done.state = State::succeeded;
    done.attempt = attempt;
    done.at += attempt * 2 * second;
    events.push_back(done);  // the second success is a duplicate: flagged
  }
  auto twin = event("pay-1-again", State::succeeded, t0 + 9 * second);
  twin.idempotency_key = "charge:1";  // a second job succeeding under the same key
  events.push_back(twin);
  events.push_back(event("running-1", State::started, t0 + 10 * second));
  events.push_back(event("waiting-1", State::enqueued, t0 + 11 * second));
  auto dead = event("dead-1", State::dead, t0 + 12 * second);
  dead.job = "LedgerJob";
  events.push_back(dead);
  store->append(events);
}

/// The ongoing spans grow with the clock, and the CLI and the server read it a moment apart:
/// both must mark them ongoing, then the measured values are left out of the comparison.
json without_growing_spans(json document) {
  const auto drop = [](json& job) {
    for (const char* span : {"wait", "run"}) {
      if (job.value(std::string(span) + "_ongoing", false)) {
        REQUIRE(job[std::string(span) + "_us"].is_number());
        job.erase(std::string(span) + "_us");
      }
    }
  };
  if (document.is_array()) {
    for (json& job : document) drop(job);
  } else {
    drop(document);
  }
  return document;
}

struct Contract {
  // A store filled before the server opens it, so both readers see the same jobs.
  RunningServer running{ServerOptions{}, [](const std::string& url) { fill(url); }};
  const TempDir& dir = running.dir;
  const std::string& store_url = running.store_url;
  const int port = running.port;

  json http(const std::string& path) {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(10, 0);
    const auto result = client.Get(path);
    REQUIRE(result);
    INFO(path << ": " << result->body);
    REQUIRE(result->status == 200);
    return json::parse(result->body);
  }
  CliAnswer cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--db", store_url, "--format", "json"});
    CliAnswer answer = run_cli(dir, args);
    INFO("stderr: " << answer.err);
    REQUIRE(answer.exit_code == 0);
    return answer;
  }
};

}  // namespace

TEST_CASE("GET /v1/jobs/ID is show --format json", "[server][contract]") {
  Contract contract;
  for (const char* job_id : {"invoice-1", "pay-1", "pay-1-again", "running-1", "waiting-1", "dead-1"}) {
    INFO(job_id);
    const json shown = json::parse(contract.cli({"show", job_id}).out);
    const json answered = contract.http(std::string("/v1/jobs/") + job_id);
    CHECK(without_growing_spans(answered) == without_growing_spans(shown));
  }
  // The fields the API used to leave out are there.
  const json pay = contract.http("/v1/jobs/pay-1");
  // Its own flag and the one pay-1-again carries naming it (show lists both sides of a pair).
  CHECK(pay["anomaly_records"].size() == 2);
  CHECK(contract.http("/v1/jobs/pay-1-again")["anomaly_records"][0]["other_job_id"] == "pay-1");
  CHECK(pay["events"][0].contains("offset_us"));
  CHECK(pay["entities"] == json::array({"customer:acme"}));
  const json running = contract.http("/v1/jobs/running-1");
  CHECK(running["run_ongoing"] == true);
  CHECK(running["run_us"].get<Micros>() > 0);
}

TEST_CASE("GET /v1/traces/ID is trace --format json", "[server][contract]") {
  Contract contract;
  const std::vector<json> lines = json_lines(contract.cli({"trace", "req-1"}).out);
  const json answered = contract.http("/v1/traces/req-1");
  CHECK(answered["correlation_id"] == "req-1");
  CHECK(without_growing_spans(answered["jobs"]) == without_growing_spans(json(lines)));
  REQUIRE(lines.size() == 2);
  CHECK(lines[1]["depth"] == 1);
  CHECK(lines[0]["entities"] == json::array({"customer:acme", "invoice:1"}));
}

TEST_CASE("GET /v1/jobs is ls --format json, page by page", "[server][contract]") {
  Contract contract;
  const std::vector<std::pair<std::vector<std::string>, std::string>> reads = {
      {{"ls"}, "/v1/jobs"},
      {{"ls", "--state", "failed,dead,succeeded"}, "/v1/jobs?state=failed,dead,succeeded"},
      {{"ls", "--entity", "customer:acme"}, "/v1/jobs?entity=customer:acme"},
      {{"ls", "--job", "ChargeJob", "--queue", "billing", "--anomalies"},
       "/v1/jobs?job=ChargeJob&queue=billing&anomalies=true"},
  };
  for (const auto& [args, path] : reads) {
    INFO(path);
    const CliAnswer listed = contract.cli(args);
    const json answered = contract.http(path);
    CHECK(without_growing_spans(answered["jobs"]) == without_growing_spans(json(json_lines(listed.out))));
    CHECK(answered["next"].is_null());
    CHECK(listed.err.empty());
  }
  // Partial pages: the page object on the CLI's stderr is the one beside "jobs", and so is
  // each next page.
  std::string cli_cursor, http_cursor;
  std::size_t seen = 0;
  for (int page = 0; page < 10; ++page) {
    std::vector<std::string> args{"ls", "--limit", "2"};
    std::string path = "/v1/jobs?limit=2";
    if (!cli_cursor.empty()) {
      args.insert(args.end(), {"--cursor", cli_cursor});
      path += "&cursor=" + http_cursor;
    }
    const CliAnswer listed = contract.cli(args);
    json answered = contract.http(path);
    CHECK(without_growing_spans(answered["jobs"]) == without_growing_spans(json(json_lines(listed.out))));
    seen += answered["jobs"].size();
    answered.erase("jobs");
    if (answered["next"].is_null()) {
      CHECK(listed.err.empty());
      break;
    }
    CHECK(json::parse(listed.err) == answered);
    cli_cursor = json::parse(listed.err)["next"];
    http_cursor = answered["next"];
  }
  CHECK(seen == 6);
}

TEST_CASE("GET /v1/stats is stats --format json", "[server][contract]") {
  Contract contract;
  CHECK(contract.http("/v1/stats")["stats"] == json(json_lines(contract.cli({"stats"}).out)));
  const std::string since = "2026-09-21T14:13:29Z";  // between the first jobs and the rest
  CHECK(contract.http("/v1/stats?since=" + since)["stats"] == json(json_lines(contract.cli({"stats", "--since", since}).out)));
  CHECK(contract.http("/v1/stats")["stats"].size() == 2);
}

TEST_CASE("GET /v1/impact is impact --format json", "[server][contract]") {
  Contract contract;
  const std::string since = "2026-09-21T00:00:00Z";  // before every job: a fixed window for both readers
  const std::vector<std::pair<std::vector<std::string>, std::string>> reads = {
      {{"impact", "--since", since}, "/v1/impact?since=" + since},
      {{"impact", "--since", since, "--state", "failed,dead,succeeded"},
       "/v1/impact?since=" + since + "&state=failed,dead,succeeded"},
      {{"impact", "--since", since, "--job", "ChargeJob", "--type", "customer"},
       "/v1/impact?since=" + since + "&job=ChargeJob&type=customer"},
      {{"impact", "--since", since, "--until", "2026-09-21T14:13:29Z", "--limit", "1", "--jobs-per-entity", "1"},
       "/v1/impact?since=" + since + "&until=2026-09-21T14:13:29Z&limit=1&jobs_per_entity=1"},
      {{"impact", "--since", since, "--max-jobs", "2"}, "/v1/impact?since=" + since + "&max_jobs=2"},
  };
  for (const auto& [args, path] : reads) {
    INFO(path);
    const CliAnswer answer = contract.cli(args);
    CHECK(std::count(answer.out.begin(), answer.out.end(), '\n') == 1);
    CHECK(contract.http(path) == json::parse(answer.out));
    CHECK(answer.err.empty());
  }
  const json all = contract.http("/v1/impact?since=" + since);
  CHECK(all["matching_jobs"] == 6);
  CHECK(all["tagged_jobs"] == 2);
  REQUIRE(all["entities"].size() == 2);
  CHECK(all["entities"][0]["entity"] == "customer:acme");
  CHECK(all["entities"][0]["job_ids"] == json::array({"pay-1", "invoice-1"}));
  const json partial = contract.http("/v1/impact?since=" + since + "&limit=1&jobs_per_entity=1");
  CHECK(partial["entity_count"] == 2);
  CHECK(partial["shown"] == 1);
  CHECK(partial["entities"][0]["more_job_ids"] == 1);
  // A bound on the jobs read: the count stays exact, the rest is of the newest two.
  const json newest = contract.http("/v1/impact?since=" + since + "&max_jobs=2");
  CHECK(newest["filter"]["max_jobs"] == 2);
  CHECK(newest["matching_jobs"] == 6);
  CHECK(newest["read_jobs"] == 2);
  CHECK(newest["complete"] == false);
  CHECK(all["read_jobs"] == 6);
  CHECK(all["complete"] == true);
  // No since: the same default window as the command line (24h before now).
  const json recent = contract.http("/v1/impact");
  CHECK(recent["filter"]["since"].is_string());
  CHECK(recent["filter"]["until"].is_null());

  httplib::Client client("127.0.0.1", contract.port);
  for (const char* bad : {"/v1/impact?state=running", "/v1/impact?type=Customer", "/v1/impact?limit=0",
                          "/v1/impact?jobs_per_entity=101", "/v1/impact?max_jobs=-1", "/v1/impact?since=1h&until=2h", "/v1/impact?entity=user:1"}) {
    INFO(bad);
    const auto result = client.Get(bad);
    REQUIRE(result);
    CHECK(result->status == 400);
    CHECK(json::parse(result->body)["error"].is_string());
  }
  const auto bad_state = client.Get("/v1/impact?state=failed,running");
  REQUIRE(bad_state);
  CHECK(json::parse(bad_state->body)["error"] ==
        "unknown job state 'running' in state 'failed,running' (valid: enqueued, started, succeeded, failed, dead, "
        "cancelled; several comma-separated)");
}

TEST_CASE("GET /v1/jobs refuses a bad cursor or state list with a reason", "[server][contract]") {
  Contract contract;
  httplib::Client client("127.0.0.1", contract.port);
  auto result = client.Get("/v1/jobs?cursor=abc");
  REQUIRE(result);
  CHECK(result->status == 400);
  CHECK(json::parse(result->body)["error"].get<std::string>().find("bad cursor 'abc'") != std::string::npos);
  result = client.Get("/v1/jobs?state=failed,running");
  REQUIRE(result);
  CHECK(result->status == 400);
  CHECK(json::parse(result->body)["error"].get<std::string>().find("unknown job state 'running'") != std::string::npos);
  result = client.Get("/v1/stats?until=1h");
  REQUIRE(result);
  CHECK(result->status == 400);
}
