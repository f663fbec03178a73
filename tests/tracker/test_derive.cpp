// The derived job row must not depend on the order events arrive in, nor on redeliveries.

#include <algorithm>
#include <numeric>
#include <optional>
#include <catch2/catch.hpp>

#include "jobtrail/store.h"
#include "temp_dir.h"
#include "test_store.h"

using namespace jobtrail;

namespace {

// 2026-09-21, 0.5 ms before a tally bucket ends: the job's first event is in one bucket and the
// rest in the next, so an order that brings the first event late moves the job's count.
constexpr Micros t0 = tally_bucket_start(1'790'000'000'000'000) + tally_bucket_length - 500;

Event make(State state, int attempt, Micros offset, std::string error_message = {}) {
  Event event;
  event.job_id = "email-1";
  event.job = "WelcomeEmailJob";
  event.queue = "mailers";
  event.correlation_id = "req-1";
  event.state = state;
  event.attempt = attempt;
  event.at = t0 + offset;
  if (!error_message.empty()) event.error = {"Net::ReadTimeout", error_message, ""};
  return event;
}

// The comparable part of a derived row.
auto summary(const JobRecord& job) {
  return std::make_tuple(job.state, job.enqueued_at, job.started_at, job.finished_at, job.heartbeat_at,
                         job.first_event_at, job.last_event_at, job.attempts, job.event_count,
                         job.last_error.message, job.anomalies, job.job, job.queue, job.correlation_id);
}

}  // namespace

TEST_CASE("every arrival order of a retried job derives the same row", "[tracker][derive][store]") {
  // enqueued, attempt 1 starts and fails, attempt 2 starts, beats, succeeds.
  std::vector<Event> lifecycle = {
      make(State::enqueued, 1, 0),          make(State::started, 1, 1'000),
      make(State::failed, 1, 2'000, "timeout"), make(State::started, 2, 5'000),
      make(State::heartbeat, 2, 6'000),     make(State::succeeded, 2, 7'000)};

  auto reference = [&] {
    testing::TestStore test_store;
    auto store = test_store.open();
    store->append(lifecycle);
    return *store->find_job("email-1");
  }();
  CHECK(reference.state == State::succeeded);
  CHECK(reference.attempts == 2);
  CHECK(reference.started_at == t0 + 5'000);
  CHECK(reference.finished_at == t0 + 7'000);
  CHECK(reference.enqueued_at == t0);
  CHECK(reference.heartbeat_at == t0 + 6'000);
  CHECK(reference.event_count == 6);
  CHECK(reference.last_error.message == "timeout");
  CHECK(reference.anomalies == 0);

  // On SQLite every permutation gets a store of its own. A fresh PostgreSQL database costs
  // about 0.3 s, so there the permutations share one, each under a job ID of its own: a job's
  // row is derived from its own events alone.
  const bool postgres = test::postgres_store_selected();
  std::optional<testing::TestStore> shared;
  if (postgres) shared.emplace();
  std::vector<int> order(lifecycle.size());
  std::iota(order.begin(), order.end(), 0);
  int permutation = 0;
  do {
    ++permutation;
    // Every third permutation is also delivered twice; alternate one batch and one event per batch,
    // and reopen the store between batches half the time so the writer's cache is cold.
    std::vector<Event> arrivals;
    for (int i : order) arrivals.push_back(lifecycle[static_cast<std::size_t>(i)]);
    if (permutation % 3 == 0) {
      auto again = arrivals;
      std::reverse(again.begin(), again.end());
      arrivals.insert(arrivals.end(), again.begin(), again.end());
    }
    std::optional<testing::TestStore> own;
    const testing::TestStore& test_store = postgres ? *shared : own.emplace();
    const std::string job_id = postgres ? "email-1-p" + std::to_string(permutation) : "email-1";
    for (auto& arrival : arrivals) arrival.job_id = job_id;
    if (permutation % 2 == 0) {
      test_store.open()->append(arrivals);
    } else {
      auto store = test_store.open();
      for (std::size_t i = 0; i < arrivals.size(); ++i) {
        if (i % 2 == 1 && permutation % 4 == 1) store = test_store.open();
        store->append({arrivals[i]});
      }
    }
    auto derived = test_store.open()->find_job(job_id);
    REQUIRE(derived);
    INFO("permutation " << permutation);
    CHECK(summary(*derived) == summary(reference));
    // Counted once, where its first event is, in its final state, however its count moved on
    // the way (on PostgreSQL: once per permutation so far, each its own job).
    const Micros bucket = tally_bucket_start(t0);
    const auto counts = test_store.open()->tally({bucket, bucket + tally_bucket_length, bucket + 2 * tally_bucket_length});
    REQUIRE(counts.size() == 1);
    CHECK(counts[0].job == "WelcomeEmailJob");
    CHECK(counts[0].slice == 0);
    CHECK(counts[0].state == State::succeeded);
    CHECK(counts[0].jobs == (postgres ? permutation : 1));
  } while (std::next_permutation(order.begin(), order.end()) && permutation < 720);
  CHECK(permutation == 720);
}

TEST_CASE("redelivered events are skipped and counted", "[tracker][derive][store]") {
  testing::TestStore test_store;
  auto store = test_store.open();
  auto first = store->append({make(State::enqueued, 1, 0), make(State::started, 1, 10)});
  CHECK(first.stored == 2);
  CHECK(first.duplicates == 0);
  auto again = store->append({make(State::started, 1, 10), make(State::enqueued, 1, 0)});
  CHECK(again.stored == 0);
  CHECK(again.duplicates == 2);
  CHECK(store->events_of("email-1").size() == 2);
  CHECK(store->find_job("email-1")->state == State::started);
}

TEST_CASE("a late heartbeat does not revive a finished job", "[tracker][derive][store]") {
  testing::TestStore test_store;
  auto store = test_store.open();
  store->append({make(State::started, 1, 0), make(State::succeeded, 1, 100)});
  store->append({make(State::heartbeat, 1, 50)});
  auto job = store->find_job("email-1");
  CHECK(job->state == State::succeeded);
  CHECK(job->heartbeat_at == t0 + 50);
  CHECK(job->event_count == 3);
}

TEST_CASE("a retry enqueued after a failure waits again", "[tracker][derive][store]") {
  testing::TestStore test_store;
  auto store = test_store.open();
  store->append({make(State::enqueued, 1, 0), make(State::started, 1, 10), make(State::failed, 1, 20, "boom"),
                 make(State::enqueued, 2, 30)});
  auto job = store->find_job("email-1");
  CHECK(job->state == State::enqueued);
  CHECK(job->attempts == 2);
  CHECK(job->enqueued_at == t0 + 30);  // the retry's enqueue: its wait counts from there
  CHECK(job->first_event_at == t0);
}

TEST_CASE("clock skew between hosts cannot reorder attempts", "[tracker][derive][store]") {
  testing::TestStore test_store;
  auto store = test_store.open();
  // Attempt 2 ran on a host whose clock is behind: its events carry earlier times.
  store->append({make(State::started, 1, 1'000), make(State::failed, 1, 2'000, "boom"), make(State::started, 2, 500),
                 make(State::succeeded, 2, 900)});
  auto job = store->find_job("email-1");
  CHECK(job->state == State::succeeded);
  CHECK(job->attempts == 2);
}

TEST_CASE("a job seen first through a heartbeat is running", "[tracker][derive][store]") {
  testing::TestStore test_store;
  auto store = test_store.open();
  store->append({make(State::heartbeat, 1, 0)});
  CHECK(store->find_job("email-1")->state == State::started);
}

TEST_CASE("a heartbeat from a new attempt shows the job running again", "[tracker][derive][store]") {
  testing::TestStore test_store;
  auto store = test_store.open();
  // Attempt 2's `started` was lost; its heartbeat still proves it runs.
  store->append({make(State::started, 1, 0), make(State::failed, 1, 10, "boom"), make(State::heartbeat, 2, 50)});
  auto job = store->find_job("email-1");
  CHECK(job->state == State::started);
  CHECK(job->attempts == 2);
  CHECK_FALSE(job->finished_at);
}

TEST_CASE("the job gives up after the failure whatever the clocks say", "[tracker][derive][store]") {
  testing::TestStore test_store;
  auto store = test_store.open();
  // `dead` was stamped by a host whose clock is behind the one that stamped `failed`.
  store->append({make(State::started, 1, 0), make(State::dead, 1, 10), make(State::failed, 1, 20, "boom")});
  CHECK(store->find_job("email-1")->state == State::dead);
}

TEST_CASE("events without an attempt number join the right attempt", "[tracker][derive][store]") {
  testing::TestStore test_store;
  auto store = test_store.open();
  SECTION("an outcome belongs to the current attempt") {
    store->append({make(State::started, 2, 0)});
    store->append({make(State::succeeded, 0, 10)});
    auto job = store->find_job("email-1");
    CHECK(job->state == State::succeeded);
    CHECK(job->attempts == 2);
  }
  SECTION("a start after a failure is the next attempt") {
    store->append({make(State::enqueued, 0, 0), make(State::started, 0, 10), make(State::failed, 0, 20, "boom")});
    store->append({make(State::enqueued, 0, 30), make(State::started, 0, 40)});
    auto job = store->find_job("email-1");
    CHECK(job->state == State::started);
    CHECK(job->attempts == 2);
    CHECK(job->enqueued_at == t0 + 30);
    CHECK(job->started_at == t0 + 40);
  }
  SECTION("a late enqueue does not reopen a finished job") {
    store->append({make(State::started, 0, 10), make(State::succeeded, 0, 20)});
    store->append({make(State::enqueued, 0, 0)});
    auto job = store->find_job("email-1");
    CHECK(job->state == State::succeeded);
    CHECK(job->attempts == 1);
  }
}
