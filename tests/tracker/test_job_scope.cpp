#include <catch2/catch.hpp>
#include <stdexcept>

#include "fake_store.h"
#include "jobtrail/job_scope.h"
#include "jobtrail/store.h"
#include "jobtrail/tracker.h"
#include "temp_dir.h"
#include "test_store.h"

using namespace jobtrail;
using namespace std::chrono_literals;

namespace {

/// A tracker over an in-memory store whose events the test reads back.
struct ScopeFixture {
  std::shared_ptr<testing::FakeStoreState> state = std::make_shared<testing::FakeStoreState>();
  testing::CapturedMessages messages;
  Tracker tracker{std::make_unique<testing::FakeStore>(state), options()};

  TrackerOptions options() {
    TrackerOptions options;
    options.error_handler = messages.handler();
    return options;
  }
  std::vector<Event> events_of(const std::string& job_id) {
    REQUIRE(tracker.flush(5s));
    return state->committed_of(job_id);
  }
  std::vector<State> states_of(const std::string& job_id) {
    std::vector<State> states;
    for (const auto& event : events_of(job_id)) states.push_back(event.state);
    return states;
  }
};

JobInfo job(std::string job_id) {
  JobInfo info;
  info.job_id = std::move(job_id);
  info.job = "WelcomeEmailJob";
  info.queue = "mailers";
  return info;
}

struct NotAStdException {};

}  // namespace

TEST_CASE_METHOD(ScopeFixture, "a job scope records its start and its outcome", "[tracker][job_scope]") {
  JobInfo info = job("job-1");
  info.attempt = 2;
  info.idempotency_key = "welcome:user:42";
  info.entities = {"user:42"};
  {
    JobScope scope(tracker, info);
    CHECK(current_job_id() == "job-1");
    CHECK(current_correlation_id() == scope.correlation_id());
    CHECK_FALSE(scope.finished());
    scope.succeed();
    CHECK(scope.finished());
  }
  CHECK(current_job_id().empty());
  CHECK(current_correlation_id().empty());

  const auto events = events_of("job-1");
  REQUIRE(events.size() == 2);
  CHECK(events[0].state == State::started);
  CHECK(events[0].entities == std::vector<std::string>{"user:42"});
  CHECK(events[1].state == State::succeeded);
  CHECK(events[1].entities.empty());
  for (const auto& event : events) {
    CHECK(event.attempt == 2);
    CHECK(event.job == "WelcomeEmailJob");
    CHECK(event.queue == "mailers");
    CHECK(event.idempotency_key == "welcome:user:42");
    // Outside any request, the job starts a trace of its own.
    CHECK(event.correlation_id.size() == 32);
    CHECK(event.correlation_id == events[0].correlation_id);
  }
}

TEST_CASE_METHOD(ScopeFixture, "an exception leaving the scope records a failure", "[tracker][job_scope]") {
  try {
    JobScope scope(tracker, job("job-1"));
    throw std::runtime_error("smtp timeout");
  } catch (const std::runtime_error&) {
  }
  const auto events = events_of("job-1");
  REQUIRE(events.size() == 2);
  CHECK(events[1].state == State::failed);
  CHECK(events[1].error.error_class == "jobtrail.ScopeLeftByException");
}

TEST_CASE_METHOD(ScopeFixture, "a scope left without an outcome records a failure that says so",
                 "[tracker][job_scope]") {
  { JobScope scope(tracker, job("job-1")); }
  const auto events = events_of("job-1");
  REQUIRE(events.size() == 2);
  CHECK(events[1].state == State::failed);
  CHECK(events[1].error.error_class == "jobtrail.NoOutcome");
  CHECK(events[1].error.message == "job scope ended without succeed(), fail(), give_up() or cancel()");
}

TEST_CASE_METHOD(ScopeFixture, "run() records what the body threw and rethrows it", "[tracker][job_scope]") {
  {
    JobScope scope(tracker, job("job-1"));
    CHECK_THROWS_AS(scope.run([] { throw std::invalid_argument("no such user: 42"); }), std::invalid_argument);
  }
  {
    JobScope scope(tracker, job("job-2"));
    CHECK_THROWS_AS(scope.run([] { throw NotAStdException{}; }), NotAStdException);
  }
  const auto first = events_of("job-1");
  REQUIRE(first.size() == 2);
  CHECK(first[1].state == State::failed);
  CHECK(first[1].error.error_class == "std::invalid_argument");
  CHECK(first[1].error.message == "no such user: 42");
  const auto second = events_of("job-2");
  REQUIRE(second.size() == 2);
  CHECK(second[1].state == State::failed);
  CHECK(second[1].error.message == "unknown exception");
}

TEST_CASE_METHOD(ScopeFixture, "run() succeeds unless the body said otherwise", "[tracker][job_scope]") {
  {
    JobScope scope(tracker, job("job-1"));
    CHECK(scope.run([] { return 42; }) == 42);
  }
  {
    JobScope scope(tracker, job("job-2"));
    scope.run([&] { scope.give_up("Billing::CardDeclined", "card declined"); });
  }
  CHECK(states_of("job-1") == std::vector<State>{State::started, State::succeeded});
  const auto second = events_of("job-2");
  REQUIRE(second.size() == 2);
  CHECK(second[1].state == State::dead);
  CHECK(second[1].error.error_class == "Billing::CardDeclined");
}

