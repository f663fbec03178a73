// The store queries behind the on-call views (show by prefix, every anomaly of a job, stats by
// queue and window, prune --dry-run and the space given back, impact), on SQLite and
// (registered again by jobtrail_postgres_tests) on a real PostgreSQL server.

#include <algorithm>
#include <map>
#include <optional>

#include <catch2/catch.hpp>

#include "jobtrail/store.h"
#include "test_store.h"

using namespace jobtrail;

namespace {

constexpr Micros t0 = 1'790'000'000'000'000;
constexpr Micros second = 1'000'000;

Event event(std::string job_id, State state, Micros at, std::string job = "ChargeJob", std::string queue = "billing") {
  Event e;
  e.job_id = std::move(job_id);
  e.state = state;
  e.at = at;
  e.job = std::move(job);
  e.queue = std::move(queue);
  e.attempt = 1;
  return e;
}

struct StoreFixture {
  testing::TestStore test_store;
  std::unique_ptr<Store> store = test_store.open();
};

using Ids = std::vector<std::string>;

}  // namespace

TEST_CASE_METHOD(StoreFixture, "a job's anomalies include those another job flagged against it", "[tracker][store]") {
  // charge-a succeeds twice; charge-b then succeeds under charge-a's key. charge-a carries both
  // flags, and the second one is recorded on charge-b, naming charge-a.
  auto first = event("charge-a", State::succeeded, t0);
  first.idempotency_key = "invoice-7";
  auto again = event("charge-a", State::succeeded, t0 + second);
  again.idempotency_key = "invoice-7";
  auto other = event("charge-b", State::succeeded, t0 + 2 * second);
  other.idempotency_key = "invoice-7";
  store->append({first, again});
  store->append({other});

  const auto of_a = store->anomalies("charge-a", 10);
  REQUIRE(of_a.size() == 2);
  CHECK(of_a[0].kind == AnomalyKind::duplicate_idempotency_key);
  CHECK(of_a[0].job_id == "charge-b");
  CHECK(of_a[0].other_job_id == "charge-a");
  CHECK(of_a[0].detail == "invoice-7");
  CHECK(of_a[1].kind == AnomalyKind::duplicate_success);
  CHECK(of_a[1].job_id == "charge-a");
  const auto of_b = store->anomalies("charge-b", 10);
  REQUIRE(of_b.size() == 1);
  CHECK(of_b[0].other_job_id == "charge-a");
  // A job without a key is never matched with other keyless jobs.
  store->append({event("plain-1", State::succeeded, t0), event("plain-1", State::succeeded, t0 + second),
                 event("plain-2", State::succeeded, t0)});
  CHECK(store->anomalies("plain-2", 10).empty());
  CHECK(store->anomalies("plain-1", 10).size() == 1);
  CHECK(store->anomalies("charge-a", 1).size() == 1);
}

TEST_CASE_METHOD(StoreFixture, "job IDs are found by prefix and by their neighbours", "[tracker][store]") {
  // Text IDs and hex IDs (stored compactly on SQLite) side by side, and IDs with LIKE's own
  // characters, which must match only themselves.
  std::vector<Event> events;
  for (const char* id : {"welcome-email-41", "welcome-email-42", "welcome-sms-1", "ab12cd34", "ab12ff00", "abc",
                         "a%b", "a_b", "axb", "0f"}) {
    events.push_back(event(id, State::enqueued, t0));
  }
  store->append(events);
  CHECK(store->job_ids_with_prefix("welcome-email", 10) == Ids{"welcome-email-41", "welcome-email-42"});
  CHECK(store->job_ids_with_prefix("welcome-", 2) == Ids{"welcome-email-41", "welcome-email-42"});
  CHECK(store->job_ids_with_prefix("ab12", 10) == Ids{"ab12cd34", "ab12ff00"});
  CHECK(store->job_ids_with_prefix("ab12c", 10) == Ids{"ab12cd34"});
  CHECK(store->job_ids_with_prefix("ab12f", 10) == Ids{"ab12ff00"});
  CHECK(store->job_ids_with_prefix("ab", 10) == Ids{"ab12cd34", "ab12ff00", "abc"});
  CHECK(store->job_ids_with_prefix("a%", 10) == Ids{"a%b"});
  CHECK(store->job_ids_with_prefix("a_", 10) == Ids{"a_b"});
  CHECK(store->job_ids_with_prefix("0", 10) == Ids{"0f"});
  CHECK(store->job_ids_with_prefix("f", 10).empty());
  CHECK(store->job_ids_with_prefix("welcome-email-42", 10) == Ids{"welcome-email-42"});
  CHECK(store->job_ids_with_prefix("", 10).empty());

  const auto near = store->job_ids_near("welcome-email-43", 1);
  CHECK(near == Ids{"welcome-email-42", "welcome-sms-1"});
}

