#include <catch2/catch.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "checker_fixture.h"
#include "postgres/pg_check_queries.h"
#include "sqlite/sqlite_check_queries.h"

using namespace jobtrail;
using namespace jobtrail::testing;

namespace {

std::vector<std::string> job_ids(const JobFindings& findings) {
  std::vector<std::string> ids;
  for (const auto& job : findings.jobs) ids.push_back(job.job_id);
  return ids;
}

Event with_key(Event e, const std::string& key) {
  e.idempotency_key = key;
  return e;
}

}  // namespace

TEST_CASE("stuck: started with neither an end nor a heartbeat within the deadline of its class",
          "[checker][builtin][store]") {
  CheckerFixture f;
  f.store->append({
      // Stuck: started 3h ago, silent since.
      event("report-1", State::started, test_now - 3 * hour, "ReportJob"),
      // Not stuck: a heartbeat 10 minutes ago keeps it alive, however old its start.
      event("report-2", State::started, test_now - 5 * hour, "ReportJob"),
      event("report-2", State::heartbeat, test_now - 10 * minute, "ReportJob"),
      // Stuck: its last heartbeat is 2h old.
      event("report-3", State::started, test_now - 4 * hour, "ReportJob"),
      event("report-3", State::heartbeat, test_now - 2 * hour, "ReportJob"),
      // Not stuck: finished.
      event("report-4", State::started, test_now - 6 * hour, "ReportJob"),
      event("report-4", State::succeeded, test_now - 5 * hour, "ReportJob"),
      // Not stuck: its class may run for 8 hours.
      event("nightly-1", State::started, test_now - 7 * hour, "NightlyJob"),
      // Stuck: past the 8 hours of its class.
      event("nightly-2", State::started, test_now - 9 * hour, "NightlyJob"),
      // Not stuck: a failed attempt waits for its retry; that is not "running".
      event("report-5", State::started, test_now - 5 * hour, "ReportJob"),
      event("report-5", State::failed, test_now - 5 * hour + second, "ReportJob"),
  });
  JobDeadlines deadlines;
  deadlines.deadline = hour;
  deadlines.per_class = {{"NightlyJob", 8 * hour}};
  auto stuck = f.store->stuck_jobs(deadlines, test_now, 10);
  CHECK(stuck.total == 3);
  CHECK(job_ids(stuck) == std::vector<std::string>{"nightly-2", "report-1", "report-3"});  // quiet longest first
  auto limited = f.store->stuck_jobs(deadlines, test_now, 1);
  CHECK(limited.total == 3);
  CHECK(limited.jobs.size() == 1);
}

TEST_CASE("lost: enqueued and not started within the deadline", "[checker][builtin][store]") {
  CheckerFixture f;
  f.store->append({
      event("email-1", State::enqueued, test_now - 2 * hour),                 // lost
      event("email-2", State::enqueued, test_now - 5 * minute),               // still within 30m
      event("email-3", State::enqueued, test_now - 3 * hour),                 // started: not lost
      event("email-3", State::started, test_now - 3 * hour + second),
      event("export-1", State::enqueued, test_now - 2 * hour, "ExportJob"),  // its class waits up to 4h
  });
  JobDeadlines deadlines;
  deadlines.deadline = 30 * minute;
  deadlines.per_class = {{"ExportJob", 4 * hour}};
  auto lost = f.store->lost_jobs(deadlines, test_now, 10);
  CHECK(lost.total == 1);
  CHECK(job_ids(lost) == std::vector<std::string>{"email-1"});
}

TEST_CASE("duplicate execution: one job succeeding twice, two jobs succeeding under one key",
          "[checker][builtin][store]") {
  CheckerFixture f;
  f.store->append({
      event("email-44", State::started, test_now - hour),
      event("email-44", State::succeeded, test_now - hour + second),
      event("email-44", State::started, test_now - hour + 2 * second, "WelcomeEmailJob", 2),
      event("email-44", State::succeeded, test_now - hour + 3 * second, "WelcomeEmailJob", 2),
      with_key(event("payment-2", State::succeeded, test_now - hour, "PaymentJob"), "charge-2"),
      with_key(event("payment-2-rerun", State::succeeded, test_now - hour + minute, "PaymentJob"), "charge-2"),
      // Not a duplicate: failed, retried, succeeded once.
      event("email-45", State::failed, test_now - hour),
      event("email-45", State::succeeded, test_now - hour + minute, "WelcomeEmailJob", 2),
      // Not in the window: a week and a day ago.
      event("email-old", State::succeeded, test_now - 8 * 24 * hour),
      event("email-old", State::succeeded, test_now - 8 * 24 * hour + second, "WelcomeEmailJob", 2),
  });
  auto duplicates = f.store->duplicate_executions(test_now - 7 * 24 * hour, 10);
  // Both jobs under the key are flagged: either may be the one to refund.
  CHECK(duplicates.total == 3);
  CHECK(job_ids(duplicates) == std::vector<std::string>{"email-44", "payment-2", "payment-2-rerun"});
  CHECK(duplicates.reasons ==
        std::vector<std::string>{"duplicate_success", "duplicate_idempotency_key", "duplicate_idempotency_key"});
}

