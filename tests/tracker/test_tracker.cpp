#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <prometheus/registry.h>
#include <set>
#include <thread>
#include <type_traits>

#include "error_reporter.h"
#include "fake_store.h"
#include "jobtrail/store.h"
#include "jobtrail/tracker.h"
#include "temp_dir.h"
#include "test_store.h"
#include "tracker_metrics.h"

using namespace jobtrail;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

Event make_event(std::string job_id, State state, std::string job = "ChargeJob") {
  Event event;
  event.job_id = std::move(job_id);
  event.state = state;
  event.job = std::move(job);
  event.queue = "billing";
  event.attempt = 1;
  return event;
}

void record_lifecycle(Tracker& tracker, const std::string& job_id) {
  REQUIRE(tracker.enqueue(make_event(job_id, State::enqueued)) == RecordStatus::queued);
  REQUIRE(tracker.record(make_event(job_id, State::started)) == RecordStatus::queued);
  REQUIRE(tracker.record(make_event(job_id, State::succeeded)) == RecordStatus::queued);
}

template <typename Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

/// Keeps every other writer out of a store from a connection of its own, the way another
/// process writing at length would: SQLite's write lock, or on PostgreSQL an EXCLUSIVE lock on
/// the job table (readers go on reading). Not thread-safe.
class WriteLock {
 public:
  explicit WriteLock(const testing::TestStore& store) {
    if (store.postgres()) {
      postgres_ = PQconnectdb(store.url().c_str());
      REQUIRE(PQstatus(postgres_) == CONNECTION_OK);
      execute_postgres("BEGIN");
      execute_postgres("LOCK TABLE jobtrail.job IN EXCLUSIVE MODE");
    } else {
      REQUIRE(sqlite3_open(store.url().c_str(), &sqlite_) == SQLITE_OK);
      REQUIRE(sqlite3_exec(sqlite_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
    }
  }
  ~WriteLock() {
    release();
    if (sqlite_ != nullptr) sqlite3_close(sqlite_);
    if (postgres_ != nullptr) PQfinish(postgres_);
  }
  WriteLock(const WriteLock&) = delete;
  WriteLock& operator=(const WriteLock&) = delete;

  void release() {
    if (held_ && sqlite_ != nullptr) sqlite3_exec(sqlite_, "ROLLBACK", nullptr, nullptr, nullptr);
    if (held_ && postgres_ != nullptr) PQclear(PQexec(postgres_, "ROLLBACK"));
    held_ = false;
  }

 private:
  void execute_postgres(const char* sql) {
    PGresult* result = PQexec(postgres_, sql);
    INFO(sql << ": " << PQresultErrorMessage(result));
    const bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
    PQclear(result);
    REQUIRE(ok);
  }

  sqlite3* sqlite_ = nullptr;
  PGconn* postgres_ = nullptr;
  bool held_ = true;
};

/// A tracker over the store under test (tests/common/test_store.h): SQLite or PostgreSQL.
struct StoreFixture {
  testing::TestStore test_store;
  const std::string& path = test_store.url();
  testing::CapturedMessages messages;

  TrackerOptions options() {
    TrackerOptions options;
    options.error_handler = messages.handler();
    return options;
  }
  /// A store that gives up on a locked database quickly, so tests need not wait 10 s.
  std::unique_ptr<Store> impatient_store() {
    OpenOptions open;
    open.busy_timeout_ms = 20;
    return open_store(path, open);
  }
};

struct FakeFixture {
  std::shared_ptr<testing::FakeStoreState> state = std::make_shared<testing::FakeStoreState>();
  testing::CapturedMessages messages;

  TrackerOptions options() {
    TrackerOptions options;
    options.error_handler = messages.handler();
    return options;
  }
  std::unique_ptr<Store> store() { return std::make_unique<testing::FakeStore>(state); }
};

bool any_message_contains(const std::vector<std::string>& messages, const std::string& part) {
  for (const auto& message : messages) {
    if (message.find(part) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE_METHOD(StoreFixture, "every accepted event is in the store once the tracker is gone", "[tracker][store]") {
  constexpr int jobs = 200;
  {
    Tracker tracker(path, options());
    for (int i = 0; i < jobs; ++i) record_lifecycle(tracker, "job-" + std::to_string(i));
  }
  auto store = open_store(path);
  for (int i = 0; i < jobs; ++i) {
    const auto job = store->find_job("job-" + std::to_string(i));
    REQUIRE(job);
    CHECK(job->state == State::succeeded);
    CHECK(store->events_of(job->job_id).size() == 3);
  }
  CHECK(messages.all().empty());
}

TEST_CASE_METHOD(StoreFixture, "flush waits until everything accepted so far is committed", "[tracker][store]") {
  auto tracker_options = options();
  tracker_options.flush_interval = 10s;  // only the flush can make the writer commit in time
  Tracker tracker(path, tracker_options);
  record_lifecycle(tracker, "job-1");
  REQUIRE(tracker.flush(5s));
  const auto job = open_store(path)->find_job("job-1");
  REQUIRE(job);
  CHECK(job->state == State::succeeded);
  const auto counters = tracker.counters();
  CHECK(counters.accepted == 3);
  CHECK(counters.stored == 3);
  CHECK(tracker.flush(0ms));  // nothing left to wait for
}

TEST_CASE_METHOD(StoreFixture, "record_durable returns once another connection can read the event",
                 "[tracker][store]") {
  auto tracker_options = options();
  tracker_options.flush_interval = 10s;
  Tracker tracker(path, tracker_options);
  auto reader = open_store(path, OpenOptions{.read_only = true});
  REQUIRE(tracker.record(make_event("payment-1", State::started)) == RecordStatus::queued);

  const auto started = Clock::now();
  REQUIRE(tracker.record_durable(make_event("payment-1", State::succeeded)) == RecordStatus::durable);
  CHECK(Clock::now() - started < 5s);

  const auto job = reader->find_job("payment-1");
  REQUIRE(job);
  CHECK(job->state == State::succeeded);
  CHECK(reader->events_of("payment-1").size() == 2);
}

TEST_CASE_METHOD(StoreFixture, "a store locked by another writer fills the queue, which drops and counts",
                 "[tracker][store]") {
  auto tracker_options = options();
  tracker_options.queue_capacity = 16;
  tracker_options.flush_interval = 5ms;
  Tracker tracker(impatient_store(), tracker_options);
  WriteLock lock(test_store);

  for (int i = 0; i < 8; ++i) {
    REQUIRE(tracker.record(make_event("early-" + std::to_string(i), State::started)) == RecordStatus::queued);
  }
  // The writer now holds those 8 and retries against the lock ...
  REQUIRE(eventually([&] { return tracker.counters().store_errors >= 1; }));

  // ... while recording goes on, fast, into the rest of the bounded queue.
  int queued = 0;
  int full = 0;
  const auto started = Clock::now();
  for (int i = 0; i < 20; ++i) {
    const auto status = tracker.record(make_event("late-" + std::to_string(i), State::started));
    queued += status == RecordStatus::queued;
    full += status == RecordStatus::queue_full;
  }
  CHECK(Clock::now() - started < 100ms);
  CHECK(queued == 8);
  CHECK(full == 12);
  CHECK(tracker.counters().dropped_queue_full == 12);
  // The writer counts the error before it reports it: the line may come a moment after the count
  // (seen under ASan in CI).
  CHECK(eventually([&] { return any_message_contains(messages.all(), "retrying"); }));

  lock.release();
  REQUIRE(tracker.flush(10s));
  const auto counters = tracker.counters();
  CHECK(counters.accepted == 16);
  CHECK(counters.stored == 16);
  CHECK(counters.dropped_store_error == 0);
  auto store = open_store(path);
  CHECK(store->find_job("early-7"));
  CHECK(store->find_job("late-7"));
  CHECK_FALSE(store->find_job("late-8"));
}

TEST_CASE_METHOD(StoreFixture, "shutdown gives up at its timeout and counts what it could not commit",
                 "[tracker][store]") {
  Tracker tracker(impatient_store(), options());
  WriteLock lock(test_store);
  for (int i = 0; i < 5; ++i) record_lifecycle(tracker, "stuck-" + std::to_string(i));

  const auto started = Clock::now();
  tracker.shutdown(300ms);
  CHECK(Clock::now() - started < 2s);
  const auto counters = tracker.counters();
  CHECK(counters.accepted == 15);
  CHECK(counters.stored == 0);
  CHECK(counters.dropped_store_error == 15);
  CHECK(any_message_contains(messages.all(), "shutdown timeout"));
  CHECK(tracker.record(make_event("late", State::started)) == RecordStatus::shut_down);
}

TEST_CASE_METHOD(FakeFixture, "invalid events are counted and reported, never thrown", "[tracker]") {
  Tracker tracker(store(), options());
  Event no_id = make_event("", State::started);
  Event bad_entity = make_event("job-1", State::started);
  bad_entity.entities = {"not an entity"};
  Event long_id = make_event(std::string(EventLimits::max_id_length + 1, 'x'), State::started);
  Event negative_attempt = make_event("job-2", State::started);
  negative_attempt.attempt = -1;
  Event unknown_state = make_event("job-3", static_cast<State>(42));

  for (auto* event : {&no_id, &bad_entity, &long_id, &negative_attempt, &unknown_state}) {
    RecordStatus status = RecordStatus::queued;
    REQUIRE_NOTHROW(status = tracker.record(*event));
    CHECK(status == RecordStatus::invalid);
  }
  CHECK(tracker.record_durable(no_id) == RecordStatus::invalid);
  REQUIRE(tracker.flush(5s));
  CHECK(tracker.counters().dropped_invalid == 6);
  CHECK(tracker.counters().accepted == 0);
  CHECK(state->committed().empty());
  const auto reported = messages.all();
  REQUIRE(reported.size() == 1);  // rate-limited: the rest are folded into the next message
  CHECK(reported[0].find("job_id is empty") != std::string::npos);
}

TEST_CASE_METHOD(FakeFixture, "the tracker stamps the time and the worker on events that lack them",
                 "[tracker]") {
  auto tracker_options = options();
  tracker_options.worker = "web-3:1234";
  Tracker tracker(store(), tracker_options);
  CHECK(tracker.worker() == "web-3:1234");
  const Micros before = now_micros();
  Event named = make_event("job-2", State::started);
  named.worker = "cron-host:1";
  named.at = 1'700'000'000'000'000;
  tracker.record(make_event("job-1", State::started));
  tracker.record(named);
  REQUIRE(tracker.flush(5s));
  const auto events = state->committed();
  REQUIRE(events.size() == 2);
  CHECK(events[0].worker == "web-3:1234");
  CHECK(events[0].at >= before);
  CHECK(events[0].at <= now_micros());
  CHECK(events[1].worker == "cron-host:1");
  CHECK(events[1].at == 1'700'000'000'000'000);
}

// Only check_event() makes a CheckedEvent: holding one is proof that it passed.
static_assert(!std::is_constructible_v<CheckedEvent, Event>);
static_assert(!std::is_constructible_v<CheckedEvent, Event&&>);

TEST_CASE("check_event applies the time rule, the cut and validation_error in that order", "[tracker][event]") {
  const Micros now = 1'790'000'000'000'000;
  Event event = make_event("job-1", State::failed);
  event.error.message.assign(EventLimits::max_message_length + 1, 'm');

  SECTION("a good event is cut and moved into the checked one") {
    event.at = now - 1;
    EventCheck check = check_event(event, now);
    REQUIRE(check.checked);
    CHECK(check.problem.empty());
    CHECK(check.cut.message);
    CHECK(check.checked->event().job_id == "job-1");
    CHECK(check.checked->event().error.message.size() <= EventLimits::max_message_length);
    CHECK(check.checked->event().at == now - 1);
  }
  SECTION("no time stays no time: it is stamped when recorded") {
    EventCheck check = check_event(event, now);
    REQUIRE(check.checked);
    CHECK(check.checked->event().at == 0);
  }
  SECTION("a wrong time is named before anything else wrong, and nothing is cut") {
    event.at = now / 1'000'000;  // seconds
    event.job_id.assign(EventLimits::max_id_length + 1, 'x');
    const EventCheck check = check_event(event, now);
    CHECK_FALSE(check.checked);
    CHECK(check.implausible_time);
    CHECK(check.problem == event_time_problem(event.at, now));
    CHECK_FALSE(check.cut.any());
  }
  SECTION("a refused event is left to the caller, cut, with validation_error's words") {
    event.entities = {"nope"};
    const EventCheck check = check_event(event, now);
    CHECK_FALSE(check.checked);
    CHECK_FALSE(check.implausible_time);
    CHECK(check.cut.message);
    CHECK(check.problem == validation_error(event));
    CHECK(event.job_id == "job-1");
  }
}

TEST_CASE_METHOD(FakeFixture, "a checked event is recorded as it is, its time stamped if it has none", "[tracker]") {
  auto tracker_options = options();
  tracker_options.worker = "web-3:1234";
  Tracker tracker(store(), tracker_options);
  Event timed = make_event("job-1", State::started);
  timed.at = 1'700'000'000'000'000;
  Event untimed = make_event("job-2", State::started);
  const Micros before = now_micros();
  auto first = check_event(timed, before);
  auto second = check_event(untimed, before);
  REQUIRE(first.checked);
  REQUIRE(second.checked);
  CHECK(tracker.record(std::move(*first.checked)) == RecordStatus::queued);
  CHECK(tracker.record(std::move(*second.checked)) == RecordStatus::queued);
  REQUIRE(tracker.flush(5s));
  const auto events = state->committed();
  REQUIRE(events.size() == 2);
  CHECK(events[0].at == 1'700'000'000'000'000);
  CHECK(events[1].at >= before);
  CHECK(events[1].at <= now_micros());
  CHECK(events[1].worker == "web-3:1234");
  CHECK(tracker.counters().accepted == 2);
}

TEST_CASE_METHOD(FakeFixture, "the default worker name is host:pid", "[tracker]") {
  Tracker tracker(store(), options());
  const std::string& worker = tracker.worker();
  const auto colon = worker.rfind(':');
  REQUIRE(colon != std::string::npos);
  CHECK(colon > 0);
  CHECK(worker.substr(colon + 1) == std::to_string(getpid()));
}

TEST_CASE_METHOD(FakeFixture, "one event the store refuses does not take its batch down with it", "[tracker]") {
  state->poison_throws_runtime_error = GENERATE(false, true);
  state->poison_job_id = "poison";
  state->block();  // so that all ten land in one batch
  Tracker tracker(store(), options());
  for (int i = 0; i < 10; ++i) {
    tracker.record(make_event(i == 4 ? "poison" : "job-" + std::to_string(i), State::started));
  }
  state->unblock();
  REQUIRE(tracker.flush(5s));

  const auto counters = tracker.counters();
  CHECK(counters.stored == 9);
  CHECK(counters.dropped_store_error == 1);
  CHECK(counters.store_errors >= 2);  // the batch, then the poison alone
  CHECK(state->committed().size() == 9);
  CHECK(state->committed_of("poison").empty());
  CHECK(any_message_contains(messages.all(), "refused"));
}

TEST_CASE_METHOD(FakeFixture, "record_durable says timed_out for an event the store refuses", "[tracker]") {
  state->poison_job_id = "poison";
  auto tracker_options = options();
  tracker_options.durable_timeout = 10s;
  Tracker tracker(store(), tracker_options);
  const auto started = Clock::now();
  CHECK(tracker.record_durable(make_event("poison", State::succeeded)) == RecordStatus::timed_out);
  CHECK(Clock::now() - started < 5s);  // told at once, not after durable_timeout
  CHECK(tracker.record_durable(make_event("fine", State::succeeded)) == RecordStatus::durable);
}

TEST_CASE_METHOD(FakeFixture, "a busy store is retried until it takes the batch", "[tracker]") {
  state->transient_failures_left = 3;
  Tracker tracker(store(), options());
  record_lifecycle(tracker, "job-1");
  REQUIRE(tracker.flush(5s));  // backoff 50 + 100 + 200 ms
  const auto counters = tracker.counters();
  CHECK(counters.store_errors == 3);
  CHECK(counters.stored == 3);
  CHECK(counters.dropped_store_error == 0);
  CHECK(state->committed().size() == 3);
}

TEST_CASE_METHOD(FakeFixture, "record_durable times out while the store is stuck", "[tracker]") {
  auto tracker_options = options();
  tracker_options.durable_timeout = 100ms;
  Tracker tracker(store(), tracker_options);
  state->block();
  CHECK(tracker.record_durable(make_event("job-1", State::succeeded)) == RecordStatus::timed_out);
  CHECK_FALSE(tracker.flush(50ms));
  state->unblock();
  CHECK(tracker.flush(5s));
  CHECK(state->committed().size() == 1);
}

TEST_CASE_METHOD(FakeFixture, "batches never exceed max_batch", "[tracker]") {
  auto tracker_options = options();
  tracker_options.max_batch = 7;
  state->block();
  Tracker tracker(store(), tracker_options);
  for (int i = 0; i < 100; ++i) tracker.record(make_event("job-" + std::to_string(i), State::started));
  state->unblock();
  REQUIRE(tracker.flush(5s));
  std::size_t total = 0;
  for (std::size_t size : state->batch_sizes) {
    CHECK(size <= 7);
    total += size;
  }
  CHECK(total == 100);
  // Commit order is record order.
  const auto events = state->committed();
  for (int i = 0; i < 100; ++i) CHECK(events[static_cast<std::size_t>(i)].job_id == "job-" + std::to_string(i));
}

TEST_CASE_METHOD(FakeFixture, "many threads record at once and nothing is lost", "[tracker]") {
  constexpr int threads = 8;
  constexpr int per_thread = 5000;
  {
    Tracker tracker(store(), options());
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&tracker, t] {
        for (int i = 0; i < per_thread; ++i) {
          tracker.record(make_event("t" + std::to_string(t) + "-" + std::to_string(i), State::started));
        }
      });
    }
    for (auto& worker : workers) worker.join();
  }
  const auto events = state->committed();
  CHECK(events.size() == threads * per_thread);
  std::set<std::string> ids;
  for (const auto& event : events) ids.insert(event.job_id);
  CHECK(ids.size() == threads * per_thread);
}

TEST_CASE_METHOD(FakeFixture, "after shutdown nothing is accepted, and shutdown is idempotent", "[tracker]") {
  Tracker tracker(store(), options());
  record_lifecycle(tracker, "job-1");
  tracker.shutdown(5s);
  tracker.shutdown(5s);
  CHECK(state->committed().size() == 3);
  for (int i = 0; i < 100; ++i) CHECK(tracker.record(make_event("late", State::started)) == RecordStatus::shut_down);
  CHECK(tracker.record_durable(make_event("late", State::started)) == RecordStatus::shut_down);
  CHECK(tracker.flush(1s));
  CHECK(tracker.counters().dropped_shut_down == 101);
  // 101 drops within a second: one message.
  CHECK(messages.all().size() == 1);
}

TEST_CASE_METHOD(FakeFixture, "an error handler may call back into the tracker", "[tracker]") {
  state->poison_job_id = "poison";
  std::atomic<Tracker*> self{nullptr};
  std::atomic<int> calls{0};
  auto tracker_options = options();
  // Reports come from the writer thread (the refused event) and from the recording thread
  // (the invalid one); neither may deadlock when the handler records or shuts down.
  tracker_options.error_handler = [&](std::string_view) {
    ++calls;
    if (Tracker* tracker = self.load()) {
      tracker->record(make_event("from-handler", State::heartbeat));
      tracker->shutdown(1s);
    }
  };
  Tracker tracker(store(), tracker_options);
  self = &tracker;
  tracker.record(make_event("poison", State::started));
  REQUIRE(eventually([&] { return calls.load() >= 1; }));
  CHECK(eventually([&] { return tracker.record(make_event("late", State::started)) == RecordStatus::shut_down; }));
}

TEST_CASE("a tracker refuses options it cannot work with", "[tracker]") {
  testing::TempDir dir;
  const std::string path = dir.file("jobs.db");
  TrackerOptions no_capacity;
  no_capacity.queue_capacity = 0;
  CHECK_THROWS_AS(Tracker(path, no_capacity), std::invalid_argument);
  TrackerOptions no_batch;
  no_batch.max_batch = 0;
  CHECK_THROWS_AS(Tracker(path, no_batch), std::invalid_argument);
  TrackerOptions no_interval;
  no_interval.flush_interval = 0ms;
  CHECK_THROWS_AS(Tracker(path, no_interval), std::invalid_argument);
  TrackerOptions long_worker;
  long_worker.worker = std::string(EventLimits::max_name_length + 1, 'w');
  CHECK_THROWS_AS(Tracker(path, long_worker), std::invalid_argument);
  CHECK_THROWS_AS(Tracker(std::unique_ptr<Store>{}), std::invalid_argument);
  // A store that cannot be opened fails at setup, on the caller's thread.
  CHECK_THROWS_AS(Tracker(dir.path().string()), StoreError);
}

TEST_CASE("the error reporter lets one message a second through and counts the rest", "[tracker]") {
  testing::CapturedMessages messages;
  ErrorReporter reporter(messages.handler(), 100ms);
  for (int i = 0; i < 10; ++i) reporter.report("drop " + std::to_string(i));
  REQUIRE(messages.all().size() == 1);
  CHECK(messages.all()[0] == "drop 0");
  CHECK(reporter.suppressed() == 9);

  std::this_thread::sleep_for(120ms);
  int built = 0;
  reporter.report_lazily([&] {
    ++built;
    return std::string("drop 10");
  });
  reporter.report_lazily([&] {
    ++built;
    return std::string("drop 11");
  });
  CHECK(built == 1);  // the suppressed message was never formatted
  REQUIRE(messages.all().size() == 2);
  CHECK(messages.all()[1] == "drop 10 (9 similar messages suppressed)");
}

TEST_CASE("a throwing error handler does not escape the reporter", "[tracker]") {
  ErrorReporter reporter([](std::string_view) { throw std::runtime_error("handler broke"); }, 0ms);
  CHECK_NOTHROW(reporter.report("one"));
  CHECK_NOTHROW(reporter.report("two"));
}

namespace {

const prometheus::MetricFamily* family(const std::vector<prometheus::MetricFamily>& families, const std::string& name) {
  for (const auto& candidate : families) {
    if (candidate.name == name) return &candidate;
  }
  return nullptr;
}

std::string label(const prometheus::ClientMetric& metric, const std::string& name) {
  for (const auto& pair : metric.label) {
    if (pair.name == name) return pair.value;
  }
  return {};
}

const prometheus::ClientMetric* series(const prometheus::MetricFamily* metrics,
                                       const std::vector<std::pair<std::string, std::string>>& labels) {
  if (metrics == nullptr) return nullptr;
  for (const auto& metric : metrics->metric) {
    bool matches = true;
    for (const auto& [name, value] : labels) matches = matches && label(metric, name) == value;
    if (matches) return &metric;
  }
  return nullptr;
}

}  // namespace

TEST_CASE_METHOD(StoreFixture, "the tracker exports its metrics, labelled by job class, never by job",
                 "[tracker][store][metrics]") {
  auto registry = std::make_shared<prometheus::Registry>();
  auto tracker_options = options();
  tracker_options.registry = registry;
  {
    Tracker tracker(path, tracker_options);
    const Micros t0 = now_micros() - 60'000'000;
    Event enqueued = make_event("invoice-2017-08", State::enqueued, "InvoiceJob");
    enqueued.at = t0;
    enqueued.correlation_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    Event started = make_event("invoice-2017-08", State::started, "InvoiceJob");
    started.at = t0 + 2'000'000;
    Event succeeded = make_event("invoice-2017-08", State::succeeded, "InvoiceJob");
    succeeded.at = t0 + 5'000'000;
    tracker.enqueue(enqueued);
    tracker.record(started);
    tracker.record(succeeded);
    tracker.record(make_event("", State::started));
    REQUIRE(tracker.flush(5s));
    // A redelivered event is skipped; a second success of one job is flagged.
    tracker.record(started);
    Event receipt = make_event("receipt-1", State::succeeded, "ReceiptJob");
    receipt.at = t0;
    tracker.record(receipt);
    receipt.at = t0 + 1'000'000;
    tracker.record(receipt);
    REQUIRE(tracker.flush(5s));
    CHECK(tracker.counters().duplicates == 1);
    CHECK(tracker.counters().anomalies == 1);
  }
  const auto families = registry->Collect();
  for (const char* name :
       {"jobtrail_tracker_events_total", "jobtrail_tracker_events_dropped_total", "jobtrail_tracker_store_errors_total",
        "jobtrail_tracker_queue_depth", "jobtrail_tracker_queue_capacity", "jobtrail_tracker_flush_duration_seconds",
        "jobtrail_tracker_batch_size", "jobtrail_job_run_duration_seconds", "jobtrail_job_wait_duration_seconds",
        "jobtrail_jobs_finished_total", "jobtrail_tracker_duplicate_events_total", "jobtrail_tracker_anomalies_total"}) {
    INFO(name);
    CHECK(family(families, name) != nullptr);
  }

  const auto* accepted = series(family(families, "jobtrail_tracker_events_total"), {{"state", "succeeded"}});
  REQUIRE(accepted);
  CHECK(accepted->counter.value == 3);  // invoice-2017-08 once, receipt-1 twice
  const auto* invalid = series(family(families, "jobtrail_tracker_events_dropped_total"), {{"reason", "invalid"}});
  REQUIRE(invalid);
  CHECK(invalid->counter.value == 1);
  CHECK(series(family(families, "jobtrail_tracker_duplicate_events_total"), {})->counter.value == 1);
  CHECK(series(family(families, "jobtrail_tracker_anomalies_total"), {})->counter.value == 1);
  const auto* depth = series(family(families, "jobtrail_tracker_queue_depth"), {});
  REQUIRE(depth);
  CHECK(depth->gauge.value == 0);

  const auto* run = series(family(families, "jobtrail_job_run_duration_seconds"),
                           {{"job_class", "InvoiceJob"}, {"queue", "billing"}, {"outcome", "succeeded"}});
  REQUIRE(run);
  CHECK(run->histogram.sample_count == 1);
  CHECK(run->histogram.sample_sum == Approx(3.0));
  const auto* wait = series(family(families, "jobtrail_job_wait_duration_seconds"),
                            {{"job_class", "InvoiceJob"}, {"queue", "billing"}});
  REQUIRE(wait);
  CHECK(wait->histogram.sample_sum == Approx(2.0));
  const auto* finished = series(family(families, "jobtrail_jobs_finished_total"),
                                {{"job_class", "InvoiceJob"}, {"outcome", "succeeded"}});
  REQUIRE(finished);
  CHECK(finished->counter.value == 1);

  // No series may carry a per-job value: the job label belongs to Prometheus' scrape job,
  // and IDs would make one series per job.
  for (const auto& metrics : families) {
    for (const auto& metric : metrics.metric) {
      for (const auto& pair : metric.label) {
        INFO(metrics.name << "{" << pair.name << "=" << pair.value << "}");
        CHECK(pair.name != "job");
        CHECK(pair.name != "job_id");
        CHECK(pair.name != "correlation_id");
        CHECK(pair.value != "invoice-2017-08");
        CHECK(pair.value != "4bf92f3577b34da6a3ce929d0e0e4736");
      }
    }
  }
}

TEST_CASE("job metrics keep to a bounded number of job classes", "[tracker][metrics]") {
  prometheus::Registry registry;
  TrackerMetrics metrics(registry, 100);
  std::vector<Transition> transitions;
  for (int i = 0; i < 700; ++i) {
    Transition finished;
    finished.job = "GeneratedJob" + std::to_string(i);
    finished.queue = "default";
    finished.state = State::succeeded;
    finished.run = 1'000'000;
    transitions.push_back(finished);
  }
  metrics.observe_transitions(transitions);
  CHECK(metrics.label_pairs() == TrackerMetrics::max_label_pairs + 1);

  const auto families = registry.Collect();
  const auto* finished = family(families, "jobtrail_jobs_finished_total");
  REQUIRE(finished);
  CHECK(finished->metric.size() == TrackerMetrics::max_label_pairs + 1);
  const auto* other = series(finished, {{"job_class", "other"}, {"queue", "other"}});
  REQUIRE(other);
  CHECK(other->counter.value == 700 - TrackerMetrics::max_label_pairs);
}

TEST_CASE_METHOD(FakeFixture, "record() cuts an over-long message and keeps the failure", "[tracker]") {
  Tracker tracker(store(), options());
  Event failed = make_event("long-failure", State::failed);
  failed.error = {"Huge", std::string(9 * 1024, 'x'), "frame\n"};
  CHECK(tracker.record(failed) == RecordStatus::queued);
  REQUIRE(tracker.flush(5s));
  CHECK(tracker.counters().dropped_invalid == 0);
  const auto committed = state->committed();
  REQUIRE(committed.size() == 1);
  CHECK(committed[0].error.message.size() <= EventLimits::max_message_length);
  CHECK(committed[0].error.message.ends_with(std::string(truncation_marker) + "9216 bytes]"));
  CHECK(committed[0].error.backtrace == "frame\n");
}

TEST_CASE_METHOD(FakeFixture, "record() refuses a time in the wrong unit rather than store it", "[tracker]") {
  Tracker tracker(store(), options());
  const Micros now = now_micros();
  Event nanoseconds = make_event("ns", State::started);
  nanoseconds.at = now * 1000;
  CHECK(tracker.record(nanoseconds) == RecordStatus::invalid);
  Event seconds = make_event("s", State::started);
  seconds.at = now / 1'000'000;
  CHECK(tracker.record(seconds) == RecordStatus::invalid);
  Event plausible = make_event("us", State::started);
  plausible.at = now - 3'600'000'000;
  CHECK(tracker.record(plausible) == RecordStatus::queued);
  REQUIRE(tracker.flush(5s));
  CHECK(tracker.counters().dropped_invalid == 2);
  REQUIRE(state->committed().size() == 1);
  CHECK(state->committed()[0].job_id == "us");
  const std::vector<std::string> reported = messages.all();
  REQUIRE_FALSE(reported.empty());
  CHECK(reported[0].find("more than a day ahead") != std::string::npos);
  CHECK(reported[0].find("nanoseconds") != std::string::npos);
}

TEST_CASE_METHOD(FakeFixture, "stamp_worker off leaves an event's worker as sent", "[tracker]") {
  TrackerOptions relay = options();
  relay.stamp_worker = false;
  Tracker tracker(store(), relay);
  CHECK(tracker.record(make_event("relayed", State::started)) == RecordStatus::queued);
  REQUIRE(tracker.flush(5s));
  REQUIRE(state->committed().size() == 1);
  CHECK(state->committed()[0].worker.empty());
}