TEST_CASE_METHOD(StoreFixture, "stats group by queue, and take a class and a window", "[tracker][store]") {
  store->append({event("c-1", State::succeeded, t0, "ChargeJob", "billing"),
                 event("c-2", State::failed, t0 + 10 * second, "ChargeJob", "billing"),
                 event("c-3", State::succeeded, t0 + 20 * second, "ChargeJob", "urgent"),
                 event("e-1", State::succeeded, t0 + 5 * second, "EmailJob", "mailers"),
                 event("e-2", State::enqueued, t0 + 30 * second, "EmailJob", "urgent")});
  StatsFilter by_queue;
  by_queue.by = StatsGroup::queue;
  const auto queues = store->stats(by_queue);
  REQUIRE(queues.size() == 3);
  CHECK(queues[0].queue == "billing");
  CHECK(queues[0].job.empty());
  CHECK(queues[0].total == 2);
  CHECK(queues[0].failed == 1);
  CHECK(queues[1].queue == "mailers");
  CHECK(queues[2].queue == "urgent");
  CHECK(queues[2].total == 2);

  StatsFilter window;
  window.since = t0 + 5 * second;
  window.until = t0 + 20 * second;  // exclusive
  const auto in_window = store->stats(window);
  REQUIRE(in_window.size() == 2);
  CHECK(in_window[0].job == "ChargeJob");
  CHECK(in_window[0].total == 1);
  CHECK(in_window[1].job == "EmailJob");
  CHECK(in_window[1].total == 1);

  StatsFilter one_class;
  one_class.job = "EmailJob";
  one_class.by = StatsGroup::queue;
  const auto email = store->stats(one_class);
  REQUIRE(email.size() == 2);
  CHECK(email[0].queue == "mailers");
  CHECK(email[1].queue == "urgent");
  StatsFilter unknown;
  unknown.job = "NoSuchJob";
  CHECK(store->stats(unknown).empty());
}

TEST_CASE_METHOD(StoreFixture, "prunable counts what prune then deletes", "[tracker][store]") {
  std::vector<Event> events;
  for (int i = 0; i < 30; ++i) {
    const auto id = "old-" + std::to_string(i);
    events.push_back(event(id, State::enqueued, t0 + i));
    events.push_back(event(id, State::succeeded, t0 + second + i));
  }
  events.push_back(event("old-running", State::started, t0));
  events.push_back(event("new-1", State::succeeded, t0 + 100 * second));
  store->append(events);
  const Micros cutoff = t0 + 50 * second;
  const PruneResult would = store->prunable(cutoff);
  CHECK(would.jobs == 30);
  CHECK(would.events == 60);
  // Counting deletes nothing.
  CHECK(store->prunable(cutoff).jobs == 30);
  const PruneResult did = store->prune(cutoff);
  CHECK(did.jobs == would.jobs);
  CHECK(did.events == would.events);
  CHECK(did.check_results == would.check_results);
  CHECK(store->prunable(cutoff).jobs == 0);
}