TEST_CASE("dead: jobs that gave up within the window", "[checker][builtin][store]") {
  CheckerFixture f;
  f.store->append({
      event("ledger-1", State::dead, test_now - 2 * hour, "LedgerJob"),
      // Enqueued long ago, died recently: in the window by its death.
      event("ledger-2", State::enqueued, test_now - 3 * 24 * hour, "LedgerJob"),
      event("ledger-2", State::dead, test_now - hour, "LedgerJob"),
      event("ledger-3", State::dead, test_now - 30 * hour, "LedgerJob"),  // before the window
      event("ledger-4", State::failed, test_now - hour, "LedgerJob"),     // may still retry
  });
  auto dead = f.store->dead_jobs(test_now - 24 * hour, 10);
  CHECK(dead.total == 2);
  CHECK(job_ids(dead) == std::vector<std::string>{"ledger-1", "ledger-2"});
}

TEST_CASE("built-in checks run from the config with their defaults and report rows",
          "[checker][builtin][store]") {
  CheckerFixture f;
  Schedule backup;
  backup.job = "BackupJob";
  backup.every = 24 * hour;
  backup.grace = hour;
  backup.updated_at = test_now - 10 * 24 * hour;
  f.store->register_schedule(backup);
  Schedule cleanup = backup;
  cleanup.job = "CleanupJob";
  f.store->register_schedule(cleanup);
  f.store->append({
      event("report-1", State::started, test_now - 4 * hour, "ReportJob"),
      event("backup-1", State::succeeded, test_now - 30 * hour, "BackupJob"),   // missed: 30h > 24h + 1h
      event("cleanup-1", State::succeeded, test_now - 20 * hour, "CleanupJob"),  // on time
      event("email-1", State::enqueued, test_now - 2 * hour),
  });
  auto report = f.run(f.config("{}"));
  CHECK(report.results.size() == 5);
  const auto& stuck = CheckerFixture::result(report, "stuck_jobs");
  CHECK(stuck.status == CheckStatus::fail);
  REQUIRE(stuck.samples.size() == 1);
  CHECK(stuck.samples[0].columns[0].second == "report-1");
  CHECK(stuck.samples[0].columns[5] == std::pair<std::string, std::optional<std::string>>{"for", "4h00m"});
  CHECK(CheckerFixture::result(report, "lost_jobs").violations == 1);
  CHECK(CheckerFixture::result(report, "duplicate_executions").status == CheckStatus::pass);
  CHECK(CheckerFixture::result(report, "dead_jobs").status == CheckStatus::pass);
  const auto& missed = CheckerFixture::result(report, "missed_cron_runs");
  CHECK(missed.violations == 1);
  REQUIRE(missed.samples.size() == 1);
  CHECK(missed.samples[0].columns[0].second == "BackupJob");
  CHECK(missed.samples[0].columns[4].second == "5h00m");
}

