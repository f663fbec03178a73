// The HTTP server in-process, spoken to by a real HTTP client on an ephemeral loopback port.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <catch2/catch.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "jobtrail/server.h"
#include "jobtrail/store.h"
#include "running_server.h"
#include "temp_dir.h"

using namespace jobtrail;
using nlohmann::json;

namespace {

using jobtrail::testing::TempDir;

using jobtrail::testing::RunningServer;

httplib::Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

/// Sends `request` as raw bytes and returns all the server answered until it closed the
/// connection, or what came within 5 s: some requests no HTTP client library will send.
std::string raw_exchange(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
  std::string answer;
  char buffer[4096];
  for (ssize_t got; (got = recv(fd, buffer, sizeof buffer, 0)) > 0;) answer.append(buffer, static_cast<std::size_t>(got));
  close(fd);
  return answer;
}

/// The status code and the JSON body of a raw HTTP answer.
std::pair<int, json> parse_answer(const std::string& answer) {
  REQUIRE(answer.starts_with("HTTP/1.1 "));
  const auto body_at = answer.find("\r\n\r\n");
  REQUIRE(body_at != std::string::npos);
  return {std::stoi(answer.substr(9, 3)), json::parse(answer.substr(body_at + 4))};
}

}  // namespace

TEST_CASE("POST /v1/events?wait=commit answers once the events are in the store", "[server]") {
  RunningServer running;
  auto client = running.client();
  const auto result = client.Post("/v1/events?wait=commit",
                                  R"([{"job_id":"a","state":"enqueued","job":"Mail","correlation_id":"c1"},
                                      {"job_id":"b","state":"enqueued","parent_job_id":"a","correlation_id":"c1"}])",
                                  "application/json");
  REQUIRE(result);
  CHECK(result->status == 200);
  const json body = json::parse(result->body);
  CHECK(body["accepted"] == 2);
  CHECK(body["durable"] == true);
  CHECK(body["rejected"].empty());
  // No sleep: durable means a fresh connection sees it now.
  CHECK(running.store()->jobs_in_trace("c1").size() == 2);
}

TEST_CASE("without wait=commit the answer is 202 Accepted", "[server]") {
  RunningServer running;
  auto client = running.client();
  const auto result = client.Post("/v1/events", R"({"job_id":"a","state":"enqueued"})", "application/json");
  REQUIRE(result);
  CHECK(result->status == 202);
  CHECK(json::parse(result->body)["durable"] == false);
}

TEST_CASE("an NDJSON batch with bad lines records the good ones and lists the bad", "[server]") {
  RunningServer running;
  auto client = running.client();
  const auto result = client.Post("/v1/events?wait=commit",
                                  "{\"job_id\":\"a\",\"state\":\"enqueued\"}\n"
                                  "{\"job_id\":\"b\",\"state\":\"nope\"}\n"
                                  "{\"job_id\":\"c\",\"state\":\"started\",\"attempt\":\"1\"}\n"
                                  "{\"job_id\":\"d\",\"state\":\"enqueued\"}\n",
                                  "application/x-ndjson");
  REQUIRE(result);
  CHECK(result->status == 400);
  const json body = json::parse(result->body);
  CHECK(body["accepted"] == 2);
  REQUIRE(body["rejected"].size() == 2);
  CHECK(body["rejected"][0]["line"] == 2);
  CHECK(body["rejected"][1]["line"] == 3);
  CHECK(body["rejected"][1]["error"] == "attempt must be an integer, not a string");
  auto store = running.store();
  CHECK(store->find_job("a"));
  CHECK(!store->find_job("b"));
  CHECK(!store->find_job("c"));
  CHECK(store->find_job("d"));
}

TEST_CASE("atomic=true refuses the whole batch when one event is bad", "[server]") {
  RunningServer running;
  auto client = running.client();
  const auto result = client.Post("/v1/events?atomic=true&wait=commit",
                                  R"([{"job_id":"a","state":"enqueued"},{"job_id":"b","state":"nope"}])",
                                  "application/json");
  REQUIRE(result);
  CHECK(result->status == 400);
  CHECK(json::parse(result->body)["accepted"] == 0);
  CHECK(!running.store()->find_job("a"));
}

