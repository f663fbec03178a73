// The PostgreSQL store under the conditions a fleet meets: a server that stops and comes back
// while workers record, several hosts writing one trace, several processes creating one store.

#include <atomic>
#include <spawn.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "jobtrail/store.h"
#include "jobtrail/tracker.h"
#include "pg_test_database.h"
#include "jobtrail/drivers/pg_connection.h"

using namespace jobtrail;
using namespace std::chrono_literals;

extern char** environ;

namespace {

constexpr Micros t0 = 1'790'000'000'000'000;

Event event(const std::string& job_id, State state, Micros at, const std::string& correlation_id = "") {
  Event e;
  e.job_id = job_id;
  e.job = "SyncJob";
  e.queue = "default";
  e.state = state;
  e.at = at;
  e.attempt = 1;
  e.correlation_id = correlation_id;
  return e;
}

std::int64_t count(const std::string& url, const std::string& sql) {
  pg::Connection connection(url);
  return connection.execute(sql).integer(0, 0);
}

}  // namespace

TEST_CASE("a server stopped and restarted mid-stream loses nothing and stores nothing twice", "[postgres][resilience]") {
  test::PgCluster cluster;
  TrackerOptions options;
  options.flush_interval = 5ms;
  options.max_batch = 300;
  options.worker = "host-a";
  Tracker tracker(cluster.url(), options);

  constexpr int jobs = 3000;
  std::atomic<int> recorded{0};
  std::atomic<std::int64_t> accepted{0};
  std::thread worker([&] {
    for (int i = 0; i < jobs; ++i) {
      const std::string id = "job-" + std::to_string(i);
      const Micros at = t0 + i * 1000;
      for (auto [state, offset] : {std::pair{State::enqueued, 0}, {State::started, 100}, {State::succeeded, 200}}) {
        if (tracker.record(event(id, state, at + offset)) == RecordStatus::queued) accepted += 1;
      }
      recorded = i + 1;
      if (i % 10 == 0) std::this_thread::sleep_for(1ms);
    }
  });
  auto wait_for = [&](int count_recorded) {
    while (recorded < count_recorded) std::this_thread::sleep_for(5ms);
  };
  // A crash (immediate shutdown: transactions in flight are lost, a COMMIT may or may not have
  // happened) and then a clean restart, each while events keep coming.
  wait_for(jobs / 4);
  cluster.kill();
  std::this_thread::sleep_for(500ms);
  cluster.restart();
  wait_for(jobs / 2);
  cluster.stop();
  std::this_thread::sleep_for(500ms);
  cluster.restart();
  worker.join();
  REQUIRE(tracker.flush(60s));

  const auto counters = tracker.counters();
  CHECK(accepted == 3 * jobs);  // the queue held everything through both outages
  CHECK(counters.dropped_queue_full == 0);
  CHECK(counters.dropped_store_error == 0);
  CHECK(counters.store_errors > 0);  // the outages were seen, and retried
  CHECK(counters.stored + counters.duplicates == static_cast<std::uint64_t>(accepted.load()));

  // Every accepted event once: as many events as accepted, none twice, every job whole.
  CHECK(count(cluster.url(), "SELECT count(*) FROM jobtrail.event") == accepted);
  CHECK(count(cluster.url(), "SELECT count(*) FROM (SELECT 1 FROM jobtrail.event "
                             "GROUP BY job, state, attempt, at HAVING count(*) > 1) twice") == 0);
  CHECK(count(cluster.url(), "SELECT count(*) FROM jobtrail.job") == jobs);
  CHECK(count(cluster.url(), "SELECT count(*) FROM jobtrail.job WHERE events <> 3 OR state <> 4") == 0);
  CHECK(count(cluster.url(), "SELECT count(*) FROM jobtrail.job WHERE anomalies <> 0") == 0);
}