TEST_CASE_METHOD(StoreFixture, "space freed by a prune is measured and given back", "[tracker][store]") {
  // Enough rows with long messages to fill many pages.
  std::vector<Event> events;
  const std::string message(2000, 'x');
  for (int i = 0; i < 2000; ++i) {
    auto failed = event("bulky-" + std::to_string(i), State::dead, t0 + i);
    failed.error = {"Timeout", message + std::to_string(i), ""};
    events.push_back(failed);
  }
  store->append(events);
  REQUIRE(store->prune(t0 + 100 * second).jobs == 2000);
  const SpaceReport report = store->reclaim_space();
  INFO(report.note);
  CHECK(report.bytes_before > 0);
  CHECK_FALSE(report.note.empty());
  if (!test_store.postgres()) {
    // SQLite gives the free pages back to the file system: the file shrinks by most of 4 MB.
    CHECK(report.bytes_after < report.bytes_before - 2'000'000);
    // A second time there is nothing left to give.
    const SpaceReport again = store->reclaim_space();
    CHECK(again.bytes_after == again.bytes_before);
    // Later prunes go in steps: the store now vacuums incrementally.
    store->append(events);
    REQUIRE(store->prune(t0 + 100 * second).jobs == 2000);
    const SpaceReport stepped = store->reclaim_space();
    CHECK(stepped.note.find("steps") != std::string::npos);
    CHECK(stepped.bytes_after < stepped.bytes_before);
  } else {
    CHECK(report.bytes_after <= report.bytes_before);
  }
  OpenOptions read_only;
  read_only.read_only = true;
  CHECK_THROWS_AS(test_store.open(read_only)->reclaim_space(), StoreError);
}

TEST_CASE_METHOD(StoreFixture, "impact lists the entities the matching jobs touched", "[tracker][store]") {
  auto tagged = [](std::string id, State state, Micros at, std::string job, std::vector<std::string> entities) {
    auto e = event(std::move(id), state, at, std::move(job));
    e.entities = std::move(entities);
    return e;
  };
  store->append({tagged("pay-1", State::dead, t0, "PaymentJob", {"customer:acme", "invoice:7"}),
                 tagged("pay-2", State::failed, t0 + second, "PaymentJob", {"customer:acme", "invoice:8"}),
                 tagged("pay-3", State::succeeded, t0 + 2 * second, "PaymentJob", {"customer:globex"}),
                 tagged("pay-4", State::dead, t0 + 3 * second, "PaymentJob", {}),
                 tagged("mail-1", State::dead, t0 + second, "EmailJob", {"customer:acme", "user:9"}),
                 tagged("pay-old", State::dead, t0 - 3600 * second, "PaymentJob", {"customer:initech"})});
  ImpactFilter filter;
  filter.job = "PaymentJob";
  filter.states = {State::failed, State::dead};
  filter.since = t0;
  const ImpactReport report = store->impact(filter);
  CHECK(report.matching_jobs == 3);  // pay-1, pay-2, pay-4
  CHECK(report.tagged_jobs == 2);
  CHECK(report.entity_count == 3);
  REQUIRE(report.by_type.size() == 2);
  CHECK(report.by_type[0] == std::pair<std::string, std::int64_t>{"customer", 1});
  CHECK(report.by_type[1] == std::pair<std::string, std::int64_t>{"invoice", 2});
  REQUIRE(report.entities.size() == 3);
  CHECK(report.entities[0].entity == "customer:acme");
  CHECK(report.entities[0].jobs == 2);
  CHECK(report.entities[0].job_ids == Ids{"pay-2", "pay-1"});
  CHECK(report.entities[0].first_at == t0);
  CHECK(report.entities[0].last_at == t0 + second);
  CHECK(report.entities[1].entity == "invoice:7");
  CHECK(report.entities[2].entity == "invoice:8");

  filter.limit = 1;
  filter.jobs_per_entity = 1;
  const ImpactReport short_report = store->impact(filter);
  CHECK(short_report.entity_count == 3);
  REQUIRE(short_report.entities.size() == 1);
  CHECK(short_report.entities[0].job_ids == Ids{"pay-2"});

  ImpactFilter succeeded;
  succeeded.states = {State::succeeded};
  const ImpactReport ok = store->impact(succeeded);
  REQUIRE(ok.entities.size() == 1);
  CHECK(ok.entities[0].entity == "customer:globex");

  ImpactFilter window;
  window.until = t0;
  const ImpactReport old = store->impact(window);
  REQUIRE(old.entities.size() == 1);
  CHECK(old.entities[0].entity == "customer:initech");
  ImpactFilter nothing;
  nothing.job = "NoSuchJob";
  CHECK(store->impact(nothing).matching_jobs == 0);
}