TEST_CASE("truncated JSON and oversized bodies are refused whole, nothing half-written", "[server]") {
  ServerOptions options;
  options.max_body_bytes = 64 * 1024;
  options.max_events_per_request = 100;
  RunningServer running(options);
  auto client = running.client();

  auto result = client.Post("/v1/events?wait=commit", R"([{"job_id":"a","state":"enqueued"},{"job_id":)",
                            "application/json");
  REQUIRE(result);
  CHECK(result->status == 400);
  CHECK(json::parse(result->body)["error"].get<std::string>().starts_with("not valid JSON"));

  std::string big;
  for (int i = 0; big.size() <= 64 * 1024; ++i) big += R"({"job_id":"big)" + std::to_string(i) + R"(","state":"enqueued"})" "\n";
  result = client.Post("/v1/events?wait=commit", big, "application/x-ndjson");
  REQUIRE(result);
  CHECK(result->status == 413);
  CHECK(json::parse(result->body)["error"].get<std::string>().find("too large") != std::string::npos);

  std::string many;
  for (int i = 0; i < 101; ++i) many += R"({"job_id":"m)" + std::to_string(i) + R"(","state":"enqueued"})" "\n";
  result = client.Post("/v1/events?wait=commit", many, "application/x-ndjson");
  REQUIRE(result);
  CHECK(result->status == 413);

  auto store = running.store();
  CHECK(!store->find_job("a"));
  CHECK(!store->find_job("big0"));
  CHECK(!store->find_job("m0"));
}

TEST_CASE("with a token, writes need it and reads do not", "[server]") {
  ServerOptions options;
  options.token = "s3cret";
  RunningServer running(options);
  auto client = running.client();
  const std::string event = R"({"job_id":"a","state":"enqueued","correlation_id":"c"})";

  auto result = client.Post("/v1/events", event, "application/json");
  REQUIRE(result);
  CHECK(result->status == 401);
  CHECK(result->get_header_value("WWW-Authenticate").starts_with("Bearer"));
  result = client.Post("/v1/events", bearer("wrong!"), event, "application/json");
  REQUIRE(result);
  CHECK(result->status == 401);
  result = client.Put("/v1/schedules/nightly", R"({"every":"24h"})", "application/json");
  REQUIRE(result);
  CHECK(result->status == 401);
  CHECK(!running.store()->find_job("a"));

  result = client.Post("/v1/events?wait=commit", bearer("s3cret"), event, "application/json");
  REQUIRE(result);
  CHECK(result->status == 200);
  result = client.Get("/v1/traces/c");
  REQUIRE(result);
  CHECK(result->status == 200);
}

TEST_CASE("protect_reads guards the read API but not /metrics and /healthz", "[server]") {
  ServerOptions options;
  options.token = "s3cret";
  options.protect_reads = true;
  RunningServer running(options);
  auto client = running.client();
  REQUIRE(client.Post("/v1/events?wait=commit", bearer("s3cret"), R"({"job_id":"a","state":"enqueued","correlation_id":"c"})",
                      "application/json")->status == 200);
  CHECK(client.Get("/v1/jobs/a")->status == 401);
  CHECK(client.Get("/v1/traces/c")->status == 401);
  CHECK(client.Get("/v1/jobs")->status == 401);
  CHECK(client.Get("/v1/jobs/a", bearer("s3cret"))->status == 200);
  CHECK(client.Get("/metrics")->status == 200);
  CHECK(client.Get("/healthz")->status == 200);
}

