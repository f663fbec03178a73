// The store's semantics, on SQLite and (registered again by jobtrail_postgres_tests) on a real
// PostgreSQL server. Tags: [store] runs on the backend under test (TestStore); [sqlite] only on
// SQLite; [.postgres] only on PostgreSQL (hidden from the plain, SQLite registration).

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "jobtrail/store.h"
#include "pg_test_database.h"
#include "temp_dir.h"
#include "test_store.h"

using namespace jobtrail;

namespace {

constexpr Micros t0 = 1'790'000'000'000'000;
constexpr Micros second = 1'000'000;

Event event(std::string job_id, State state, Micros at, std::string job = "ChargeJob") {
  Event e;
  e.job_id = std::move(job_id);
  e.state = state;
  e.at = at;
  e.job = std::move(job);
  e.queue = "billing";
  e.attempt = 1;
  return e;
}

std::vector<std::string> ids(const std::vector<JobRecord>& jobs) {
  std::vector<std::string> result;
  for (const auto& job : jobs) result.push_back(job.job_id);
  return result;
}

struct StoreFixture {
  testing::TestStore test_store;
  std::unique_ptr<Store> store = test_store.open();
};

StoreError::Kind open_error(const std::string& url, const OpenOptions& options = {}) {
  try {
    open_store(url, options);
  } catch (const StoreError& error) {
    return error.kind();
  }
  FAIL("the store opened: " << url);
  return StoreError::Kind::other;
}

OpenOptions read_only() {
  OpenOptions options;
  options.read_only = true;
  return options;
}

}  // namespace

TEST_CASE_METHOD(StoreFixture, "two successes of one job are kept and flagged", "[tracker][store]") {
  store->append({event("charge-1", State::started, t0), event("charge-1", State::succeeded, t0 + second)});
  auto second_run = event("charge-1", State::succeeded, t0 + 5 * second);
  second_run.attempt = 2;
  auto result = store->append({event("charge-1", State::started, t0 + 4 * second), second_run});
  CHECK(result.anomalies == 1);

  auto job = store->find_job("charge-1");
  CHECK(job->event_count == 4);
  CHECK(job->anomalies == (1u << static_cast<unsigned>(AnomalyKind::duplicate_success)));
  auto flagged = store->anomalies("", 10);
  REQUIRE(flagged.size() == 1);
  CHECK(flagged[0].job_id == "charge-1");
  CHECK(flagged[0].kind == AnomalyKind::duplicate_success);
  CHECK(flagged[0].at == t0 + 5 * second);

  JobFilter filter;
  filter.anomalies_only = true;
  CHECK(ids(store->list_jobs(filter)) == std::vector<std::string>{"charge-1"});
}

TEST_CASE_METHOD(StoreFixture, "two jobs succeeding under one idempotency key are flagged", "[tracker][store]") {
  auto first = event("charge-a", State::succeeded, t0);
  first.idempotency_key = "invoice-2017-08";
  auto second_job = event("charge-b", State::succeeded, t0 + second);
  second_job.idempotency_key = "invoice-2017-08";
  auto unrelated = event("charge-c", State::succeeded, t0 + second);
  unrelated.idempotency_key = "invoice-2017-09";

  SECTION("in separate batches") {
    store->append({first});
    store->append({second_job, unrelated});
  }
  SECTION("in one batch") { store->append({first, second_job, unrelated}); }
  SECTION("across store connections") {
    store->append({first});
    test_store.open()->append({second_job, unrelated});
  }

  auto flagged = store->anomalies("", 10);
  REQUIRE(flagged.size() == 1);
  CHECK(flagged[0].job_id == "charge-b");
  CHECK(flagged[0].other_job_id == "charge-a");
  CHECK(flagged[0].detail == "invoice-2017-08");
  CHECK(store->find_job("charge-a")->anomalies != 0);
  CHECK(store->find_job("charge-b")->anomalies != 0);
  CHECK(store->find_job("charge-c")->anomalies == 0);
}

TEST_CASE_METHOD(StoreFixture, "a key that came with the enqueue flags a second success under it",
                 "[tracker][store]") {
  // Senders often give the key once, at the enqueue, and not again on the outcome.
  auto first = event("refund-a", State::succeeded, t0);
  first.idempotency_key = "refund-77";
  auto enqueued = event("refund-b", State::enqueued, t0 + second);
  enqueued.idempotency_key = "refund-77";
  const auto succeeded = event("refund-b", State::succeeded, t0 + 2 * second);
  store->append({first});
  SECTION("with the enqueue in the same batch") { CHECK(store->append({enqueued, succeeded}).anomalies == 1); }
  SECTION("with the enqueue stored before") {
    store->append({enqueued});
    CHECK(test_store.open()->append({succeeded}).anomalies == 1);
  }
  CHECK(store->find_job("refund-a")->anomalies != 0);
  CHECK(store->find_job("refund-b")->anomalies != 0);
}

TEST_CASE_METHOD(StoreFixture, "a batch sent again is all duplicates, also when it did not name attempts",
                 "[tracker][store]") {
  // What a writer does when a commit's outcome is unknown (the connection broke on COMMIT): it
  // sends the batch again. Events without an attempt resolve to a later attempt once the job
  // moved on; they must still be recognized.
  std::vector<Event> batch;
  for (auto [state, offset] : {std::pair{State::started, 1}, {State::failed, 2}, {State::started, 3},
                               {State::succeeded, 4}}) {
    auto e = event("retried", state, t0 + offset * second);
    e.attempt = 0;
    batch.push_back(e);
  }
  CHECK(store->append(batch).stored == 4);
  const auto again = store->append(batch);
  CHECK(again.stored == 0);
  CHECK(again.duplicates == 4);
  CHECK(again.anomalies == 0);
  auto job = store->find_job("retried");
  CHECK(job->event_count == 4);
  CHECK(job->attempts == 2);
  CHECK(job->state == State::succeeded);
}

TEST_CASE_METHOD(StoreFixture, "a failed attempt under an idempotency key is no duplicate", "[tracker][store]") {
  auto failed = event("charge-a", State::failed, t0);
  failed.idempotency_key = "k";
  auto succeeded = event("charge-b", State::succeeded, t0 + second);
  succeeded.idempotency_key = "k";
  store->append({failed, succeeded});
  CHECK(store->anomalies("", 10).empty());
}

TEST_CASE_METHOD(StoreFixture, "entity tags find every job that touched an object", "[tracker][store]") {
  auto signup = event("signup-1", State::succeeded, t0, "SignupJob");
  signup.entities = {"user:42"};
  auto email = event("email-1", State::started, t0 + second, "WelcomeEmailJob");
  email.entities = {"user:42", "email:welcome"};
  auto other = event("email-2", State::started, t0 + second, "WelcomeEmailJob");
  other.entities = {"user:43"};
  store->append({signup, email, other});
  // A tag repeated on a later event is stored once.
  auto done = event("email-1", State::succeeded, t0 + 2 * second, "WelcomeEmailJob");
  done.entities = {"user:42"};
  store->append({done});

  JobFilter filter;
  filter.entity = "user:42";
  CHECK(ids(store->list_jobs(filter)) == std::vector<std::string>{"email-1", "signup-1"});
  filter.entity = "user:44";
  CHECK(store->list_jobs(filter).empty());
  CHECK(store->find_job("email-1")->entities == std::vector<std::string>{"email:welcome", "user:42"});
}

