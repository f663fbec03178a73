// The batch planner on its own: a batch and rows in, a plan out, no database. A rule of history
// is tested here once; the [store] suite then checks that both stores land plans faithfully.

#include <map>
#include <catch2/catch.hpp>

#include "batch_planner.h"

using namespace jobtrail;
using detail::BatchPlan;
using detail::JobRow;

namespace Catch {
template <>
struct StringMaker<jobtrail::detail::TallyChange> {
  static std::string convert(const jobtrail::detail::TallyChange& c) {
    return "{job " + std::to_string(c.job) + ", bucket " + std::to_string(c.bucket) + ", " +
           std::string(to_string(c.state)) + ", " + std::to_string(c.delta) + "}";
  }
};
}  // namespace Catch

namespace {

constexpr Micros t0 = 1'790'000'000'000'000;

Event make(const std::string& job_id, State state, int attempt, Micros offset) {
  Event event;
  event.job_id = job_id;
  event.job = "ReportJob";
  event.queue = "default";
  event.state = state;
  event.attempt = attempt;
  event.at = t0 + offset;
  return event;
}

/// A store kept in memory: rows and events, landed from plans the way a store would, and
/// counting the questions the planner asks.
class MemoryHistory final : public detail::BatchHistory {
 public:
  JobRow& row(const std::string& job_id) override {
    auto [it, fresh] = rows.try_emplace(job_id);
    if (fresh) {
      it->second.job_id = job_id;
      it->second.id = next_id++;
    }
    return it->second;
  }
  std::int64_t label_id(const std::string& text) override {
    if (text.empty()) return 0;
    return labels.try_emplace(text, static_cast<std::int64_t>(labels.size()) + 1).first->second;
  }
  bool has_event(const JobRow& job, State state, std::optional<std::int32_t> attempt, Micros at) override {
    questions += 1;
    for (const auto& event : events[job.id]) {
      if (event.state == state && event.at == at && (!attempt || event.attempt == *attempt)) return true;
    }
    return false;
  }
  std::int64_t success_under_key(const std::string& key, std::int64_t except_id) override {
    for (const auto& [id, row] : rows) {
      if (row.stored && row.id != except_id && row.idempotency_key == key && row.life.successes > 0) return row.id;
    }
    return 0;
  }
  std::vector<detail::StoredEvent> stored_events(const JobRow& job) override {
    refolds += 1;
    return events[job.id];
  }

  /// Lands `plan`: what a store's write does.
  void land(const BatchPlan& plan) {
    for (const auto& job : plan.jobs) {
      auto& row = *job.row;
      for (std::size_t i = 0; i < job.pending.size(); ++i) {
        const auto& pending = job.pending[i];
        std::optional<std::int64_t> error;
        if (pending.error) error = next_error++;
        if (row.last_error_pending == i) row.last_error_stored = error;
        events[row.id].push_back({pending.state, pending.attempt, pending.at, pending.seq, error});
      }
      row.last_error_pending.reset();
      row.stored = true;
      row.anomalies_stored = row.anomalies;
    }
    for (auto other : plan.flag_others) {
      for (auto& [id, row] : rows) {
        if (row.id == other) row.anomalies |= detail::anomaly_bit(AnomalyKind::duplicate_idempotency_key);
      }
    }
  }

  BatchPlan plan_and_land(const std::vector<Event>& batch) {
    auto plan = detail::plan_batch(batch, *this);
    land(plan);
    return plan;
  }

  std::map<std::string, JobRow> rows;  // std::map: references stay valid as rows are added
  std::map<std::int64_t, std::vector<detail::StoredEvent>> events;
  std::map<std::string, std::int64_t> labels;
  std::int64_t next_id = 1, next_error = 100;
  int questions = 0, refolds = 0;
};

}  // namespace

TEST_CASE("a batch of a new job in order: stored, folded, transitions for metrics", "[tracker][planner]") {
  MemoryHistory history;
  auto plan = detail::plan_batch({make("a", State::enqueued, 1, 0), make("a", State::started, 1, 10),
                                  make("a", State::succeeded, 1, 30)},
                                 history);
  REQUIRE(plan.jobs.size() == 1);
  const auto& job = plan.jobs.front();
  CHECK(job.pending.size() == 3);
  CHECK(job.pending[2].seq == 2);
  CHECK(job.changed());
  CHECK(job.row->life.state == State::succeeded);
  CHECK(job.row->life.event_count == 3);
  CHECK(job.row->job == history.labels.at("ReportJob"));
  CHECK(plan.result.stored == 3);
  CHECK(plan.result.duplicates == 0);
  REQUIRE(plan.result.transitions.size() == 2);  // started, succeeded (an enqueue is no transition)
  CHECK(plan.result.transitions[0].wait == 10);
  CHECK(plan.result.transitions[1].run == 20);
  CHECK(plan.anomalies.empty());
  CHECK(history.questions == 0);  // a new row is never asked about
}