TEST_CASE("without a token, writes are open", "[server]") {
  RunningServer running;
  auto client = running.client();
  const auto result = client.Put("/v1/schedules/nightly%20backup", R"({"every":"24h","grace":"1h"})", "application/json");
  REQUIRE(result);
  CHECK(result->status == 200);
  const std::vector<Schedule> schedules = running.store()->schedules();
  REQUIRE(schedules.size() == 1);
  CHECK(schedules[0].job == "nightly backup");
  CHECK(schedules[0].every == 86400LL * 1000000);
  CHECK(schedules[0].grace == 3600LL * 1000000);
}

TEST_CASE("the read API answers a job, a trace and a filtered list as JSON", "[server]") {
  RunningServer running;
  auto client = running.client();
  REQUIRE(client.Post("/v1/events?wait=commit",
                      R"({"job_id":"p","state":"enqueued","job":"Parent","queue":"q","correlation_id":"c9","entities":["user:42"]}
{"job_id":"p","state":"started","attempt":1}
{"job_id":"k","state":"enqueued","job":"Kid","queue":"q","correlation_id":"c9","parent_job_id":"p"}
{"job_id":"k","state":"started","attempt":1}
{"job_id":"k","state":"failed","attempt":1,"error":{"class":"E","message":"boom"}}
)",
                      "application/x-ndjson")->status == 200);

  auto result = client.Get("/v1/jobs/k");
  REQUIRE(result);
  REQUIRE(result->status == 200);
  json job = json::parse(result->body);
  CHECK(job["state"] == "failed");
  CHECK(job["parent_job_id"] == "p");
  CHECK(job["last_error"]["message"] == "boom");
  CHECK(job["events"].size() == 3);

  result = client.Get("/v1/traces/c9");
  REQUIRE(result);
  REQUIRE(result->status == 200);
  CHECK(json::parse(result->body)["jobs"].size() == 2);

  result = client.Get("/v1/jobs?state=started&queue=q");
  REQUIRE(result);
  json list = json::parse(result->body)["jobs"];
  REQUIRE(list.size() == 1);
  CHECK(list[0]["job_id"] == "p");
  result = client.Get("/v1/jobs?entity=user:42&limit=1");
  REQUIRE(result);
  CHECK(json::parse(result->body)["jobs"].size() == 1);

  CHECK(client.Get("/v1/jobs/none")->status == 404);
  CHECK(client.Get("/v1/traces/none")->status == 404);
  result = client.Get("/v1/jobs?state=heartbeat");
  CHECK(result->status == 400);
  CHECK(json::parse(result->body)["error"].get<std::string>().starts_with("unknown job state"));
  CHECK(client.Get("/v1/jobs?limit=0")->status == 400);
  CHECK(client.Get("/v1/jobs?colour=red")->status == 400);
  CHECK(client.Get("/v1/jobs?anomalies=false")->status == 200);
  result = client.Get("/v1/jobs?anomalies=yes");
  CHECK(result->status == 400);
  CHECK(json::parse(result->body)["error"] == "bad anomalies 'yes': expected true, false, 1 or 0");
  CHECK(client.Get("/v1/nothing")->status == 404);
}

TEST_CASE("GET /metrics has the tracker's metrics and the store's gauges", "[server]") {
  RunningServer running;
  auto client = running.client();
  REQUIRE(client.Post("/v1/events?wait=commit",
                      R"({"job_id":"r","state":"started","job":"Report","queue":"slow","at":"2020-01-01T00:00:00Z"}
{"job_id":"w","state":"enqueued","job":"Mail","queue":"mailers"}
{"job_id":"s","state":"succeeded","job":"Mail","queue":"mailers"}
)",
                      "application/x-ndjson")->status == 200);
  const auto result = client.Get("/metrics");
  REQUIRE(result);
  CHECK(result->status == 200);
  CHECK(result->get_header_value("Content-Type").starts_with("text/plain; version=0.0.4"));
  const std::string& text = result->body;
  CHECK(text.find("jobtrail_tracker_events_total{state=\"enqueued\"} 1") != std::string::npos);
  CHECK(text.find("jobtrail_jobs_running{job_class=\"Report\",queue=\"slow\"} 1") != std::string::npos);
  CHECK(text.find("jobtrail_jobs_waiting{job_class=\"Mail\",queue=\"mailers\"} 1") != std::string::npos);
  // Started in 2020: the age is years, in seconds.
  const auto age_at = text.find("jobtrail_oldest_running_job_age_seconds{job_class=\"Report\",queue=\"slow\"} ");
  REQUIRE(age_at != std::string::npos);
  CHECK(std::stod(text.substr(text.find("} ", age_at) + 2)) > 86400.0 * 365);
  CHECK(text.find("jobtrail_oldest_waiting_job_age_seconds{job_class=\"Mail\"") != std::string::npos);
  CHECK(text.find("jobtrail_running_job_silence_seconds{job_class=\"Report\",queue=\"slow\"} ") != std::string::npos);
  CHECK(text.find("jobtrail_serve_requests_total{code=\"200\",endpoint=\"events\"} 1") != std::string::npos);
}