TEST_CASE_METHOD(ScopeFixture, "only the first outcome counts", "[tracker][job_scope]") {
  {
    JobScope scope(tracker, job("job-1"));
    scope.succeed();
    scope.fail("Late", "a cleanup path failing what already succeeded");
    scope.cancel("too late");
    scope.heartbeat();
  }
  CHECK(states_of("job-1") == std::vector<State>{State::started, State::succeeded});
}

TEST_CASE_METHOD(ScopeFixture, "heartbeats and tags ride on the job's events", "[tracker][job_scope]") {
  {
    JobScope scope(tracker, job("job-1"));
    scope.tag("invoice:2017-08");
    scope.tag("invoice:2017-08");  // once is enough
    scope.heartbeat();
    scope.tag("account:7");
    scope.tag("not a tag");  // rejected on its own, reported, without spoiling the next event
    scope.cancel("operator asked");
  }
  const auto events = events_of("job-1");
  REQUIRE(events.size() == 3);
  CHECK(events[1].state == State::heartbeat);
  CHECK(events[1].entities == std::vector<std::string>{"invoice:2017-08"});
  CHECK(events[2].state == State::cancelled);
  CHECK(events[2].entities == std::vector<std::string>{"account:7"});
  CHECK(events[2].error.message == "operator asked");
  CHECK(tracker.counters().dropped_invalid == 1);
  CHECK_FALSE(messages.all().empty());
}

TEST_CASE_METHOD(ScopeFixture, "an over-long error message is cut, not lost", "[tracker][job_scope]") {
  {
    JobScope scope(tracker, job("job-1"));
    scope.fail("Huge", std::string(EventLimits::max_message_length * 2, 'x'));
  }
  const auto events = events_of("job-1");
  REQUIRE(events.size() == 2);
  CHECK(events[1].error.message.size() == EventLimits::max_message_length);
  CHECK(events[1].error.message.ends_with(std::string(truncation_marker) + "16384 bytes]"));  // and says so
}

TEST_CASE_METHOD(ScopeFixture, "a job scope needs a job ID", "[tracker][job_scope]") {
  CHECK_THROWS_AS(JobScope(tracker, JobInfo{}), std::invalid_argument);
  CHECK(current_job_id().empty());
}

TEST_CASE_METHOD(ScopeFixture, "jobs enqueued inside a job join its trace as its children", "[tracker][job_scope]") {
  {
    CorrelationScope request("4bf92f3577b34da6a3ce929d0e0e4736");
    Event signup;
    signup.job_id = "welcome-email-1";
    signup.job = "WelcomeEmailJob";
    REQUIRE(tracker.enqueue(signup) == RecordStatus::queued);

    JobScope parent(tracker, job("month-close-1"));
    CHECK(parent.correlation_id() == "4bf92f3577b34da6a3ce929d0e0e4736");
    Event child;
    child.job_id = "invoice-1";
    child.state = State::succeeded;  // enqueue() makes it an enqueue whatever it says
    REQUIRE(tracker.enqueue(child) == RecordStatus::queued);
    {
      // Run inline on the same thread: a child too.
      JobScope inline_child(tracker, job("payment-1"));
      inline_child.succeed();
    }
    parent.succeed();
  }
  const auto signup = events_of("welcome-email-1");
  REQUIRE(signup.size() == 1);
  CHECK(signup[0].correlation_id == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(signup[0].parent_job_id.empty());

  const auto child = events_of("invoice-1");
  REQUIRE(child.size() == 1);
  CHECK(child[0].state == State::enqueued);
  CHECK(child[0].correlation_id == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(child[0].parent_job_id == "month-close-1");

  const auto inline_child = events_of("payment-1");
  REQUIRE(inline_child.size() == 2);
  CHECK(inline_child[0].correlation_id == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(inline_child[0].parent_job_id == "month-close-1");

  const auto parent = events_of("month-close-1");
  REQUIRE(parent.size() == 2);
  CHECK(parent[0].parent_job_id.empty());
}

TEST_CASE_METHOD(ScopeFixture, "an explicit correlation ID and parent win over the context", "[tracker][job_scope]") {
  CorrelationScope request("request-a");
  JobInfo info = job("job-1");
  info.correlation_id = "from-the-queue-message";
  info.parent_job_id = "enqueuer-7";
  {
    JobScope scope(tracker, info);
    CHECK(current_correlation_id() == "from-the-queue-message");
    scope.succeed();
  }
  CHECK(current_correlation_id() == "request-a");
  const auto events = events_of("job-1");
  REQUIRE(events.size() == 2);
  CHECK(events[0].correlation_id == "from-the-queue-message");
  CHECK(events[0].parent_job_id == "enqueuer-7");
}

TEST_CASE("a failed job scope is in the store with its reason", "[tracker][job_scope][store]") {
  testing::TestStore test_store;
  const std::string& path = test_store.url();
  {
    Tracker tracker(path);
    JobScope scope(tracker, job("job-1"));
    try {
      scope.run([] { throw std::runtime_error("smtp timeout"); });
    } catch (const std::runtime_error&) {
    }
  }
  const auto stored = open_store(path)->find_job("job-1");
  REQUIRE(stored);
  CHECK(stored->state == State::failed);
  CHECK(stored->last_error.error_class == "std::runtime_error");
  CHECK(stored->last_error.message == "smtp timeout");
}
