// check_bench: the built-in checks of `jobtrail check` over a large store, each timed beside a
// plain full scan of the job table in the same run. Aim: every check at most a tenth of the
// scan, because each reads one index range instead of every job.
//
//   check_bench [--events N] [--dir DIR] [--keep]      (default: 10,000,000 events)

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "jobtrail/store.h"
#include "workload.h"

using namespace jobtrail;

namespace {

using Clock = std::chrono::steady_clock;
constexpr Micros second = 1'000'000;
constexpr Micros hour = 3600 * second;

double median_ms(int runs, const std::function<void()>& work) {
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    const auto start = Clock::now();
    work();
    times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

/// A few hundred jobs each check must find, among millions that are fine.
std::vector<Event> planted(Micros now) {
  std::vector<Event> events;
  auto add = [&](const std::string& id, State state, Micros at, std::int32_t attempt = 1) {
    Event e;
    e.job_id = id;
    e.job = "PlantedJob";
    e.queue = "default";
    e.state = state;
    e.at = at;
    e.attempt = attempt;
    events.push_back(e);
  };
  for (int i = 0; i < 100; ++i) {
    const auto n = std::to_string(i);
    add("stuck-" + n, State::started, now - 3 * hour - i * second);
    add("lost-" + n, State::enqueued, now - 2 * hour - i * second);
    add("dead-" + n, State::dead, now - hour - i * second);
    add("twice-" + n, State::succeeded, now - hour - i * second);
    add("twice-" + n, State::succeeded, now - hour - i * second + 1, 2);
  }
  return events;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t event_count = 10'000'000;
  std::string dir = (std::filesystem::temp_directory_path() / "jobtrail-check-bench").string();
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--events" && i + 1 < argc) {
      event_count = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (arg == "--keep") {
      keep = true;
    } else {
      std::fprintf(stderr, "usage: %s [--events N] [--dir DIR] [--keep]\n", argv[0]);
      return 2;
    }
  }
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/check-bench.db";
  const Micros now = now_micros();
  auto store = open_store("sqlite:" + path);

  // The history: 30 days of requests, written in chunks so memory stays bounded.
  const auto fill_start = Clock::now();
  constexpr std::size_t chunk = 500'000;
  const std::size_t chunks = std::max<std::size_t>(1, (event_count + chunk - 1) / chunk);
  const Micros span = 30 * 24 * hour;
  std::size_t stored = 0;
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::size_t size = std::min(chunk, event_count - std::min(event_count, c * chunk));
    if (size == 0) break;
    const Micros start = now - span - 6 * hour + static_cast<Micros>(c) * (span / static_cast<Micros>(chunks));
    auto workload = bench::make_workload(size, start, span / static_cast<Micros>(chunks), c + 1);
    for (std::size_t i = 0; i < workload.events.size(); i += 5000) {
      const auto end = std::min(workload.events.size(), i + 5000);
      std::vector<Event> batch(workload.events.begin() + static_cast<std::ptrdiff_t>(i),
                               workload.events.begin() + static_cast<std::ptrdiff_t>(end));
      stored += store->append(batch).stored;
    }
  }
  stored += store->append(planted(now)).stored;
  for (int i = 0; i < 10; ++i) {
    Schedule schedule;
    schedule.job = "CronJob" + std::to_string(i);
    schedule.every = 24 * hour;
    schedule.grace = hour;
    store->register_schedule(schedule);
  }
  const double fill_s = std::chrono::duration<double>(Clock::now() - fill_start).count();

  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  auto scalar = [&](const char* sql) {
    sqlite3_stmt* statement = nullptr;
    sqlite3_prepare_v2(db, sql, -1, &statement, nullptr);
    std::int64_t value = 0;
    if (sqlite3_step(statement) == SQLITE_ROW) value = sqlite3_column_int64(statement, 0);
    sqlite3_finalize(statement);
    return value;
  };
  const auto jobs = scalar("SELECT count(*) FROM job");
  std::printf("store: %zu events, %lld jobs, %.1f MB, filled in %.0f s\n\n", stored, static_cast<long long>(jobs),
              static_cast<double>(std::filesystem::file_size(path)) / 1e6, fill_s);

  // The baseline: what a check without an index costs — every row of the job table read.
  // Warm the cache first, so both sides are measured from memory.
  scalar("SELECT count(*) FROM job NOT INDEXED WHERE last_at >= 0");
  std::int64_t scanned = 0;
  const double scan_ms = median_ms(3, [&] { scanned = scalar("SELECT count(*) FROM job NOT INDEXED WHERE last_at >= 0"); });
  std::printf("%-40s %10.2f ms  (%lld rows)\n", "full scan of the job table", scan_ms, static_cast<long long>(scanned));

  JobDeadlines stuck_deadlines;
  stuck_deadlines.deadline = hour;
  stuck_deadlines.per_class = {{"NightlyReportJob", 10 * hour}};
  JobDeadlines lost_deadlines;
  lost_deadlines.deadline = hour / 2;
  struct Timed {
    const char* name;
    std::function<std::int64_t()> run;
  };
  const Timed checks[] = {
      {"stuck_jobs (1h, one class 10h)", [&] { return store->stuck_jobs(stuck_deadlines, now, 5).total; }},
      {"lost_jobs (30m)", [&] { return store->lost_jobs(lost_deadlines, now, 5).total; }},
      {"duplicate_executions (7d)", [&] { return store->duplicate_executions(now - 7 * 24 * hour, 5).total; }},
      {"dead_jobs (24h)", [&] { return store->dead_jobs(now - 24 * hour, 5).total; }},
      {"missed_cron_runs (10 schedules)", [&] { return static_cast<std::int64_t>(store->schedules().size()); }},
  };
  double worst = 0;
  for (const auto& check : checks) {
    std::int64_t found = check.run();  // warm
    const double ms = median_ms(5, [&] { found = check.run(); });
    worst = std::max(worst, ms / scan_ms);
    std::printf("%-40s %10.2f ms  (%lld rows)  %.4fx the full scan\n", check.name, ms, static_cast<long long>(found),
                ms / scan_ms);
  }
  std::printf("\nworst ratio: %.4fx (aim: at most 0.1x: %s)\n", worst, worst <= 0.1 ? "met" : "NOT met");
  sqlite3_close(db);
  store.reset();
  if (!keep) std::filesystem::remove_all(dir);
  return 0;  // small smoke runs are dominated by fixed costs; the aim is read at 10M events
}