TEST_CASE("GET /metrics has each cron schedule with its last run", "[server]") {
  RunningServer running;
  auto client = running.client();
  REQUIRE(client.Put("/v1/schedules/Report", R"({"every":"1h","grace":"10m"})", "application/json")->status == 200);
  REQUIRE(client.Put("/v1/schedules/Never", R"({"every":"24h"})", "application/json")->status == 200);
  REQUIRE(client.Post("/v1/events?wait=commit", R"({"job_id":"r","state":"succeeded","job":"Report","at":1767225600000000})",
                      "application/json")->status == 200);
  const std::string text = client.Get("/metrics")->body;
  CHECK(text.find("jobtrail_cron_expected_interval_seconds{job_class=\"Report\"} 3600") != std::string::npos);
  CHECK(text.find("jobtrail_cron_grace_seconds{job_class=\"Report\"} 600") != std::string::npos);
  CHECK(text.find("jobtrail_cron_last_run_timestamp_seconds{job_class=\"Report\"} 1767225600") != std::string::npos);
  // Registered but never run: interval and grace, no last run (the nightly check reports it).
  CHECK(text.find("jobtrail_cron_expected_interval_seconds{job_class=\"Never\"} 86400") != std::string::npos);
  CHECK(text.find("jobtrail_cron_last_run_timestamp_seconds{job_class=\"Never\"}") == std::string::npos);
}

TEST_CASE("GET /healthz says whether the store can be read", "[server]") {
  RunningServer running;
  auto client = running.client();
  auto result = client.Get("/healthz");
  REQUIRE(result);
  CHECK(result->status == 200);
  CHECK(json::parse(result->body)["status"] == "ok");
}

TEST_CASE("a port in use is a ListenError, not an abort", "[server]") {
  RunningServer running;
  ServerOptions options;
  options.store_url = running.store_url;
  options.port = running.port;
  Server second(options);
  try {
    second.bind();
    FAIL("bound a port that is in use");
  } catch (const ListenError& error) {
    CHECK(std::string(error.what()).find("already in use") != std::string::npos);
  }
}

TEST_CASE("stop() under load: every event answered as accepted is committed", "[server]") {
  TempDir dir;
  ServerOptions options;
  options.store_url = dir.file("jobs.db");
  options.port = 0;
  auto server = std::make_unique<Server>(options);
  const int port = server->bind();
  std::thread serving([&] { CHECK(server->run()); });
  REQUIRE(server->wait_until_ready(std::chrono::seconds(5)));

  std::atomic<std::size_t> accepted{0};
  std::atomic<bool> go_on{true};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", port);
      for (int batch = 0; go_on; ++batch) {
        std::string body;
        for (int i = 0; i < 50; ++i) {
          body += R"({"job_id":"c)" + std::to_string(c) + "-" + std::to_string(batch) + "-" + std::to_string(i) +
                  R"(","state":"enqueued"})" "\n";
        }
        const auto result = client.Post("/v1/events", body, "application/x-ndjson");
        if (!result) break;  // the server stopped: no answer, so nothing was promised
        if (result->status == 202) accepted += json::parse(result->body)["accepted"].get<std::size_t>();
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  server->stop();
  serving.join();
  go_on = false;
  for (auto& client : clients) client.join();
  server.reset();

  REQUIRE(accepted > 0);
  JobFilter all;
  all.limit = 10'000'000;
  OpenOptions read_only;
  read_only.read_only = true;
  CHECK(open_store(options.store_url, read_only)->list_jobs(all).size() == accepted);
}