TEST_CASE("each built-in check is answered from an index, not a scan of the jobs",
          "[checker][builtin][index][store][sqlite]") {
  CheckerFixture f;
  // Enough rows that the planner has a choice to make.
  std::vector<Event> events;
  for (int i = 0; i < 2000; ++i) {
    events.push_back(event("job-" + std::to_string(i), i % 50 == 0 ? State::started : State::succeeded,
                           test_now - i * minute));
  }
  f.store->append(events);
  exec_sql(f.sqlite_store_path(), "ANALYZE");

  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(f.sqlite_store_path().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  auto plan = [&](std::string_view sql) {
    sqlite3_stmt* statement = nullptr;
    const std::string explain = "EXPLAIN QUERY PLAN " + std::string(sql);
    REQUIRE(sqlite3_prepare_v2(db, explain.c_str(), -1, &statement, nullptr) == SQLITE_OK);
    std::string details;
    while (sqlite3_step(statement) == SQLITE_ROW) {
      details += reinterpret_cast<const char*>(sqlite3_column_text(statement, 3));
      details += "\n";
    }
    sqlite3_finalize(statement);
    return details;
  };
  using namespace jobtrail::sqlite;
  const std::pair<std::string_view, std::string> expected[] = {
      {check_queries::stuck, "SEARCH j USING INDEX job_started_by_activity (<expr><?)"},
      {check_queries::lost, "SEARCH j USING INDEX job_by_state (state=? AND first_at<?)"},
      {check_queries::duplicates, "SEARCH j USING INDEX job_with_anomalies (first_at>?)"},
      {check_queries::dead, "SEARCH j USING INDEX job_dead_by_last_at (<expr>>?)"},
  };
  for (const auto& [sql, index] : expected) {
    const auto details = plan(sql);
    INFO(sql << "\n" << details);
    CHECK(details.find(index) != std::string::npos);
    CHECK(details.find("SCAN j") == std::string::npos);
    CHECK(details.find("TEMP B-TREE") == std::string::npos);  // index order, no sort
  }
  sqlite3_close(db);
}

namespace {

/// Every node of an EXPLAIN (FORMAT JSON) plan, depth first.
void for_each_plan_node(const nlohmann::json& node, const std::function<void(const nlohmann::json&)>& visit) {
  visit(node);
  if (node.contains("Plans")) {
    for (const auto& child : node["Plans"]) for_each_plan_node(child, visit);
  }
}

}  // namespace

TEST_CASE("PostgreSQL: each built-in check is answered from an index, not a scan of the jobs",
          "[checker][builtin][index][.postgres]") {
  CheckerFixture f;
  REQUIRE(f.backend.postgres());
  // The bulk is succeeded jobs, as in a real history; a few of each kind the checks look for.
  std::vector<Event> events;
  for (int i = 0; i < 20000; ++i) {
    events.push_back(event("job-" + std::to_string(i), State::succeeded, test_now - i * minute));
  }
  for (int i = 0; i < 10; ++i) {
    const auto n = std::to_string(i);
    events.push_back(event("stuck-" + n, State::started, test_now - (2 + i) * hour, "ReportJob"));
    events.push_back(event("lost-" + n, State::enqueued, test_now - (2 + i) * hour));
    events.push_back(event("dead-" + n, State::dead, test_now - (2 + i) * hour, "LedgerJob"));
    events.push_back(event("twice-" + n, State::succeeded, test_now - (2 + i) * hour));
    events.push_back(event("twice-" + n, State::succeeded, test_now - (2 + i) * hour + second, "WelcomeEmailJob", 2));
  }
  f.store->append(events);
  pg_rows(f.store_url(), "ANALYZE jobtrail.job");
  // The store finds them all (so the plans below are of queries that answer).
  JobDeadlines deadlines;
  deadlines.deadline = hour;
  CHECK(f.store->stuck_jobs(deadlines, test_now, 100).total == 10);
  CHECK(f.store->lost_jobs(deadlines, test_now, 100).total == 10);
  CHECK(f.store->duplicate_executions(test_now - 7 * 24 * hour, 100).total == 10);
  CHECK(f.store->dead_jobs(test_now - 24 * hour, 100).total == 10);

  // The candidate queries PostgresStore::stuck_jobs, lost_jobs, duplicate_executions and
  // dead_jobs run (pg_check_queries.h), planned with a parameter value as the store's unnamed
  // statements are (custom plans).
  struct Expected {
    std::string sql;
    Micros parameter;
    std::string index;
  };
  const Expected expected[] = {
      {std::string(pg::check_queries::stuck), test_now - hour, "job_started_by_activity"},
      {std::string(pg::check_queries::lost), test_now - 30 * minute, "job_by_state"},
      {std::string(pg::check_queries::duplicates), test_now - 7 * 24 * hour, "job_with_anomalies"},
      {std::string(pg::check_queries::dead), test_now - 24 * hour, "job_dead_by_last_at"},
  };
  for (const auto& [sql, parameter, index] : expected) {
    // The store's connections read the schema jobtrail first; PQexec returns the last result.
    const auto rows = pg_rows(f.store_url(), "SET search_path = jobtrail; PREPARE candidates(bigint) AS " + sql +
                                                 "; EXPLAIN (FORMAT JSON) EXECUTE candidates(" +
                                                 std::to_string(parameter) + ")");
    REQUIRE(rows.size() == 1);
    INFO(sql << "\n" << rows[0][0]);
    const auto plan = nlohmann::json::parse(rows[0][0]).at(0).at("Plan");
    std::set<std::string> indexes;
    bool scans_jobs = false;
    for_each_plan_node(plan, [&](const nlohmann::json& node) {
      if (node.contains("Index Name")) indexes.insert(node["Index Name"].get<std::string>());
      if (node.value("Node Type", "") == "Seq Scan" && node.value("Relation Name", "") == "job") scans_jobs = true;
    });
    CHECK(indexes.count(index) == 1);
    CHECK_FALSE(scans_jobs);
  }
}