TEST_CASE("a tracker starts while its server is down and catches up when it comes", "[postgres][resilience]") {
  test::PgCluster cluster;
  cluster.stop();
  TrackerOptions options;
  options.flush_interval = 5ms;
  Tracker tracker(cluster.url(), options);  // no throw: the writer connects later
  for (int i = 0; i < 100; ++i) {
    CHECK(tracker.record(event("early-" + std::to_string(i), State::enqueued, t0 + i)) == RecordStatus::queued);
  }
  std::this_thread::sleep_for(300ms);
  CHECK(tracker.counters().store_errors > 0);
  cluster.restart();
  REQUIRE(tracker.flush(60s));
  CHECK(tracker.counters().stored == 100);
  CHECK(count(cluster.url(), "SELECT count(*) FROM jobtrail.job WHERE state = 1") == 100);
}

TEST_CASE("two hosts write one trace: enqueued on one, run on the other", "[postgres][fleet]") {
  test::TempPgDatabase database;
  constexpr int jobs = 400;
  TrackerOptions web_options, worker_options;
  web_options.worker = "web-1";
  worker_options.worker = "worker-7";
  web_options.flush_interval = worker_options.flush_interval = 2ms;
  web_options.max_batch = worker_options.max_batch = 50;
  {
    Tracker web(database.url(), web_options);
    Tracker worker(database.url(), worker_options);
    // Both at once, and the worker's events for a job may reach the store before its enqueue.
    std::thread enqueuing([&] {
      for (int i = 0; i < jobs; ++i) {
        web.record(event("fleet-" + std::to_string(i), State::enqueued, t0 + i * 1000, "req-fleet"));
      }
    });
    std::thread running([&] {
      for (int i = 0; i < jobs; ++i) {
        const std::string id = "fleet-" + std::to_string(i);
        worker.record(event(id, State::started, t0 + i * 1000 + 300));
        worker.record(event(id, State::succeeded, t0 + i * 1000 + 900));
      }
    });
    enqueuing.join();
    running.join();
    REQUIRE(web.flush(30s));
    REQUIRE(worker.flush(30s));
    CHECK(web.counters().dropped_store_error == 0);
    CHECK(worker.counters().dropped_store_error == 0);
  }
  OpenOptions read_only;
  read_only.read_only = true;
  auto store = open_store(database.url(), read_only);
  auto trace = store->jobs_in_trace("req-fleet");
  REQUIRE(trace.size() == jobs);
  int whole = 0;
  for (const auto& job : trace) {
    if (job.state == State::succeeded && job.event_count == 3 && job.enqueued_at == job.first_event_at &&
        job.started_at && job.worker == "worker-7" && job.anomalies == 0) {
      whole += 1;
    }
  }
  CHECK(whole == jobs);
  // Oldest first, as the trace view prints them.
  CHECK(trace.front().job_id == "fleet-0");
  CHECK(trace.back().job_id == "fleet-" + std::to_string(jobs - 1));
}

TEST_CASE("several processes creating one store at once all succeed", "[postgres][fleet]") {
  test::TempPgDatabase database;
  // Four processes start together on a database without a store: each migrates or finds the
  // migration done, then records its own jobs. record_events exits 0 only if all were stored.
  std::vector<pid_t> children;
  for (const char* prefix : {"a", "b", "c", "d"}) {
    std::vector<std::string> words{RECORD_EVENTS_PATH, "--db", database.url(), "--prefix", prefix, "--count", "200"};
    std::vector<char*> argv;
    for (auto& word : words) argv.push_back(word.data());
    argv.push_back(nullptr);
    pid_t child = 0;
    REQUIRE(posix_spawn(&child, argv[0], nullptr, nullptr, argv.data(), environ) == 0);
    children.push_back(child);
  }
  for (pid_t child : children) {
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  }
  auto store = open_store(database.url());
  CHECK(store->schema_version() == latest_schema_version());
  CHECK(count(database.url(), "SELECT count(*) FROM jobtrail.job") == 800);
  CHECK(count(database.url(), "SELECT count(*) FROM jobtrail.event") == 2400);
  CHECK(count(database.url(), "SELECT count(*) FROM pg_namespace WHERE nspname = 'jobtrail'") == 1);
}