TEST_CASE("a chunked body is refused with 411 before it is read: it would escape --max-body", "[server]") {
  ServerOptions options;
  options.max_body_bytes = 1024;
  RunningServer running(options);
  // Only the headers: the server must answer without waiting for the body, and close.
  const std::string answer = raw_exchange(running.port,
                                          "POST /v1/events?wait=commit HTTP/1.1\r\nHost: localhost\r\n"
                                          "Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n");
  const auto [status, body] = parse_answer(answer);
  CHECK(status == 411);
  CHECK(body["error"].get<std::string>().find("Content-Length") != std::string::npos);
  CHECK(answer.find("Connection: close") != std::string::npos);
  // Header names and the value in any case, as HTTP allows.
  CHECK(parse_answer(raw_exchange(running.port, "POST /v1/events HTTP/1.1\r\nHost: localhost\r\n"
                                                "transfer-encoding: Chunked\r\n\r\n"))
            .first == 411);

  // The same for a complete chunked request from a real client.
  auto client = running.client();
  const std::string event = R"({"job_id":"chunked","state":"enqueued"})" "\n";
  const auto result = client.Post(
      "/v1/events?wait=commit",
      [&event](std::size_t, httplib::DataSink& sink) {
        sink.write(event.data(), event.size());
        sink.done();
        return true;
      },
      "application/x-ndjson");
  if (result) CHECK(result->status == 411);  // or the connection closed while it still wrote
  CHECK(!running.store()->find_job("chunked"));
}

TEST_CASE("a compressed body is refused with 415: inflating it could pass any --max-body", "[server]") {
  RunningServer running;
  auto client = running.client();
  const std::string event = R"({"job_id":"zipped","state":"enqueued"})";
  auto result = client.Post("/v1/events?wait=commit", {{"Content-Encoding", "gzip"}}, event, "application/json");
  REQUIRE(result);
  CHECK(result->status == 415);
  CHECK(json::parse(result->body)["error"] == "Content-Encoding 'gzip' is not accepted: send the body uncompressed");
  result = client.Post("/v1/events?wait=commit", {{"Content-Encoding", "br"}}, event, "application/json");
  REQUIRE(result);
  CHECK(result->status == 415);
  CHECK(!running.store()->find_job("zipped"));

  result = client.Post("/v1/events?wait=commit", {{"Content-Encoding", "identity"}}, event, "application/json");
  REQUIRE(result);
  CHECK(result->status == 200);
  CHECK(running.store()->find_job("zipped"));
}

TEST_CASE("with a token, an unauthorized write is refused before its body is read", "[server]") {
  ServerOptions options;
  options.token = "s3cret";
  RunningServer running(options);
  // Headers announcing a large body that never comes: the 401 must not wait for it.
  for (const std::string request_line : {"POST /v1/events", "PUT /v1/schedules/nightly"}) {
    const auto started = std::chrono::steady_clock::now();
    const std::string answer = raw_exchange(running.port, request_line + " HTTP/1.1\r\nHost: localhost\r\n"
                                                          "Content-Type: application/json\r\n"
                                                          "Content-Length: 1000000\r\n\r\n");
    const auto [status, body] = parse_answer(answer);
    CHECK(status == 401);
    CHECK(body["error"] == "a bearer token is required (Authorization: Bearer TOKEN)");
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(4));
  }
  const std::string answer = raw_exchange(running.port, "POST /v1/events HTTP/1.1\r\nHost: localhost\r\n"
                                                        "Authorization: Bearer wrong!\r\n"
                                                        "Content-Length: 1000000\r\n\r\n");
  CHECK(parse_answer(answer).first == 401);
}

