// console_bench: each page of the web console rendered from a store of N events, timed on the
// server side (Console::handle: the store's reads, the templates, the SVG; no HTTP), p50 and
// p95 over repeated requests, beside the same pages from a 100,000-event store measured in the
// same run. Aim: p95 under 50 ms at the large size and within 1.5x of the small one.
//
//   console_bench [--events N] [--runs R] [--dir DIR]     (default: 1,000,000 events, 40 runs)

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "jobtrail/console.h"
#include "jobtrail/store.h"
#include "workload.h"

using namespace jobtrail;

namespace {

using Clock = std::chrono::steady_clock;
constexpr Micros second = 1'000'000;
constexpr Micros hour = 3600 * second;
constexpr std::size_t small_events = 100'000;
constexpr int big_trace_jobs = 5000;

struct Timing {
  double p50 = 0;
  double p95 = 0;
};

struct Fixture {
  std::unique_ptr<Store> store;
  std::string job_id;
  std::string correlation_id;
  std::string entity;
  std::string second_page;  ///< the cursor of the newest 50 jobs' next page
};

/// A store of about `event_count` events over the last 7 days, a 5,000-job trace (every job a
/// child of the first, one in ten retried), and one check run with failing rows.
Fixture fill(const std::string& path, std::size_t event_count, Micros now) {
  Fixture fixture;
  fixture.store = open_store("sqlite:" + path);
  constexpr std::size_t chunk = 500'000;
  const std::size_t chunks = std::max<std::size_t>(1, (event_count + chunk - 1) / chunk);
  const Micros span = 7 * 24 * hour;
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::size_t size = std::min(chunk, event_count - std::min(event_count, c * chunk));
    if (size == 0) break;
    const Micros start = now - span + static_cast<Micros>(c) * (span / static_cast<Micros>(chunks));
    bench::Workload workload = bench::make_workload(size, start, span / static_cast<Micros>(chunks), c + 1);
    for (std::size_t i = 0; i < workload.events.size(); i += 5000) {
      const auto end = std::min(workload.events.size(), i + 5000);
      fixture.store->append(std::vector<Event>(workload.events.begin() + static_cast<std::ptrdiff_t>(i),
                                               workload.events.begin() + static_cast<std::ptrdiff_t>(end)));
    }
    if (c == chunks / 2) {
      fixture.job_id = workload.job_ids[workload.job_ids.size() / 2];
      fixture.correlation_id = workload.correlation_ids[workload.correlation_ids.size() / 2];
      fixture.entity = workload.entities[workload.entities.size() / 2];
    }
  }
  std::vector<Event> trace;
  const Micros trace_start = now - 2 * hour;
  for (int i = 0; i < big_trace_jobs; ++i) {
    const auto add = [&](State state, Micros at, int attempt) {
      Event e;
      e.job_id = "close-job-" + std::to_string(i);
      e.job = i == 0 ? "MonthCloseJob" : "InvoiceJob";
      e.queue = "billing";
      e.correlation_id = "month-close-5000";
      if (i > 0) e.parent_job_id = "close-job-0";
      e.state = state;
      e.at = at;
      e.attempt = attempt;
      trace.push_back(std::move(e));
    };
    const Micros at = trace_start + static_cast<Micros>(i) * second;
    add(State::enqueued, at, 1);
    add(State::started, at + 20 * second, 1);
    if (i % 10 == 3) {
      add(State::failed, at + 40 * second, 1);
      add(State::enqueued, at + 41 * second, 2);
      add(State::started, at + 60 * second, 2);
      add(State::succeeded, at + 90 * second, 2);
    } else {
      add(State::succeeded, at + 50 * second, 1);
    }
  }
  fixture.store->append(trace);
  CheckRunRecord run;
  run.started_at = now - hour;
  run.finished_at = now - hour + second;
  run.config = "checks.yaml";
  for (const char* name : {"stuck_jobs", "lost_jobs", "double_charges"}) {
    CheckResultRecord result;
    result.check = name;
    result.status = CheckStatus::fail;
    result.severity = "error";
    result.started_at = run.started_at;
    result.duration = 1000;
    for (int r = 0; r < 5; ++r) {
      result.failing.push_back({std::string(name) + std::to_string(r), run.started_at,
                                "{\"job_id\": \"close-job-" + std::to_string(r) + "\", \"state\": \"started\"}", ""});
    }
    result.violations = 5;
    result.new_violations = 5;
    run.results.push_back(result);
  }
  fixture.store->record_check_run(run);
  fixture.second_page = list_page(*fixture.store, JobFilter{}).next_cursor;
  return fixture;
}