TEST_CASE_METHOD(StoreFixture, "impact keeps to one entity type when asked", "[tracker][store]") {
  auto tagged = [](std::string id, State state, Micros at, std::vector<std::string> entities) {
    auto e = event(std::move(id), state, at, "PaymentJob");
    e.entities = std::move(entities);
    return e;
  };
  // "customer.vip" and "customerx" start like "customer" but are other types.
  store->append({tagged("pay-1", State::dead, t0, {"customer:acme", "invoice:7"}),
                 tagged("pay-2", State::failed, t0 + second, {"invoice:8"}),
                 tagged("pay-3", State::dead, t0 + 2 * second, {"customer.vip:globex", "customerx:1"}),
                 tagged("pay-4", State::dead, t0 + 3 * second, {})});
  ImpactFilter filter;
  filter.since = t0;
  filter.entity_type = "customer";
  const ImpactReport customers = store->impact(filter);
  CHECK(customers.matching_jobs == 4);  // every job matched; one touched a customer
  CHECK(customers.tagged_jobs == 1);
  CHECK(customers.entity_count == 1);
  REQUIRE(customers.by_type.size() == 1);
  CHECK(customers.by_type[0] == std::pair<std::string, std::int64_t>{"customer", 1});
  REQUIRE(customers.entities.size() == 1);
  CHECK(customers.entities[0].entity == "customer:acme");
  CHECK(customers.entities[0].job_ids == Ids{"pay-1"});

  filter.entity_type = "invoice";
  const ImpactReport invoices = store->impact(filter);
  CHECK(invoices.tagged_jobs == 2);
  REQUIRE(invoices.entities.size() == 2);
  CHECK(invoices.entities[0].entity == "invoice:7");
  CHECK(invoices.entities[1].entity == "invoice:8");

  filter.entity_type = "user";
  const ImpactReport none = store->impact(filter);
  CHECK(none.matching_jobs == 4);
  CHECK(none.tagged_jobs == 0);
  CHECK(none.entities.empty());
  CHECK(none.by_type.empty());
}