TEST_CASE("a redelivery in the same batch is seen among the pending events", "[tracker][planner]") {
  MemoryHistory history;
  auto plan = detail::plan_batch({make("a", State::enqueued, 1, 0), make("a", State::started, 1, 10),
                                  make("a", State::enqueued, 1, 0)},
                                 history);
  CHECK(plan.result.stored == 2);
  CHECK(plan.result.duplicates == 1);
  CHECK(plan.jobs.front().pending.size() == 2);
}

TEST_CASE("a redelivery of a stored event is asked of the store and skipped", "[tracker][planner]") {
  MemoryHistory history;
  history.plan_and_land({make("a", State::enqueued, 1, 0), make("a", State::started, 1, 10),
                         make("a", State::succeeded, 1, 30)});
  history.questions = 0;
  auto plan = history.plan_and_land({make("a", State::started, 1, 10)});
  CHECK(plan.result.duplicates == 1);
  CHECK(plan.result.stored == 0);
  CHECK(history.questions == 1);
  CHECK_FALSE(plan.jobs.front().changed());
  CHECK(plan.anomalies.empty());
}

TEST_CASE("an attempt-less resend after the job moved on is found whatever its attempt", "[tracker][planner]") {
  MemoryHistory history;
  history.plan_and_land({make("a", State::started, 0, 10), make("a", State::failed, 0, 20),
                         make("a", State::started, 0, 30)});
  CHECK(history.rows.at("a").life.attempts == 2);
  auto plan = history.plan_and_land({make("a", State::failed, 0, 20)});
  CHECK(plan.result.duplicates == 1);
  CHECK(plan.result.stored == 0);
}

TEST_CASE("a late event refolds from stored and pending events; the last error follows lifecycle order",
          "[tracker][planner]") {
  MemoryHistory history;
  auto failed = make("a", State::failed, 1, 20);
  failed.error = {"Timeout", "first", ""};
  history.plan_and_land({make("a", State::started, 1, 10), failed, make("a", State::succeeded, 2, 40)});
  CHECK(history.rows.at("a").last_error_stored == 100);
  // The enqueue of attempt 1 arrives late, with the start of attempt 2 and a second failure
  // of attempt 1 that comes, in lifecycle order, before attempt 2.
  auto late_failure = make("a", State::dead, 1, 25);
  late_failure.error = {"Timeout", "second", ""};
  auto plan = history.plan_and_land({make("a", State::enqueued, 1, 0), make("a", State::started, 2, 30), late_failure});
  CHECK(history.refolds == 1);
  const auto& row = *plan.jobs.front().row;
  CHECK(row.life.state == State::succeeded);
  CHECK(row.life.enqueued_at == t0);
  CHECK(row.life.event_count == 6);
  CHECK(row.life.attempts == 2);
  CHECK(row.last_error_stored == 101);  // the late failure's error, landed
  CHECK(plan.result.transitions.empty());  // nothing came in order
}

TEST_CASE("identity keeps its first value; the queue and worker follow the attempt", "[tracker][planner]") {
  MemoryHistory history;
  auto first = make("a", State::started, 1, 10);
  first.correlation_id = "req-1";
  first.idempotency_key = "key-1";
  first.worker = "host-1";
  auto second = make("a", State::started, 2, 30);
  second.correlation_id = "req-2";
  second.idempotency_key = "key-2";
  second.queue = "retries";
  second.worker = "host-2";
  auto plan = detail::plan_batch({first, second}, history);
  const auto& row = *plan.jobs.front().row;
  CHECK(row.correlation_id == "req-1");
  CHECK(row.idempotency_key == "key-1");
  CHECK(row.queue == history.labels.at("retries"));
  CHECK(row.worker == history.labels.at("host-2"));
}

TEST_CASE("a second success flags the job", "[tracker][planner]") {
  MemoryHistory history;
  history.plan_and_land({make("a", State::started, 1, 10), make("a", State::succeeded, 1, 20)});
  auto plan = history.plan_and_land({make("a", State::succeeded, 2, 40)});
  REQUIRE(plan.anomalies.size() == 1);
  CHECK(plan.anomalies[0].kind == AnomalyKind::duplicate_success);
  CHECK(plan.anomalies[0].detail == "succeeded 2 times");
  CHECK(plan.result.anomalies == 1);
  CHECK(plan.jobs.front().row->anomalies == detail::anomaly_bit(AnomalyKind::duplicate_success));
}