TEST_CASE("stop() right after run() started is never lost", "[server]") {
  // stop() may come while run() is still on its way into httplib's listen; it must wait for
  // that (a loaded machine takes its time) rather than give up and leave listen running.
  for (int round = 0; round < 20; ++round) {
    TempDir dir;
    ServerOptions options;
    options.store_url = dir.file("jobs.db");
    options.port = 0;
    Server server(options);
    server.bind();
    std::thread serving([&server] { server.run(); });
    if (round % 2 == 1) std::this_thread::sleep_for(std::chrono::microseconds(100 * round));
    server.stop();
    serving.join();  // hangs (and ctest times out) if the stop was lost
  }
}

TEST_CASE("a re-sent batch is stored once when its events carry at, twice when they do not", "[server]") {
  // The contract docs/events.md states, and the reason the clients always send `at`.
  RunningServer running;
  auto client = running.client();
  const std::string with_at = R"({"job_id":"a","state":"succeeded","attempt":1,"at":"2026-01-01T00:00:00Z"})";
  const std::string without_at = R"({"job_id":"b","state":"succeeded","attempt":1})";
  for (int delivery = 0; delivery < 2; ++delivery) {
    REQUIRE(client.Post("/v1/events?wait=commit", with_at + "\n" + without_at + "\n", "application/x-ndjson")->status == 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a later arrival, a later stamp
  }
  auto store = running.store();
  CHECK(store->events_of("a").size() == 1);
  CHECK(store->events_of("b").size() == 2);
}

TEST_CASE("a 1 MB error message is stored cut to its limit and marked, never refused", "[server]") {
  RunningServer running;
  auto client = running.client();
  const std::string message(1024 * 1024, 'm');
  const json event = {{"job_id", "long-failure"}, {"state", "failed"}, {"error", {{"class", "Boom"}, {"message", message}}}};
  const auto result = client.Post("/v1/events?wait=commit", event.dump(), "application/json");
  REQUIRE(result);
  INFO(result->body.substr(0, 300));
  CHECK(result->status == 200);
  const json body = json::parse(result->body);
  CHECK(body["accepted"] == 1);
  CHECK(body["truncated"] == json::parse(R"([{"index":0,"fields":["error.message"]}])"));
  const auto stored = running.store()->find_job("long-failure");
  REQUIRE(stored);
  CHECK(stored->state == State::failed);
  CHECK(stored->last_error.message.size() <= EventLimits::max_message_length);
  CHECK(stored->last_error.message.ends_with(std::string(truncation_marker) + "1048576 bytes]"));
  CHECK(stored->last_error.message.starts_with("mmmm"));
}

TEST_CASE("an event without a worker is not stamped with serve's own host:pid", "[server]") {
  RunningServer running;
  auto client = running.client();
  auto result = client.Post("/v1/events?wait=commit",
                            R"({"job_id":"w","state":"started","attempt":1,"at":1790000000000000,"worker":"box-7:42"})",
                            "application/json");
  REQUIRE(result);
  REQUIRE(result->status == 200);
  result = client.Post("/v1/events?wait=commit", R"({"job_id":"w","state":"heartbeat","attempt":1,"at":1790000001000000})",
                       "application/json");
  REQUIRE(result);
  REQUIRE(result->status == 200);
  auto store = running.store();
  const auto job = store->find_job("w");
  REQUIRE(job);
  CHECK(job->worker == "box-7:42");
  const auto events = store->events_of("w");
  REQUIRE(events.size() == 2);
  CHECK(events[1].worker.empty());  // what the worker sent: no worker
}

TEST_CASE("a plain curl --data-binary batch (a form content type) over 8 KiB is taken as JSON", "[server]") {
  // curl sends application/x-www-form-urlencoded unless told otherwise; refusing that would
  // cost a first-time user their batch for a header they never chose.
  RunningServer running;
  auto client = running.client();
  std::string batch;
  for (int i = 0; batch.size() <= 20 * 1024; ++i) {
    batch += R"({"job_id":"form-)" + std::to_string(i) + R"(","state":"enqueued","job":"FormJob"})" "\n";
  }
  const auto result = client.Post("/v1/events?wait=commit", batch, "application/x-www-form-urlencoded");
  REQUIRE(result);
  INFO(result->body.substr(0, 300));
  CHECK(result->status == 200);
  CHECK(json::parse(result->body)["rejected"].empty());
  CHECK(running.store()->find_job("form-0"));
}

TEST_CASE("serve checks each event once as it decodes it: the refused are answered as always, the rest stored",
          "[server]") {
  // The answers below are the ones serve gave when the tracker checked every event a second
  // time in record(): what the client hears did not change when that second check went away.
  RunningServer running;
  auto client = running.client();
  const std::string long_id(EventLimits::max_id_length + 1, 'x');
  const std::string body =
      R"({"job_id":"ok","state":"enqueued","at":"2026-01-01T00:00:00Z","entities":["user:1"]})" "\n"
      R"({"job_id":"s","state":"started","at":1767225600})" "\n"
      R"({"job_id":"t","state":"started","at":1767225600,"attempt":"x"})" "\n"
      R"({"job_id":"z","state":"started","at":0})" "\n"
      R"({"job_id":"e","state":"started","entities":["nope"]})" "\n"
      R"({"job_id":")" + long_id + R"(","state":"started","at":5})" "\n"
      R"({"job_id":")" + long_id + R"(","state":"started"})" "\n"
      R"({"job_id":"y","state":"started","at":"1999-12-31T23:59:59Z"})" "\n"
      R"({"job_id":"now","state":"started"})" "\n";
  const auto result = client.Post("/v1/events?wait=commit", body, "application/x-ndjson");
  REQUIRE(result);
  INFO(result->body);
  CHECK(result->status == 400);
  const json answer = json::parse(result->body);
  CHECK(answer["accepted"] == 2);
  const std::string seconds_2026 =
      "at 1767225600 is 1970-01-01T00:29:27.225600Z, before 2000-01-01: as seconds since the epoch it would be "
      "2026-01-01T00:00:00.000000Z; send microseconds";
  const std::string never_set = "before 2000-01-01: a clock that was never set, or the wrong unit (send microseconds)";
  const std::pair<int, std::string> refused[] = {
      {2, seconds_2026},
      {3, seconds_2026},  // "at" is the first field read that is wrong
      {4, "at 0 is 1970-01-01T00:00:00.000000Z, " + never_set},  // 0 sent is 1970, not "now"
      {5, "entity \"nope\" is not of the form type:id (type of a-z, 0-9, _ . -)"},
      {6, "at 5 is 1970-01-01T00:00:00.000005Z, " + never_set},  // the time before the long ID
      {7, "job_id is 201 bytes long; the limit is 200"},
      {8, "at '1999-12-31T23:59:59Z' is 1999-12-31T23:59:59.000000Z, " + never_set},
  };
  json expected = json::array();
  for (const auto& [line, error] : refused) expected.push_back({{"line", line}, {"error", error}});
  CHECK(answer["rejected"] == expected);
  auto store = running.store();
  const auto ok = store->find_job("ok");
  REQUIRE(ok);
  CHECK(store->events_of("ok").at(0).at == 1'767'225'600'000'000);
  CHECK(ok->entities == std::vector<std::string>{"user:1"});
  // Sent without a time: stamped when recorded, by the receiver's clock.
  const auto stamped = store->events_of("now");
  REQUIRE(stamped.size() == 1);
  CHECK(stamped[0].at > 1'767'225'600'000'000);
  CHECK(std::abs(stamped[0].at - now_micros()) < 60'000'000);
  for (const char* job_id : {"s", "t", "z", "e", "y"}) CHECK_FALSE(store->find_job(job_id));
}