TEST_CASE_METHOD(StoreFixture, "entity tags come back as they were sent, whatever bytes they hold", "[tracker][store]") {
  // What PostgreSQL quotes and escapes in an array's text (braces, commas, quotes, backslashes,
  // white space, the word NULL), beside UTF-8 and a plain tag.
  const std::vector<std::string> tags = {"user:a,b",  "user:{x}",      "user:\"q\"", "user:back\\slash", "user:a b",
                                         "user:NULL", "user:\tx\n",   "user:caf\xC3\xA9", "user:42",   "user:\\\""};
  auto tagged = event("tagged-1", State::started, t0);
  tagged.correlation_id = "req-tags";
  tagged.entities = tags;
  store->append({tagged});
  auto sorted = tags;
  std::sort(sorted.begin(), sorted.end());
  CHECK(store->find_job("tagged-1")->entities == sorted);
  CHECK(store->jobs_in_trace("req-tags").at(0).entities == sorted);
  for (const auto& tag : tags) {
    JobFilter filter;
    filter.entity = tag;
    const auto jobs = store->list_jobs(filter);
    REQUIRE(ids(jobs) == std::vector<std::string>{"tagged-1"});
    CHECK(jobs.front().entities == sorted);
  }
  // A follower sees a write once every transaction begun before it has ended (PostgreSQL).
  ChangedJobs changed;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((changed = store->changed_jobs(JobFilter{}, ChangePosition{})).jobs.empty() &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(changed.jobs.size() == 1);
  CHECK(changed.jobs.front().entities == sorted);
}

TEST_CASE_METHOD(StoreFixture, "a trace returns every job of one request", "[tracker][store]") {
  auto parent = event("close-2017-08", State::succeeded, t0, "MonthCloseJob");
  parent.correlation_id = "req-7";
  auto child = event("invoice-1", State::succeeded, t0 + second, "InvoiceJob");
  child.correlation_id = "req-7";
  child.parent_job_id = "close-2017-08";
  auto stranger = event("invoice-2", State::succeeded, t0, "InvoiceJob");
  stranger.correlation_id = "req-8";
  store->append({child, stranger, parent});
  auto trace = store->jobs_in_trace("req-7");
  CHECK(ids(trace) == std::vector<std::string>{"close-2017-08", "invoice-1"});
  CHECK(trace[1].parent_job_id == "close-2017-08");
  CHECK(store->jobs_in_trace("req-9").empty());
}

TEST_CASE_METHOD(StoreFixture, "list filters combine", "[tracker][store]") {
  std::vector<Event> events;
  for (int i = 0; i < 10; ++i) {
    auto e = event("job-" + std::to_string(i), i % 2 ? State::failed : State::succeeded, t0 + i * second,
                   i < 5 ? "ChargeJob" : "EmailJob");
    e.queue = i % 3 ? "default" : "critical";
    events.push_back(e);
  }
  store->append(events);
  JobFilter filter;
  filter.states = {State::failed};
  CHECK(ids(store->list_jobs(filter)) == std::vector<std::string>{"job-9", "job-7", "job-5", "job-3", "job-1"});
  filter.job = "ChargeJob";
  CHECK(ids(store->list_jobs(filter)) == std::vector<std::string>{"job-3", "job-1"});
  filter = {};
  filter.queue = "critical";
  CHECK(ids(store->list_jobs(filter)) == std::vector<std::string>{"job-9", "job-6", "job-3", "job-0"});
  filter = {};
  filter.since = t0 + 7 * second;
  CHECK(ids(store->list_jobs(filter)) == std::vector<std::string>{"job-9", "job-8", "job-7"});
  filter.until = t0 + 9 * second;
  CHECK(ids(store->list_jobs(filter)) == std::vector<std::string>{"job-8", "job-7"});
  filter = {};
  filter.limit = 2;
  CHECK(ids(store->list_jobs(filter)) == std::vector<std::string>{"job-9", "job-8"});
  filter = {};
  filter.job = "NoSuchJob";
  CHECK(store->list_jobs(filter).empty());
}

TEST_CASE_METHOD(StoreFixture, "a list names several states: each state's jobs, newest first", "[tracker][store]") {
  std::vector<Event> events;
  const State states[] = {State::failed, State::dead, State::succeeded, State::started};
  for (int i = 0; i < 12; ++i) events.push_back(event("job-" + std::to_string(i), states[i % 4], t0 + i * second));
  store->append(events);
  JobFilter filter;
  filter.states = {State::failed, State::dead};
  CHECK(ids(store->list_jobs(filter)) == std::vector<std::string>{"job-9", "job-8", "job-5", "job-4", "job-1", "job-0"});
  filter.limit = 3;
  CHECK(ids(store->list_jobs(filter)) == std::vector<std::string>{"job-9", "job-8", "job-5"});
  CHECK(store->count_jobs(filter, 100) == 6);
  filter.states = {State::succeeded, State::dead, State::succeeded};  // a repeated state counts once
  CHECK(ids(store->list_jobs(filter)) == std::vector<std::string>{"job-10", "job-9", "job-6"});
  CHECK(store->count_jobs(filter, 100) == 6);
}

TEST_CASE_METHOD(StoreFixture, "pages of a list: every job once, in order, with a bounded count", "[tracker][store]") {
  std::vector<Event> events;
  // Two jobs per second: the cursor must order jobs that share a first event time.
  for (int i = 0; i < 25; ++i) events.push_back(event("job-" + std::to_string(i), State::failed, t0 + (i / 2) * second));
  store->append(events);
  JobFilter filter;
  filter.limit = 10;
  JobPage page = list_page(*store, filter);
  REQUIRE(page.jobs.size() == 10);
  CHECK(page.partial());
  CHECK(page.total == 25);
  CHECK(page.total_exact);
  std::vector<std::string> seen = ids(page.jobs);

  // Jobs landing between two pages, newer than all and older than all, must not shift the
  // next page: the newer ones belong before the cursor, the older one after the last page.
  store->append({event("newer-1", State::failed, t0 + 100 * second), event("older-1", State::failed, t0 - 100 * second)});
  filter.after = parse_cursor(page.next_cursor);
  REQUIRE(filter.after);
  page = list_page(*store, filter);
  CHECK(page.total == 16);  // 15 left of the first 25, and older-1
  for (const auto& id : ids(page.jobs)) seen.push_back(id);
  filter.after = parse_cursor(page.next_cursor);
  REQUIRE(filter.after);
  page = list_page(*store, filter, 2);
  CHECK(page.jobs.size() == 6);
  CHECK_FALSE(page.partial());
  CHECK(page.next_cursor.empty());
  CHECK(page.total == 6);
  for (const auto& id : ids(page.jobs)) seen.push_back(id);
  std::vector<std::string> expected;
  for (int i = 24; i >= 0; --i) {
    // Within one second the later-recorded job (higher row) comes first.
    expected.push_back("job-" + std::to_string(i));
  }
  expected.push_back("older-1");
  CHECK(seen == expected);

  // A count bounded at 3 jobs past the page says "more than" instead of walking everything.
  filter = {};
  filter.limit = 5;
  page = list_page(*store, filter, 3);
  CHECK(page.total == 8);
  CHECK_FALSE(page.total_exact);
}

TEST_CASE_METHOD(StoreFixture, "pages combine with filters and several states", "[tracker][store]") {
  std::vector<Event> events;
  for (int i = 0; i < 30; ++i) {
    auto e = event("job-" + std::to_string(i), i % 3 == 0 ? State::failed : i % 3 == 1 ? State::dead : State::succeeded,
                   t0 + i * second, i % 2 ? "ChargeJob" : "EmailJob");
    e.entities = {"user:42"};
    events.push_back(e);
  }
  store->append(events);
  JobFilter filter;
  filter.states = {State::failed, State::dead};
  filter.job = "ChargeJob";
  filter.entity = "user:42";
  filter.limit = 4;
  std::vector<std::string> seen;
  for (int pages = 0; pages < 10; ++pages) {
    const JobPage page = list_page(*store, filter);
    for (const auto& job : page.jobs) CHECK(job.entities == std::vector<std::string>{"user:42"});  // lists carry tags
    for (const auto& id : ids(page.jobs)) seen.push_back(id);
    if (!page.partial()) break;
    filter.after = parse_cursor(page.next_cursor);
    REQUIRE(filter.after);
  }
  // Odd i (ChargeJob) with i % 3 != 2: 27 25 21 19 15 13 9 7 3 1.
  CHECK(seen == std::vector<std::string>{"job-27", "job-25", "job-21", "job-19", "job-15", "job-13", "job-9", "job-7",
                                         "job-3", "job-1"});
}

TEST_CASE("a cursor is opaque text that only to_cursor writes", "[tracker]") {
  const ListPosition position{1'790'000'000'000'000, 42};
  const std::string cursor = to_cursor(position);
  CHECK(cursor.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == std::string::npos);
  CHECK(parse_cursor(cursor) == position);
  CHECK(parse_cursor(to_cursor({-5, 0})) == ListPosition{-5, 0});
  CHECK_FALSE(parse_cursor(""));
  CHECK_FALSE(parse_cursor("not a cursor"));
  CHECK_FALSE(parse_cursor(cursor + "A"));
  CHECK_FALSE(parse_cursor(cursor.substr(0, cursor.size() - 1)));
  CHECK_FALSE(parse_cursor("bjEuMS4x"));  // "n1.1.1": another version
  CHECK_FALSE(parse_cursor(to_cursor({1, -1})));
}

TEST_CASE_METHOD(StoreFixture, "follow: jobs written after a position (new or changed) in the order written",
                 "[tracker][store]") {
  // PostgreSQL shows a write once every transaction older than it has ended, and other tests
  // share the server: wait (briefly) until the `count` jobs written since `after` show.
  const auto settle = [&](const ChangePosition& after, std::size_t count) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (store->changed_jobs(JobFilter{}, after).jobs.size() < count && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  };
  const ChangePosition empty = store->last_change();
  CHECK(store->changed_jobs(JobFilter{}, empty).jobs.empty());
  store->append({event("a", State::enqueued, t0), event("b", State::started, t0 + second)});
  settle(empty, 2);
  const ChangePosition mark = store->last_change();
  CHECK(mark > empty);
  JobFilter filter;
  ChangedJobs none = store->changed_jobs(filter, mark);
  CHECK(none.jobs.empty());
  CHECK(none.next == mark);
  // A late job with an old first event still comes after the mark: follow sees arrivals.
  store->append({event("c", State::enqueued, t0 + 5 * second)});
  store->append({event("d", State::failed, t0 - 50 * second), event("e", State::dead, t0 + 9 * second)});
  // A job recorded before the mark that changes state comes again, as it is now: the defect
  // of issue 13, where `ls --state failed --follow` never showed a running job failing.
  store->append({event("b", State::failed, t0 + 20 * second)});
  settle(mark, 4);
  ChangedJobs changed = store->changed_jobs(filter, mark);
  CHECK(ids(changed.jobs) == std::vector<std::string>{"c", "d", "e", "b"});
  CHECK(changed.jobs.back().state == State::failed);
  CHECK(store->changed_jobs(filter, changed.next).jobs.empty());
  filter.states = {State::failed, State::dead};
  CHECK(ids(store->changed_jobs(filter, mark).jobs) == std::vector<std::string>{"d", "e", "b"});
  // Every term of the filter holds after the write.
  filter.job = "OtherJob";
  CHECK(store->changed_jobs(filter, mark).jobs.empty());
  filter.job.clear();
  // A full answer goes on where it stopped.
  filter.limit = 1;
  ChangedJobs first = store->changed_jobs(filter, mark);
  CHECK(ids(first.jobs) == std::vector<std::string>{"d"});
  CHECK(ids(store->changed_jobs(filter, first.next).jobs) == std::vector<std::string>{"e"});
  // A position past writes that match nothing moves on all the same: nothing is read twice.
  filter.limit = 50;
  filter.states = {State::cancelled};
  ChangedJobs unmatched = store->changed_jobs(filter, mark);
  CHECK(unmatched.jobs.empty());
  CHECK(unmatched.next >= changed.next);
  // A heartbeat only says the job still runs: it does not move the job.
  const ChangePosition before_f = store->last_change();
  store->append({event("f", State::started, t0 + 30 * second)});
  settle(before_f, 1);
  const ChangePosition running = store->last_change();
  store->append({event("f", State::heartbeat, t0 + 40 * second)});
  store->append({event("g", State::enqueued, t0 + 40 * second)});
  settle(running, 1);
  CHECK(ids(store->changed_jobs(JobFilter{}, running).jobs) == std::vector<std::string>{"g"});
  store->append({event("f", State::succeeded, t0 + 50 * second)});
  settle(running, 2);
  CHECK(ids(store->changed_jobs(JobFilter{}, running).jobs) == std::vector<std::string>{"g", "f"});
  // A job written twice since the position comes once, as it is now.
  const ChangePosition twice = store->last_change();
  store->append({event("a", State::started, t0 + 60 * second)});
  store->append({event("a", State::succeeded, t0 + 70 * second)});
  settle(twice, 1);
  changed = store->changed_jobs(JobFilter{}, twice);
  REQUIRE(ids(changed.jobs) == std::vector<std::string>{"a"});
  CHECK(changed.jobs.front().state == State::succeeded);
}

TEST_CASE_METHOD(StoreFixture, "stats count outcomes and time percentiles per class", "[tracker][store]") {
  std::vector<Event> events;
  // 20 charges: enqueued, started after i ms, running i*10 ms; every fifth one fails.
  for (int i = 1; i <= 20; ++i) {
    auto id = "charge-" + std::to_string(i);
    Micros base = t0 + i * second;
    events.push_back(event(id, State::enqueued, base));
    events.push_back(event(id, State::started, base + i * 1000));
    events.push_back(event(id, i % 5 == 0 ? State::failed : State::succeeded, base + i * 1000 + i * 10'000));
  }
  events.push_back(event("email-1", State::enqueued, t0, "EmailJob"));
  store->append(events);
  auto stats = store->stats(std::nullopt);
  REQUIRE(stats.size() == 2);
  const auto& charge = stats[0];
  CHECK(charge.job == "ChargeJob");
  CHECK(charge.total == 20);
  CHECK(charge.succeeded == 16);
  CHECK(charge.failed == 4);
  CHECK(charge.failure_rate == Approx(0.2));
  CHECK(charge.wait_p50 == 10'000);
  CHECK(charge.wait_p95 == 19'000);
  CHECK(charge.run_p50 == 100'000);
  CHECK(charge.run_p95 == 190'000);
  const auto& email = stats[1];
  CHECK(email.job == "EmailJob");
  CHECK(email.enqueued == 1);
  CHECK(email.failure_rate == 0);
  CHECK_FALSE(email.run_p50);

  auto recent = store->stats(t0 + 16 * second);
  REQUIRE(recent.size() == 1);
  CHECK(recent[0].total == 5);
}

namespace {

// Jobs of class `job` that waited waits[i] and then ran runs[i] microseconds, from `base` on.
std::vector<Event> timed_jobs(const std::string& job, const std::vector<Micros>& waits, const std::vector<Micros>& runs,
                              Micros base) {
  std::vector<Event> events;
  for (std::size_t i = 0; i < waits.size(); ++i) {
    const auto id = job + "-" + std::to_string(i);
    const Micros at = base + static_cast<Micros>(i) * second;
    events.push_back(event(id, State::enqueued, at, job));
    events.push_back(event(id, State::started, at + waits[i], job));
    events.push_back(event(id, State::succeeded, at + waits[i] + runs[i], job));
  }
  return events;
}

}  // namespace

TEST_CASE_METHOD(StoreFixture, "stats percentiles are nearest-rank, ties and small counts included",
                 "[tracker][store]") {
  // The p-th percentile of n values is the ceil(p/100 * n)-th smallest: one rule for every store.
  std::vector<Event> events;
  for (auto& part : {timed_jobs("One", {5000}, {7000}, t0),
                     timed_jobs("Two", {3000, 1000}, {10, 20}, t0),
                     timed_jobs("Three", {3000, 1000, 2000}, {30, 10, 20}, t0),
                     timed_jobs("Ties", {2000, 5000, 2000, 2000}, {4000, 4000, 4000, 4000}, t0),
                     // A start before its enqueue (clocks of two hosts) says nothing true: left out.
                     timed_jobs("Skewed", {-1000, 3000}, {500, 600}, t0)}) {
    events.insert(events.end(), part.begin(), part.end());
  }
  store->append(events);
  auto stats = store->stats(std::nullopt);
  REQUIRE(stats.size() == 5);
  struct Expected {
    const char* job;
    Micros wait_p50, wait_p95, run_p50, run_p95;
  };
  // Byte order of the class names, as every store sorts them.
  const Expected expected[] = {{"One", 5000, 5000, 7000, 7000},
                               {"Skewed", 3000, 3000, 500, 600},
                               {"Three", 2000, 3000, 20, 30},
                               {"Ties", 2000, 5000, 4000, 4000},
                               {"Two", 1000, 3000, 10, 20}};
  for (std::size_t i = 0; i < stats.size(); ++i) {
    INFO(expected[i].job);
    CHECK(stats[i].job == expected[i].job);
    CHECK(stats[i].wait_p50 == expected[i].wait_p50);
    CHECK(stats[i].wait_p95 == expected[i].wait_p95);
    CHECK(stats[i].run_p50 == expected[i].run_p50);
    CHECK(stats[i].run_p95 == expected[i].run_p95);
  }
}

TEST_CASE("SQLite and PostgreSQL give the same stats for the same jobs", "[tracker][.postgres]") {
  // Class k holds k jobs (1 to 41) with times drawn from a few values, so ties are common.
  std::vector<Event> events;
  std::uint64_t seed = 12345;
  auto next = [&seed](Micros range) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<Micros>((seed >> 33) % static_cast<std::uint64_t>(range)) * 1000;
  };
  for (int k = 1; k <= 41; k += 4) {
    std::vector<Micros> waits, runs;
    for (int i = 0; i < k; ++i) {
      waits.push_back(next(7) - 1000);  // now and then negative: left out by both
      runs.push_back(next(5));
    }
    auto part = timed_jobs("Class" + std::to_string(k), waits, runs, t0);
    events.insert(events.end(), part.begin(), part.end());
  }
  events.push_back(event("waiting", State::enqueued, t0, "Waiting"));
  testing::TestStore postgres;
  REQUIRE(postgres.postgres());
  testing::TempDir dir;
  auto sqlite = open_store(dir.file("same.db"));
  auto pg = postgres.open();
  sqlite->append(events);
  pg->append(events);
  for (std::optional<Micros> since : {std::optional<Micros>(), std::optional<Micros>(t0 + 3 * second)}) {
    auto from_sqlite = sqlite->stats(since);
    auto from_pg = pg->stats(since);
    REQUIRE(from_sqlite.size() == from_pg.size());
    REQUIRE(from_sqlite.size() >= 10);
    for (std::size_t i = 0; i < from_sqlite.size(); ++i) {
      const auto& a = from_sqlite[i];
      const auto& b = from_pg[i];
      INFO(a.job);
      CHECK(a.job == b.job);
      CHECK(a.total == b.total);
      CHECK(a.enqueued == b.enqueued);
      CHECK(a.succeeded == b.succeeded);
      CHECK(a.failure_rate == b.failure_rate);
      CHECK(a.wait_p50 == b.wait_p50);
      CHECK(a.wait_p95 == b.wait_p95);
      CHECK(a.run_p50 == b.run_p50);
      CHECK(a.run_p95 == b.run_p95);
    }
  }
}

TEST_CASE_METHOD(StoreFixture, "prune trims the check history but keeps each check's newest and newest pass",
                 "[tracker][store]") {
  // Nightly runs of two checks: "orders" passed on nights 1 and 2 and fails since; "users"
  // fails every night; "stock" ran once, long ago.
  auto run_at = [&](Micros at, std::vector<std::pair<std::string, CheckStatus>> checks) {
    CheckRunRecord run{at, at + second, "checks.yaml", {}};
    for (auto& [name, status] : checks) {
      CheckResultRecord result;
      result.check = name;
      result.status = status;
      result.severity = "error";
      result.started_at = at;
      if (status != CheckStatus::pass) result.failing.push_back({"fp-" + name, at, "{}", ""});
      run.results.push_back(result);
    }
    return store->record_check_run(run);
  };
  constexpr Micros night = 86400 * second;
  run_at(t0 - 10 * night, {{"stock", CheckStatus::fail}});
  for (int n = 1; n <= 5; ++n) {
    run_at(t0 + n * night, {{"orders", n <= 2 ? CheckStatus::pass : CheckStatus::fail}, {"users", CheckStatus::fail}});
  }
  const auto pruned = store->prune(t0 + 4 * night + second);  // runs of nights 1 to 4 are older
  // orders: nights 1, 3 and 4 go, night 2 stays (its newest pass); users: nights 1 to 4 go.
  CHECK(pruned.check_results == 7);
  CHECK(store->check_history("orders", 10).size() == 2);
  CHECK(store->last_check_success("orders") == t0 + 2 * night);
  CHECK(store->check_history("users", 10).size() == 1);
  CHECK(store->last_check_result("users")->failing.size() == 1);  // its fingerprints stay
  CHECK(store->check_history("stock", 10).size() == 1);            // its newest, however old
  CHECK(store->prune(t0 + 4 * night + second).check_results == 0);
}

TEST_CASE_METHOD(StoreFixture, "a failing row's entity comes back with its fingerprint and sample", "[tracker][store]") {
  CheckRunRecord run{t0, t0 + second, "checks.yaml", {}};
  CheckResultRecord result;
  result.check = "unvalidated";
  result.status = CheckStatus::fail;
  result.started_at = t0;
  result.failing.push_back({"fp-42", t0, R"({"id":"42"})", "user:42"});
  result.failing.push_back({"fp-43", t0, "", ""});  // beyond the samples: no entity kept
  run.results.push_back(result);
  store->record_check_run(run);
  const auto stored = store->last_check_result("unvalidated");
  REQUIRE(stored);
  REQUIRE(stored->failing.size() == 2);
  for (const CheckViolation& violation : stored->failing) {
    CHECK(violation.entity == (violation.fingerprint == "fp-42" ? "user:42" : ""));
  }
}

TEST_CASE_METHOD(StoreFixture, "prune deletes old finished jobs and keeps running ones", "[tracker][store]") {
  auto old_done = event("old-done", State::succeeded, t0);
  old_done.entities = {"user:1"};
  old_done.error = {"E", "kept until pruned", ""};
  auto old_running = event("old-running", State::started, t0);
  auto fresh = event("fresh", State::succeeded, t0 + 100 * second);
  fresh.entities = {"user:2"};
  store->append({old_done, old_running, fresh});
  const Micros bucket = tally_bucket_start(t0);
  const std::vector<Micros> bounds{bucket, bucket + 2 * tally_bucket_length};
  auto counted = [&](State state) {
    std::int64_t jobs = 0;
    for (const JobTally& count : store->tally(bounds)) jobs += count.state == state ? count.jobs : 0;
    return jobs;
  };
  CHECK(counted(State::succeeded) == 2);
  CHECK(counted(State::started) == 1);
  auto pruned = store->prune(t0 + 50 * second);
  CHECK(pruned.jobs == 1);
  CHECK(pruned.events == 1);
  CHECK_FALSE(store->find_job("old-done"));
  CHECK(store->find_job("old-running"));
  CHECK(store->find_job("fresh"));
  JobFilter filter;
  filter.entity = "user:1";
  CHECK(store->list_jobs(filter).empty());
  CHECK(counted(State::succeeded) == 1);  // a pruned job is no longer counted
  CHECK(counted(State::started) == 1);
  // The store keeps working after a prune: the writer's cache must not resurrect rows.
  store->append({event("old-done", State::started, t0 + 200 * second)});
  CHECK(store->find_job("old-done")->event_count == 1);
  CHECK(counted(State::started) == 2);
}

TEST_CASE_METHOD(StoreFixture, "two connections writing in turn keep each other's rows", "[tracker][store]") {
  auto other = test_store.open();
  store->append({event("job-1", State::enqueued, t0)});
  other->append({event("job-1", State::started, t0 + second), event("job-2", State::enqueued, t0)});
  store->append({event("job-1", State::succeeded, t0 + 2 * second), event("job-3", State::enqueued, t0)});
  other->append({event("job-2", State::started, t0 + second)});
  auto job = store->find_job("job-1");
  CHECK(job->state == State::succeeded);
  CHECK(job->event_count == 3);
  CHECK(store->find_job("job-2")->state == State::started);
  CHECK(store->find_job("job-3"));
}

TEST_CASE_METHOD(StoreFixture, "an invalid event fails the whole append and stores nothing", "[tracker][store]") {
  auto bad = event("", State::started, t0);
  try {
    store->append({event("good", State::started, t0), bad});
    FAIL("append accepted an event without a job id");
  } catch (const StoreError& error) {
    CHECK(error.kind() == StoreError::Kind::invalid_event);
    CHECK(std::string(error.what()) == "event 1 (job \"\"): job_id is empty");
  }
  CHECK_FALSE(store->find_job("good"));
}

TEST_CASE_METHOD(StoreFixture, "read-only stores refuse writes", "[tracker][store]") {
  store->append({event("job-1", State::started, t0)});
  auto reader = test_store.open(read_only());
  CHECK(reader->find_job("job-1"));
  try {
    reader->append({event("job-2", State::started, t0)});
    FAIL("a read-only store took an append");
  } catch (const StoreError& error) {
    CHECK(error.kind() == StoreError::Kind::read_only);
  }
  CHECK_FALSE(store->find_job("job-2"));
  auto refuses = [](auto&& write) {
    try {
      write();
      return false;
    } catch (const StoreError& error) {
      return error.kind() == StoreError::Kind::read_only;
    }
  };
  CHECK(refuses([&] { reader->prune(t0 + 1000 * second); }));
  CHECK(refuses([&] { reader->register_schedule({"NightlyJob", second, 0, t0, std::nullopt}); }));
  CHECK(refuses([&] { reader->record_check_run({t0, t0 + second, "checks.yml", {}}); }));
  CHECK(store->find_job("job-1"));
  CHECK(store->schedules().empty());
}

TEST_CASE("a read-only open never creates a SQLite store", "[tracker][store][sqlite]") {
  testing::TempDir dir;
  auto missing = dir.file("missing.db");
  try {
    open_store(missing, read_only());
    FAIL("opened a missing store");
  } catch (const StoreError& error) {
    CHECK(error.kind() == StoreError::Kind::not_found);
    CHECK(std::string(error.what()) == "no jobtrail store at " + missing);
  }
  CHECK_FALSE(std::filesystem::exists(missing));
}

TEST_CASE("a read-only open never creates a PostgreSQL store", "[tracker][.postgres]") {
  test::TempPgDatabase database;
  CHECK(open_error(database.url(), read_only()) == StoreError::Kind::not_found);
  CHECK(testing::pg_rows(database.url(), "SELECT 1 FROM pg_namespace WHERE nspname = 'jobtrail'").empty());
  // Nor does a writer that may not create one.
  OpenOptions no_create;
  no_create.create = false;
  CHECK(open_error(database.url(), no_create) == StoreError::Kind::not_found);
  CHECK(testing::pg_rows(database.url(), "SELECT 1 FROM pg_namespace WHERE nspname = 'jobtrail'").empty());
  // A database that does not exist at all is not found either, and never created.
  const auto absent = test::pg_url_with_database(test::test_pg_url(), database.name() + "_absent");
  CHECK(open_error(absent, read_only()) == StoreError::Kind::not_found);
  CHECK(open_error(absent) == StoreError::Kind::not_found);
}

TEST_CASE("a schema named jobtrail that is not a store is refused, not migrated", "[tracker][.postgres]") {
  test::TempPgDatabase database;
  testing::pg_rows(database.url(), "CREATE SCHEMA jobtrail; CREATE TABLE jobtrail.users (id integer, email text)");
  CHECK(open_error(database.url()) == StoreError::Kind::not_a_store);
  CHECK(open_error(database.url(), read_only()) == StoreError::Kind::not_a_store);
  CHECK(testing::pg_rows(database.url(),
                         "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                         "WHERE n.nspname = 'jobtrail'") == std::vector<std::vector<std::string>>{{"users"}});
}

TEST_CASE("an application's own tables beside the store are left alone", "[tracker][.postgres]") {
  test::TempPgDatabase database;
  testing::pg_rows(database.url(), "CREATE TABLE public.jobs (id integer); INSERT INTO public.jobs VALUES (7)");
  auto store = open_store(database.url());
  store->append({event("job-1", State::started, t0)});
  CHECK(store->find_job("job-1"));
  CHECK(testing::pg_rows(database.url(), "SELECT id FROM public.jobs") == std::vector<std::vector<std::string>>{{"7"}});
}

TEST_CASE("an unreachable PostgreSQL server is a transient error", "[tracker][.postgres]") {
  testing::TempDir dir;
  // A socket directory without a server in it: nothing listens, as when the server is down.
  const std::string url = "postgresql:///jobtrail?host=" + dir.file("no-server") + "&port=5432&user=jobtrail";
  for (const auto& options : {OpenOptions{}, read_only()}) {
    try {
      open_store(url, options);
      FAIL("opened a store on a server that is not there");
    } catch (const StoreError& error) {
      INFO(error.what());
      CHECK(error.transient());
      CHECK(std::string(error.what()).find(url) != std::string::npos);
    }
  }
}

TEST_CASE_METHOD(StoreFixture, "events come back in lifecycle order with their errors", "[tracker][store]") {
  auto failed = event("job-1", State::failed, t0 + 2 * second);
  failed.error = {"Timeout::Error", "execution expired", "app/jobs/charge.rb:12\napp/jobs/charge.rb:3"};
  failed.worker = "host-a:12";
  store->append({failed, event("job-1", State::started, t0 + second), event("job-1", State::enqueued, t0)});
  auto events = store->events_of("job-1");
  REQUIRE(events.size() == 3);
  CHECK(events[0].state == State::enqueued);
  CHECK(events[1].state == State::started);
  CHECK(events[2].state == State::failed);
  CHECK(events[2].error.backtrace == "app/jobs/charge.rb:12\napp/jobs/charge.rb:3");
  CHECK(events[2].worker == "host-a:12");
  CHECK(store->find_job("job-1")->last_error.error_class == "Timeout::Error");
  CHECK(store->events_of("nope").empty());
}

TEST_CASE("store URLs", "[tracker][store][sqlite]") {
  testing::TempDir dir;
  auto path = dir.file("a.db");
  CHECK(open_store("sqlite:" + path)->location() == "sqlite:" + path);
  CHECK(open_store("sqlite://" + path)->location() == "sqlite:" + path);
  CHECK(open_store(path)->location() == "sqlite:" + path);
  CHECK(open_store("sqlite:" + path + "?sync=full")->location() == "sqlite:" + path);
  CHECK_THROWS_AS(open_store("sqlite:" + path + "?sync=sometimes"), StoreError);
  CHECK_THROWS_AS(open_store(""), StoreError);
  CHECK_THROWS_AS(open_store("mysql://localhost/x"), StoreError);
  try {
    open_store(dir.path().string());
    FAIL("opened a directory");
  } catch (const StoreError& error) {
    CHECK(error.kind() == StoreError::Kind::cannot_open);
  }
}

TEST_CASE("PostgreSQL store URLs", "[tracker][.postgres]") {
  test::TempPgDatabase database;
  const auto& url = database.url();  // postgresql:///NAME?host=DIR&port=5432&user=jobtrail
  CHECK(open_store(url)->location() == url);
  // The test server trusts its local users: a password is accepted, and never shown.
  CHECK(open_store(url + "&password=s3cret")->location() == url + "&password=***");
  CHECK(printable_url(url + "&sslpassword=k3y&password=s3cret") == url + "&sslpassword=***&password=***");
  const auto query = url.find('?');
  const auto with_user = "postgresql://jobtrail:s3cret@/" + database.name() + url.substr(query);
  const auto shown = open_store(with_user)->location();
  CHECK(shown == "postgresql://jobtrail:***@/" + database.name() + url.substr(query));
  CHECK(shown.find("s3cret") == std::string::npos);
  CHECK(open_store("postgres:///" + database.name() + url.substr(query))->schema_version() == latest_schema_version());
  try {
    open_store(url + "&password=s3cret&nosuchoption=1");
    FAIL("opened a URL with an unknown option");
  } catch (const StoreError& error) {
    CHECK_FALSE(error.transient());
    CHECK(std::string(error.what()).find("s3cret") == std::string::npos);
  }
}

TEST_CASE_METHOD(StoreFixture, "hex IDs read back unchanged, case and all, also through the jobs view",
                 "[tracker][store]") {
  const std::vector<std::string> job_ids = {"0123456789abcdef01234567", "ABCDEF", "abc", "c0ffee-1", "00"};
  std::vector<Event> events;
  for (const auto& id : job_ids) {
    auto e = event(id, State::succeeded, t0);
    e.correlation_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    e.parent_job_id = "0123456789abcdef01234567";
    e.idempotency_key = id;  // one key per job: no anomaly
    events.push_back(e);
  }
  store->append(events);
  for (const auto& id : job_ids) {
    auto job = store->find_job(id);
    REQUIRE(job);
    CHECK(job->job_id == id);
    CHECK(job->parent_job_id == "0123456789abcdef01234567");
    CHECK(job->correlation_id == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(store->events_of(id).size() == 1);
  }
  CHECK(store->jobs_in_trace("4bf92f3577b34da6a3ce929d0e0e4736").size() == job_ids.size());
  CHECK_FALSE(store->find_job("abcdef"));  // hex case matters: ABCDEF is another job
  CHECK(store->jobs_in_trace("4BF92F3577B34DA6A3CE929D0E0E4736").empty());

  // SQL checks read the IDs through the jobs view, as text, whatever the store keeps inside.
  std::vector<std::string> seen;
  if (test_store.postgres()) {
    const auto rows = testing::pg_rows(
        test_store.url(), "SELECT job_id, correlation_id FROM jobtrail.jobs ORDER BY job_id COLLATE \"C\"");
    for (const auto& row : rows) {
      seen.push_back(row[0]);
      CHECK(row[1] == "4bf92f3577b34da6a3ce929d0e0e4736");
    }
  } else {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(test_store.url().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* statement = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT job_id, correlation_id, parent_job_id FROM jobs ORDER BY job_id", -1,
                               &statement, nullptr) == SQLITE_OK);
    while (sqlite3_step(statement) == SQLITE_ROW) {
      seen.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(statement, 0)));
      CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(statement, 1))) ==
            "4bf92f3577b34da6a3ce929d0e0e4736");
    }
    sqlite3_finalize(statement);
    sqlite3_close(db);
  }
  CHECK(seen == std::vector<std::string>{"00", "0123456789abcdef01234567", "ABCDEF", "abc", "c0ffee-1"});
}

TEST_CASE_METHOD(StoreFixture, "listing by state finds unfinished and succeeded jobs", "[tracker][store]") {
  std::vector<Event> events;
  for (int i = 0; i < 50; ++i) events.push_back(event("job-" + std::to_string(i), State::succeeded, t0 + i));
  events.push_back(event("stuck", State::started, t0));
  store->append(events);
  JobFilter filter;
  filter.states = {State::started};
  CHECK(ids(store->list_jobs(filter)) == std::vector<std::string>{"stuck"});
  filter.states = {State::succeeded};
  filter.limit = 3;
  CHECK(ids(store->list_jobs(filter)) == std::vector<std::string>{"job-49", "job-48", "job-47"});
}

TEST_CASE_METHOD(StoreFixture, "schedules of cron jobs know their last run", "[tracker][store]") {
  constexpr Micros day = 86'400 * second;
  store->register_schedule({"NightlyReportJob", day, 3'600 * second, t0, std::nullopt});
  store->register_schedule({"HourlySyncJob", 3'600 * second, 0, t0, std::nullopt});
  store->append({event("report-1", State::succeeded, t0 + 10 * second, "NightlyReportJob"),
                 event("report-2", State::succeeded, t0 + day, "NightlyReportJob")});
  // Registering again updates, never duplicates.
  store->register_schedule({"NightlyReportJob", day, 2 * 3'600 * second, t0 + day, std::nullopt});
  auto schedules = store->schedules();
  REQUIRE(schedules.size() == 2);
  CHECK(schedules[0].job == "HourlySyncJob");
  CHECK_FALSE(schedules[0].last_run_at);
  CHECK(schedules[1].job == "NightlyReportJob");
  CHECK(schedules[1].grace == 2 * 3'600 * second);
  CHECK(schedules[1].updated_at == t0 + day);
  CHECK(schedules[1].last_run_at == t0 + day);
  CHECK_THROWS_AS(store->register_schedule({"", day, 0, 0, std::nullopt}), StoreError);
  CHECK_THROWS_AS(store->register_schedule({"X", 0, 0, 0, std::nullopt}), StoreError);
}

TEST_CASE_METHOD(StoreFixture, "active jobs count waiting and running jobs and their longest silence",
                 "[tracker][store]") {
  auto waiting = event("email-1", State::enqueued, t0 + 10 * second, "EmailJob");
  waiting.queue = "mailers";
  auto long_but_alive = event("export-1", State::started, t0, "ExportJob");
  auto beat = event("export-1", State::heartbeat, t0 + 50 * second, "ExportJob");
  auto silent = event("export-2", State::started, t0 + 20 * second, "ExportJob");
  store->append({waiting, long_but_alive, beat, silent, event("done", State::succeeded, t0, "ExportJob")});
  auto active = store->active_jobs();
  REQUIRE(active.size() == 2);
  CHECK(active[0].job == "EmailJob");
  CHECK(active[0].waiting == 1);
  CHECK(active[0].oldest_waiting_since == t0 + 10 * second);
  CHECK_FALSE(active[0].oldest_running_since);
  CHECK(active[1].job == "ExportJob");
  CHECK(active[1].running == 2);
  CHECK(active[1].oldest_running_since == t0);               // export-1 started first
  CHECK(active[1].longest_silent_since == t0 + 20 * second);  // but export-2 went quiet first
}

TEST_CASE_METHOD(StoreFixture, "text with escapes, quotes and any language reads back unchanged", "[tracker][store]") {
  auto failed = event("job-1", State::failed, t0, "Billing::\"Charge\"Job's");
  failed.queue = "low\tpriority";
  failed.worker = "host-ä:12";
  failed.entities = {"user:O'Brien", "file:C:\\temp\\a b.csv"};
  failed.error = {"Errno::ENOENT",
                  "no file \\N at C:\\temp\\new\tfile\r\nbut 'quotes' and \"these\" and 日本語 and 🙂",
                  "line 1\\nstill line 1\nline 2\\\\\n\\."};
  store->append({failed});
  auto job = store->find_job("job-1");
  REQUIRE(job);
  CHECK(job->job == failed.job);
  CHECK(job->queue == failed.queue);
  CHECK(job->worker == failed.worker);
  CHECK(job->last_error.message == failed.error.message);
  CHECK(job->last_error.backtrace == failed.error.backtrace);
  CHECK(job->entities == std::vector<std::string>{"file:C:\\temp\\a b.csv", "user:O'Brien"});
  auto events = store->events_of("job-1");
  REQUIRE(events.size() == 1);
  CHECK(events[0].error.message == failed.error.message);
  CHECK(events[0].error.backtrace == failed.error.backtrace);
  JobFilter filter;
  filter.entity = "user:O'Brien";
  CHECK(ids(store->list_jobs(filter)) == std::vector<std::string>{"job-1"});
  filter = {};
  filter.job = failed.job;
  CHECK(ids(store->list_jobs(filter)) == std::vector<std::string>{"job-1"});
}

TEST_CASE_METHOD(StoreFixture, "filters match names exactly, never as patterns", "[tracker][store]") {
  auto charge = event("job-1", State::succeeded, t0, "ChargeJob");
  charge.entities = {"user:42"};
  charge.queue = "billing";
  store->append({charge});
  for (const char* pattern : {"Charge%", "%", "_hargeJob", "chargejob", "ChargeJob "}) {
    JobFilter filter;
    filter.job = pattern;
    INFO(pattern);
    CHECK(store->list_jobs(filter).empty());
  }
  for (const char* pattern : {"user:%", "user:4_", "USER:42", "user:*"}) {
    JobFilter filter;
    filter.entity = pattern;
    INFO(pattern);
    CHECK(store->list_jobs(filter).empty());
  }
  JobFilter filter;
  filter.queue = "bill%";
  CHECK(store->list_jobs(filter).empty());
  CHECK(store->jobs_in_trace("%").empty());
  CHECK_FALSE(store->find_job("job-%"));
}

TEST_CASE_METHOD(StoreFixture, "an error message that is not valid UTF-8 does not lose its event",
                 "[tracker][store]") {
  // Exception texts come from anywhere: a Latin-1 file name, a cut multi-byte sequence, a NUL
  // from a binary buffer. Validation lets them through, so the store must keep the event.
  auto failed = event("job-1", State::failed, t0 + second);
  SECTION("Latin-1 and a cut sequence") {
    failed.error = {"IOError", std::string("cannot open caf\xe9.txt \xe6\x97"), ""};
  }
  SECTION("a NUL byte") {
    failed.error = {"IOError", std::string("cannot open caf\0.txt", 20), ""};
  }
  store->append({event("job-1", State::started, t0), failed});
  auto job = store->find_job("job-1");
  REQUIRE(job);
  CHECK(job->state == State::failed);
  CHECK(job->event_count == 2);
  CHECK(job->last_error.message.rfind("cannot open caf", 0) == 0);
}

TEST_CASE_METHOD(StoreFixture, "writers on many threads folding the same jobs lose nothing", "[tracker][store]") {
  // As workers on several hosts do: one enqueues, another runs, a third heartbeats.
  constexpr int jobs = 40;
  constexpr int writers = 4;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  std::vector<std::string> errors(writers);
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      try {
        auto own = test_store.open();
        for (int i = 0; i < jobs; ++i) {
          const auto id = "job-" + std::to_string(i);
          const State states[] = {State::enqueued, State::started, State::heartbeat, State::succeeded};
          own->append({event(id, states[w], t0 + w * second + i)});
        }
      } catch (const std::exception& error) {
        errors[static_cast<std::size_t>(w)] = error.what();
        failures += 1;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& error : errors) CHECK(error.empty());
  CHECK(failures == 0);
  for (int i = 0; i < jobs; ++i) {
    auto job = store->find_job("job-" + std::to_string(i));
    REQUIRE(job);
    CHECK(job->state == State::succeeded);
    CHECK(job->event_count == 4);
    CHECK(job->enqueued_at == t0 + i);
    CHECK(job->started_at == t0 + second + i);
    CHECK(job->heartbeat_at == t0 + 2 * second + i);
    CHECK(job->finished_at == t0 + 3 * second + i);
  }
}

TEST_CASE_METHOD(StoreFixture, "prune takes the anomalies of pruned jobs with them", "[tracker][store]") {
  auto first = event("old-charge", State::succeeded, t0);
  first.idempotency_key = "k";
  auto twice = event("old-charge", State::succeeded, t0 + second);
  auto other = event("old-other", State::succeeded, t0 + 2 * second);
  other.idempotency_key = "k";
  store->append({first, twice, other});
  REQUIRE(store->anomalies("", 10).size() == 2);
  auto fresh = event("fresh", State::succeeded, t0 + 100 * second);
  auto fresh_again = event("fresh", State::succeeded, t0 + 101 * second);
  store->append({fresh, fresh_again});
  auto pruned = store->prune(t0 + 50 * second);
  CHECK(pruned.jobs == 2);
  CHECK(pruned.events == 3);
  auto left = store->anomalies("", 10);
  REQUIRE(left.size() == 1);
  CHECK(left[0].job_id == "fresh");
  CHECK(store->anomalies("old-charge", 10).empty());
}

TEST_CASE_METHOD(StoreFixture, "a large batch goes in whole, once", "[tracker][store]") {
  std::vector<Event> events;
  for (int i = 0; i < 5000; ++i) {
    auto id = "bulk-" + std::to_string(i / 2);
    events.push_back(event(id, i % 2 ? State::succeeded : State::started, t0 + i));
  }
  auto result = store->append(events);
  CHECK(result.stored == 5000);
  auto again = test_store.open()->append(events);
  CHECK(again.stored == 0);
  CHECK(again.duplicates == 5000);
  JobFilter filter;
  filter.states = {State::succeeded};
  filter.limit = 10'000;
  CHECK(store->list_jobs(filter).size() == 2500);
}

TEST_CASE("after a server restart the store connects again and writes nothing twice", "[tracker][.postgres]") {
  test::PgCluster cluster;
  test::TempPgDatabase database(cluster.url());
  auto store = open_store(database.url());
  OpenOptions read_only_options;
  read_only_options.read_only = true;
  auto reader = open_store(database.url(), read_only_options);
  store->append({event("job-1", State::started, t0)});
  cluster.restart();
  // The first call after the restart may find its connection gone: a transient error, and the
  // batch is not stored. The writer retries it, as the tracker does.
  const std::vector<Event> batch = {event("job-1", State::succeeded, t0 + second), event("job-2", State::started, t0)};
  int attempts = 0;
  for (bool stored = false; !stored && attempts < 3; ++attempts) {
    try {
      store->append(batch);
      stored = true;
    } catch (const StoreError& error) {
      INFO(error.what());
      CHECK(error.transient());
    }
  }
  CHECK(attempts <= 2);
  // A retry of a batch that did go in (its answer lost with the connection) changes nothing.
  auto again = store->append(batch);
  CHECK(again.stored == 0);
  CHECK(again.duplicates == 2);
  std::optional<JobRecord> job;
  for (int i = 0; i < 2 && !job; ++i) {
    try {
      job = reader->find_job("job-1");
    } catch (const StoreError& error) {
      INFO(error.what());
      CHECK(error.transient());
    }
  }
  REQUIRE(job);
  CHECK(job->state == State::succeeded);
  CHECK(job->event_count == 2);
  CHECK(reader->events_of("job-2").size() == 1);
  // Connected again, the reader is still read-only.
  CHECK_THROWS_AS(reader->append({event("job-3", State::started, t0)}), StoreError);
  CHECK_FALSE(store->find_job("job-3"));
}

TEST_CASE_METHOD(StoreFixture, "an event without a worker leaves the job's worker as the last that named one",
                 "[tracker][store]") {
  auto started = event("w-1", State::started, t0);
  started.worker = "box-a:1";
  auto beat = event("w-1", State::heartbeat, t0 + second);  // relayed without a worker
  auto failed = event("w-1", State::failed, t0 + 2 * second);
  store->append({started, beat});
  store->append({failed});
  REQUIRE(store->find_job("w-1"));
  CHECK(store->find_job("w-1")->worker == "box-a:1");

  auto retry = event("w-1", State::started, t0 + 10 * second);
  retry.attempt = 2;
  retry.worker = "box-b:2";
  store->append({retry});
  CHECK(store->find_job("w-1")->worker == "box-b:2");
  // A late event of the first attempt names where that attempt ran, not where the job is now.
  auto late = event("w-1", State::heartbeat, t0 + 3 * second);
  late.worker = "box-a:1";
  store->append({late});
  CHECK(store->find_job("w-1")->worker == "box-b:2");
  const auto events = store->events_of("w-1");
  REQUIRE(events.size() == 5);
  CHECK(events[1].worker.empty());  // stored as sent
}

TEST_CASE_METHOD(StoreFixture, "over-long free text is cut and marked, and the event is stored", "[tracker][store]") {
  auto failed = event("long-1", State::failed, t0);
  failed.worker = std::string(300, 'w');
  failed.error = {std::string(250, 'C'), std::string(9 * 1024, 'm'), std::string(70 * 1024, 'b')};
  const AppendResult result = store->append({failed});
  CHECK(result.stored == 1);
  const auto job = store->find_job("long-1");
  REQUIRE(job);
  CHECK(job->state == State::failed);
  const std::string marker(truncation_marker);
  CHECK(job->last_error.message.size() <= EventLimits::max_message_length);
  CHECK(job->last_error.message.ends_with(marker + "9216 bytes]"));
  CHECK(job->last_error.error_class.ends_with(marker + "250 bytes]"));
  CHECK(job->last_error.backtrace.ends_with(marker + "71680 bytes]"));
  CHECK(job->last_error.backtrace.size() <= EventLimits::max_backtrace_length);
  CHECK(job->worker.size() <= EventLimits::max_name_length);
  CHECK(job->worker.ends_with(marker + "300 bytes]"));
}

TEST_CASE("a URL libpq cannot parse never puts its password in the message", "[tracker][sqlite]") {
  // libpq's own message quotes the whole URI; the store must hide the password in it too.
  for (const std::string url : {"postgresql://u:pw-s3cret@[bad/db", "postgresql://u:pw%7As3cret@h:5432/db?port=x",
                                "postgresql://u:pw-s3cret@h/db?sslmode=bogus", "mysql://u:pw-s3cret@h/db",
                                "postgresql://h/db?password=pw-s3cret&port=notanumber",
                                "postgresql://u:pw-s3cret@h/db?sslpassword=key-s3cret&port=notanumber"}) {
    INFO(url);
    try {
      open_store(url);
      FAIL("opened " << url);
    } catch (const StoreError& error) {
      const std::string message = error.what();
      INFO(message);
      CHECK(message.find("s3cret") == std::string::npos);
      CHECK(message.find("pw") == std::string::npos);
    }
  }
  CHECK(without_secrets("invalid URI: \"postgresql://u:pw@[bad/db\"", "postgresql://u:pw@[bad/db") ==
        "invalid URI: \"postgresql://u:***@[bad/db\"");
  CHECK(without_secrets("bad \"postgresql://u:pw@h/db?sslpassword=key\"", "postgresql://u:pw@h/db?sslpassword=key") ==
        "bad \"postgresql://u:***@h/db?sslpassword=***\"");
  CHECK(without_secrets("token \"p%zzw\"", "postgresql://u:p%zzw@h/db") == "token \"***\"");
}

TEST_CASE("hiding passwords never searches its own stars again", "[tracker][store]") {
  // Found by fuzz_check_config (regressions/check_config/): hiding one secret after another in
  // place turned a password of "*" into "***", which the next "*" secret tripled again, and
  // a URL with many of them made a message that did not finish in two minutes.
  CHECK(without_secrets("x * y", "postgresql://u:*@h/db?password=*&sslpassword=**") == "x *** y");
  std::string url = "postgresql://h/db?";
  for (int i = 0; i < 60; ++i) url += "password=" + std::string(1 + i % 3, '*') + "&";
  const std::string shown = without_secrets("invalid \"" + url + "\" and * and ** and ***", url);
  CHECK(shown.size() < 2 * url.size());
  CHECK(shown.ends_with("\" and *** and *** and ***"));
}

TEST_CASE("a store is not created in a directory that does not exist", "[tracker][store][sqlite]") {
  testing::TempDir dir;
  const std::string path = dir.file("no-such-dir/jobs.db");
  try {
    open_store(path);
    FAIL("opened " << path);
  } catch (const StoreError& error) {
    CHECK(error.kind() == StoreError::Kind::cannot_open);
    CHECK(std::string(error.what()).find("the directory " + dir.file("no-such-dir") + " does not exist") !=
          std::string::npos);
  }
  CHECK_FALSE(std::filesystem::exists(dir.file("no-such-dir")));
}