TEST_CASE("a second success under an idempotency key flags both jobs, in the batch or stored",
          "[tracker][planner]") {
  auto success = [](const std::string& job_id, Micros offset) {
    auto event = make(job_id, State::succeeded, 1, offset);
    event.idempotency_key = "charge-7";
    return event;
  };
  const auto bit = detail::anomaly_bit(AnomalyKind::duplicate_idempotency_key);
  SECTION("both in one batch: the first job's row carries the flag") {
    MemoryHistory history;
    auto plan = history.plan_and_land({success("a", 10), success("b", 20)});
    REQUIRE(plan.anomalies.size() == 1);
    CHECK(plan.anomalies[0].job == history.rows.at("b").id);
    CHECK(plan.anomalies[0].other_job == history.rows.at("a").id);
    CHECK(plan.flag_others.empty());
    CHECK(history.rows.at("a").anomalies == bit);
    CHECK(history.rows.at("b").anomalies == bit);
  }
  SECTION("the first stored: the store is asked, and the first job is flagged where it lives") {
    MemoryHistory history;
    history.plan_and_land({success("a", 10)});
    auto plan = history.plan_and_land({success("b", 20)});
    REQUIRE(plan.anomalies.size() == 1);
    CHECK(plan.anomalies[0].detail == "charge-7");
    REQUIRE(plan.flag_others.size() == 1);
    CHECK(plan.flag_others[0] == history.rows.at("a").id);
    CHECK(history.rows.at("a").anomalies == bit);
  }
}

TEST_CASE("CheckedEvents validates and stamps once", "[tracker][planner]") {
  std::vector<Event> events{make("a", State::started, 1, 10), make("a", State::succeeded, 1, 0)};
  events[1].at = 0;
  const Micros before = now_micros();
  CheckedEvents batch(events);
  CHECK(batch.events()[0].at == t0 + 10);
  CHECK(batch.events()[1].at >= before);
  CHECK(events[1].at == 0);  // the caller's batch is left as it was

  std::vector<Event> untouched{make("a", State::started, 1, 10)};
  CHECK(&CheckedEvents(untouched).events() == &untouched);  // nothing to stamp: no copy

  events[0].job_id.clear();
  CHECK_THROWS_AS(CheckedEvents(events), StoreError);
}

TEST_CASE("the tally moves a job's count from where it was to where it is, once per key", "[tracker][planner]") {
  MemoryHistory history;
  const Micros bucket = tally_bucket_start(t0);
  const std::int64_t report = history.label_id("ReportJob");
  using detail::TallyChange;
  // Two new jobs of one class in one bucket: one count of 2, nothing to take away.
  auto first = history.plan_and_land({make("a", State::enqueued, 1, 0), make("b", State::enqueued, 1, 5)});
  CHECK(first.tally == std::vector<TallyChange>{{report, bucket, State::enqueued, 2}});
  // One starts: -1 enqueued, +1 started. Its heartbeat then moves nothing.
  auto second = history.plan_and_land({make("a", State::started, 1, 10)});
  CHECK(second.tally == std::vector<TallyChange>{{report, bucket, State::enqueued, -1}, {report, bucket, State::started, 1}});
  CHECK(history.plan_and_land({make("a", State::heartbeat, 1, 11)}).tally.empty());
  // An event from before the bucket arrives late: the job's first time, so its bucket, moves.
  auto late = history.plan_and_land({make("a", State::enqueued, 1, -tally_bucket_length)});
  CHECK(late.tally == std::vector<TallyChange>{{report, bucket - tally_bucket_length, State::started, 1},
                                               {report, bucket, State::started, -1}});
  // A redelivery changes nothing, so counts nothing.
  CHECK(history.plan_and_land({make("a", State::heartbeat, 1, 11)}).tally.empty());
  // Sorted by (bucket, job, state): the order every writer takes them in.
  auto mixed = history.plan_and_land({make("c", State::dead, 1, 2 * tally_bucket_length), make("b", State::succeeded, 1, 20)});
  CHECK(mixed.tally == std::vector<TallyChange>{{report, bucket, State::enqueued, -1},
                                                {report, bucket, State::succeeded, 1},
                                                {report, bucket + 2 * tally_bucket_length, State::dead, 1}});
}

TEST_CASE("a tally's bucket is rounded down, before 1970 too", "[tracker][planner]") {
  CHECK(tally_bucket_start(0) == 0);
  CHECK(tally_bucket_start(tally_bucket_length - 1) == 0);
  CHECK(tally_bucket_start(tally_bucket_length) == tally_bucket_length);
  CHECK(tally_bucket_start(-1) == -tally_bucket_length);
  CHECK(tally_bucket_start(-tally_bucket_length) == -tally_bucket_length);
}