/// `cold`: a new Console for each request, so nothing a console keeps between requests helps.
Timing time_page(console::Console& shared, Store& store, const std::string& path,
                 const std::vector<std::pair<std::string, std::string>>& params, int runs, Micros now, bool cold) {
  console::Request request;
  request.path = path;
  request.params = params;
  std::vector<double> times;
  for (int i = 0; i < runs + 2; ++i) {
    console::Console fresh({});
    console::Console& console = cold ? fresh : shared;
    const auto start = Clock::now();
    const console::Reply reply = console.handle(request, &store, now);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (reply.status != 200) {
      std::fprintf(stderr, "console_bench: %s answered %d\n", path.c_str(), reply.status);
      std::exit(1);
    }
    if (i >= 2) times.push_back(ms);  // the first two warm the page cache
  }
  std::sort(times.begin(), times.end());
  return {times[times.size() / 2], times[std::min(times.size() - 1, times.size() * 95 / 100)]};
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t event_count = 1'000'000;
  int runs = 40;
  std::string dir = (std::filesystem::temp_directory_path() / "jobtrail-console-bench").string();
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--events" && i + 1 < argc) {
      event_count = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--events N] [--runs R] [--dir DIR]\n", argv[0]);
      return 2;
    }
  }
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const Micros now = now_micros();
  const auto fill_start = Clock::now();
  Fixture small = fill(dir + "/small.db", small_events, now);
  Fixture large = fill(dir + "/large.db", event_count, now);
  std::printf("stores: %zu and %zu events (+ a %d-job trace each), filled in %.0f s\n\n", small_events, event_count,
              big_trace_jobs, std::chrono::duration<double>(Clock::now() - fill_start).count());

  console::Console console({});
  struct PageCase {
    std::string name;
    std::function<std::string(const Fixture&)> path;
    std::vector<std::pair<std::string, std::string>> params;
    bool cold = false;
    /// Parameters that depend on the store (a cursor), added to `params`.
    std::function<std::vector<std::pair<std::string, std::string>>(const Fixture&)> params_of = nullptr;
  };
  const std::vector<PageCase> pages = {
      {"overview /ui/", [](const Fixture&) { return std::string("/ui/"); }, {}, true},
      {"job /ui/jobs/ID", [](const Fixture& f) { return "/ui/jobs/" + f.job_id; }, {}},
      {"trace /ui/traces/ID (request)", [](const Fixture& f) { return "/ui/traces/" + f.correlation_id; }, {}},
      {"trace of 5,000 jobs", [](const Fixture&) { return std::string("/ui/traces/month-close-5000"); }, {}},
      {"search /ui/jobs (newest 50)", [](const Fixture&) { return std::string("/ui/jobs"); }, {}},
      {"search state=failed", [](const Fixture&) { return std::string("/ui/jobs"); }, {{"state", "failed"}}},
      {"search, second page (cursor)", [](const Fixture&) { return std::string("/ui/jobs"); }, {}, false,
       [](const Fixture& f) { return std::vector<std::pair<std::string, std::string>>{{"cursor", f.second_page}}; }},
      {"impact /ui/impact (last 24h)", [](const Fixture&) { return std::string("/ui/impact"); }, {}},
      {"impact, 24h, every job read", [](const Fixture&) { return std::string("/ui/impact"); }, {{"max_jobs", "0"}}},
      {"impact state=failed,dead", [](const Fixture&) { return std::string("/ui/impact"); }, {{"state", "failed,dead"}}},
      {"entity /ui/entities/E", [](const Fixture& f) { return "/ui/entities/" + f.entity; }, {}},
      {"checks /ui/checks", [](const Fixture&) { return std::string("/ui/checks"); }, {}},
      {"check /ui/checks/NAME", [](const Fixture&) { return std::string("/ui/checks/stuck_jobs"); }, {}},
  };
  std::printf("%-32s %10s %10s %10s %10s %8s\n", "page", "100k p50", "100k p95", "large p50", "large p95", "p95 x");
  for (const PageCase& page : pages) {
    const auto params = [&](const Fixture& f) {
      auto all = page.params;
      if (page.params_of) {
        for (auto& param : page.params_of(f)) all.push_back(std::move(param));
      }
      return all;
    };
    const Timing a = time_page(console, *small.store, page.path(small), params(small), runs, now, page.cold);
    const Timing b = time_page(console, *large.store, page.path(large), params(large), runs, now, page.cold);
    std::printf("%-32s %8.2f ms %8.2f ms %8.2f ms %8.2f ms %7.2fx\n", page.name.c_str(), a.p50, a.p95, b.p50, b.p95,
                b.p95 / std::max(a.p95, 1e-6));
  }
  std::filesystem::remove_all(dir);
  return 0;
}