TEST_CASE_METHOD(StoreFixture, "impact with max_jobs reads the newest jobs and still counts every match",
                 "[tracker][store]") {
  // 100 jobs 37 s apart (13 of the kept counts' 5-minute buckets, t0 not on a bucket's start),
  // two classes, four states, seven customers.
  struct Job {
    std::string id, job, customer;
    State state;
    Micros at;
  };
  const State states[] = {State::failed, State::dead, State::succeeded, State::started};
  std::vector<Job> jobs;
  std::vector<Event> events;
  for (int i = 0; i < 100; ++i) {
    Job job{"job-" + std::to_string(i), i % 2 ? "EmailJob" : "PaymentJob", "customer:c" + std::to_string(i % 7),
            states[i % 4], t0 + i * 37 * second};
    auto e = event(job.id, job.state, job.at, job.job);
    e.entities = {job.customer};
    events.push_back(std::move(e));
    jobs.push_back(std::move(job));
  }
  store->append(events);

  const Micros bucket = tally_bucket_length;
  const std::optional<Micros> windows[][2] = {
      {t0 + 130 * second, t0 + 2500 * second},                     // both ends inside a bucket
      {tally_bucket_start(t0) + bucket, tally_bucket_start(t0) + 6 * bucket},  // on bucket starts
      {t0 + 10 * second, std::nullopt},                             // up to now
      {t0 + 400 * second, t0 + 500 * second},                       // within one bucket
      {std::nullopt, t0 + 1000 * second}};                          // no start
  ImpactFilter filters[3];
  filters[1].job = "PaymentJob";
  filters[2].states = {State::dead, State::started};
  for (const auto& window : windows) {
    for (ImpactFilter filter : filters) {
      filter.since = window[0];
      filter.until = window[1];
      filter.limit = 1000;
      // The matching jobs, newest first, as impact must see them.
      std::vector<const Job*> matching;
      for (const Job& job : jobs) {
        const bool in_window = (!filter.since || job.at >= *filter.since) && (!filter.until || job.at < *filter.until);
        const bool of_class = filter.job.empty() || job.job == filter.job;
        const bool in_state = filter.states.empty() ||
                              std::find(filter.states.begin(), filter.states.end(), job.state) != filter.states.end();
        if (in_window && of_class && in_state) matching.push_back(&job);
      }
      std::reverse(matching.begin(), matching.end());
      for (const std::size_t max_jobs : {std::size_t{0}, std::size_t{1}, std::size_t{5}, matching.size(), std::size_t{1000}}) {
        filter.max_jobs = max_jobs;
        CAPTURE(filter.since.value_or(-1) - t0, filter.until.value_or(-1) - t0, filter.job, filter.states.size(), max_jobs);
        const ImpactReport report = store->impact(filter);
        const std::size_t read = max_jobs == 0 ? matching.size() : std::min(max_jobs, matching.size());
        CHECK(report.matching_jobs == static_cast<std::int64_t>(matching.size()));
        CHECK(report.read_jobs == static_cast<std::int64_t>(read));
        CHECK(report.complete() == (read == matching.size()));
        CHECK(report.tagged_jobs == static_cast<std::int64_t>(read));
        // Each entity's jobs are those of the newest `read` matching jobs.
        std::map<std::string, std::int64_t> expected;
        for (std::size_t i = 0; i < read; ++i) expected[matching[i]->customer] += 1;
        std::map<std::string, std::int64_t> found;
        for (const EntityImpact& entity : report.entities) found[entity.entity] = entity.jobs;
        CHECK(found == expected);
        if (read > 0) {
          const auto newest = std::find_if(report.entities.begin(), report.entities.end(),
                                           [&](const EntityImpact& e) { return e.entity == matching[0]->customer; });
          REQUIRE(newest != report.entities.end());
          CHECK(newest->job_ids.front() == matching[0]->id);
        }
      }
    }
  }
}

TEST_CASE_METHOD(StoreFixture, "impact names the newest jobs of an entity, equal times by ID, however they arrived",
                 "[tracker][store]") {
  // More jobs of one microsecond than an entity keeps while reading: which two are named
  // must not depend on the order they were written in (nor on the store's row numbers).
  std::vector<Event> events;
  for (const char* id : {"tie-5", "tie-2", "tie-6", "tie-0", "tie-3", "tie-1", "tie-4", "tie-8", "tie-7"}) {
    auto e = event(id, State::dead, t0);
    e.entities = {"customer:tie"};
    events.push_back(std::move(e));
  }
  store->append(events);
  ImpactFilter filter;
  filter.since = t0;
  filter.jobs_per_entity = 2;
  const ImpactReport tied = store->impact(filter);
  REQUIRE(tied.entities.size() == 1);
  CHECK(tied.entities[0].jobs == 9);
  CHECK(tied.entities[0].job_ids == Ids{"tie-0", "tie-1"});

  auto newer = event("tie-9", State::dead, t0 + 1);
  newer.entities = {"customer:tie"};
  store->append({newer});
  CHECK(store->impact(filter).entities[0].job_ids == Ids{"tie-9", "tie-0"});
  filter.jobs_per_entity = 0;
  CHECK(store->impact(filter).entities[0].job_ids.empty());
}
