// The tracker's speed, measured beside its baselines in the same run:
//   1. the record call's cost on the caller's thread (p50/p99) and the sustained rate into
//      SQLite through the tracker, with every query index in place, and bytes on disk per event;
//   2. the same events written the naive way (one autocommit INSERT per event into a plain
//      text-keyed table, SQLite's default settings) and the raw limit (one prepared INSERT per
//      event into the same plain table, batched transactions, WAL), the latter also with the
//      text indexes the plain table needs to answer the same look-ups;
//   3. show / trace / ls --entity / cursored ls pages / ls --follow's poll (the jobs that changed since
//      the last poll, from the index of writes) / impact at a small and a large store.
// Usage: tracker_bench [--events N] [--naive-events N] [--small N] [--large N] [--batch N] [--dir DIR] [--keep]
//                      [--lookups-only]

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "jobtrail/store.h"
#include "jobtrail/tracker.h"
#include "workload.h"

using namespace jobtrail;
using Clock = std::chrono::steady_clock;

namespace {

struct Settings {
  std::size_t events = 1'000'000;
  std::size_t naive_events = 3'000;
  std::size_t small = 100'000;
  std::size_t large = 10'000'000;
  std::size_t batch = 5'000;
  std::filesystem::path dir = std::filesystem::temp_directory_path() / "jobtrail-bench";
  bool keep = false;  ///< keep the stores for a look with sqlite3
  bool lookups_only = false;  ///< skip the write measurements (part 1 and 2)
};

constexpr Micros t0 = 1'790'000'000'000'000;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

template <typename T>
T quantile(std::vector<T> values, double q) {
  if (values.empty()) return T{};
  auto index = static_cast<std::size_t>(q * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index), values.end());
  return values[index];
}

std::uintmax_t store_bytes(const std::filesystem::path& path) {
  std::uintmax_t total = 0;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::error_code ignored;
    auto size = std::filesystem::file_size(path.string() + suffix, ignored);
    if (!ignored) total += size;
  }
  return total;
}

void fresh(const std::filesystem::path& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::filesystem::remove(path.string() + suffix);
}

void check(int code, sqlite3* db, const char* what) {
  if (code != SQLITE_OK && code != SQLITE_DONE && code != SQLITE_ROW) {
    std::fprintf(stderr, "tracker_bench: %s: %s\n", what, sqlite3_errmsg(db));
    std::exit(1);
  }
}

// The plain table a first version would write: every field as text, one row per event.
constexpr const char* plain_schema =
    "CREATE TABLE events (job_id TEXT, job TEXT, queue TEXT, correlation_id TEXT, parent_job_id TEXT, "
    "state TEXT, at INTEGER, attempt INTEGER, worker TEXT, error_class TEXT, error_message TEXT, entity TEXT)";

// Inserts `events` into the plain table; `batch` events per transaction (1 = autocommit).
// The indexes the plain table needs to answer show, trace and ls --entity at all.
constexpr const char* plain_lookup_indexes =
    "CREATE INDEX events_by_job ON events (job_id);"
    "CREATE INDEX events_by_correlation ON events (correlation_id);"
    "CREATE INDEX events_by_entity ON events (entity)";

double plain_inserts(const std::filesystem::path& path, const std::vector<Event>& events, std::size_t count,
                     std::size_t batch, bool wal, bool indexed = false) {
  fresh(path);
  sqlite3* db = nullptr;
  check(sqlite3_open(path.c_str(), &db), db, "open");
  if (wal) {
    check(sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr), db, "pragma");
  }
  check(sqlite3_exec(db, plain_schema, nullptr, nullptr, nullptr), db, "schema");
  if (indexed) check(sqlite3_exec(db, plain_lookup_indexes, nullptr, nullptr, nullptr), db, "indexes");
  sqlite3_stmt* insert = nullptr;
  check(sqlite3_prepare_v2(db, "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", -1, &insert, nullptr), db,
        "prepare");
  auto bind_text = [&](int index, const std::string& text) {
    if (text.empty()) {
      sqlite3_bind_null(insert, index);
    } else {
      sqlite3_bind_text(insert, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
    }
  };
  const std::string no_entity;
  auto start = Clock::now();
  for (std::size_t i = 0; i < count; ++i) {
    if (batch > 1 && i % batch == 0) sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    const auto& e = events[i];
    bind_text(1, e.job_id);
    bind_text(2, e.job);
    bind_text(3, e.queue);
    bind_text(4, e.correlation_id);
    bind_text(5, e.parent_job_id);
    auto state = std::string(to_string(e.state));
    bind_text(6, state);
    sqlite3_bind_int64(insert, 7, e.at);
    sqlite3_bind_int(insert, 8, e.attempt);
    bind_text(9, e.worker);
    bind_text(10, e.error.error_class);
    bind_text(11, e.error.message);
    // Bound as SQLITE_STATIC, so the text must outlive the step: a reference into the event,
    // never a temporary (one destroyed before sqlite3_step read it, measuring freed memory).
    const std::string& entity = e.entities.empty() ? no_entity : e.entities.front();
    bind_text(12, entity);
    check(sqlite3_step(insert), db, "insert");
    sqlite3_reset(insert);
    if (batch > 1 && (i % batch == batch - 1 || i + 1 == count)) {
      check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit");
    }
  }
  double elapsed = seconds_since(start);
  sqlite3_finalize(insert);
  sqlite3_close(db);
  return static_cast<double>(count) / elapsed;
}

struct TrackerRun {
  double events_per_second = 0;
  std::int64_t p50_ns = 0, p99_ns = 0, p999_ns = 0;
  double bytes_per_event = 0;
  std::uint64_t dropped = 0;
};

// Records `events` from `threads` threads at once, timing every call.
TrackerRun run_tracker(const std::filesystem::path& path, std::vector<Event> events, std::size_t batch,
                       std::size_t threads = 1) {
  fresh(path);
  TrackerOptions options;
  options.max_batch = batch;
  options.queue_capacity = 200'000;
  TrackerRun run;
  std::vector<std::int32_t> costs(events.size());
  {
    Tracker tracker(path.string(), options);
    auto start = Clock::now();
    auto record_slice = [&](std::size_t begin, std::size_t end) {
      // Bursts that fit the queue together, then wait for the writer: the rate measured is
      // the writer's sustained rate, and every call is timed against a queue with room.
      const std::size_t burst = 100'000 / threads;
      for (std::size_t i = begin; i < end; ++i) {
        auto before = Clock::now();
        tracker.record(std::move(events[i]));
        costs[i] = static_cast<std::int32_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - before).count());
        if ((i - begin) % burst == burst - 1) tracker.flush(std::chrono::minutes(5));
      }
    };
    std::vector<std::thread> recorders;
    const std::size_t slice = events.size() / threads;
    for (std::size_t t = 0; t < threads; ++t) {
      recorders.emplace_back(record_slice, t * slice, t + 1 == threads ? events.size() : (t + 1) * slice);
    }
    for (auto& recorder : recorders) recorder.join();
    tracker.flush(std::chrono::minutes(5));
    run.events_per_second = static_cast<double>(events.size()) / seconds_since(start);
    auto counters = tracker.counters();
    run.dropped = counters.dropped_queue_full + counters.dropped_invalid + counters.dropped_store_error;
  }
  run.p50_ns = quantile(costs, 0.50);
  run.p99_ns = quantile(costs, 0.99);
  run.p999_ns = quantile(costs, 0.999);
  run.bytes_per_event = static_cast<double>(store_bytes(path)) / static_cast<double>(events.size());
  return run;
}

double run_store_direct(const std::filesystem::path& path, const std::vector<Event>& events, std::size_t batch) {
  fresh(path);
  auto store = open_store(path.string());
  auto start = Clock::now();
  std::vector<Event> chunk;
  for (std::size_t i = 0; i < events.size(); i += batch) {
    chunk.assign(events.begin() + static_cast<std::ptrdiff_t>(i),
                 events.begin() + static_cast<std::ptrdiff_t>(std::min(events.size(), i + batch)));
    store->append(chunk);
  }
  return static_cast<double>(events.size()) / seconds_since(start);
}

struct LookupTimes {
  double show_us = 0, trace_us = 0, entity_us = 0;
  double page_us = 0;         ///< list_page at a cursor: 50 jobs and the bounded count
  double state_page_us = 0;   ///< the same with --state failed,dead
  double follow_poll_us = 0;  ///< changed_jobs from a position 100 state changes back (any job)
  double follow_idle_us = 0;  ///< changed_jobs from the newest position: nothing changed
  double follow_fresh_us = 0; ///< changed_jobs just after another connection wrote 100 changes
  double impact_us = 0;        ///< impact of a window holding about 100 jobs
  double class_impact_us = 0;  ///< the same windows, one job class
  double state_impact_us = 0;  ///< impact --state failed,dead over the whole store
};

// Jobs in each window `impact` is timed over: the same number at both sizes, so the figures
// compare an index range of equal length in a small and a large index.
constexpr std::size_t impact_window_jobs = 100;

// Fills a store with `count` events and times the CLI's three look-ups, median of many.
LookupTimes lookups(const std::filesystem::path& path, std::size_t count, std::size_t batch) {
  fresh(path);
  std::vector<std::string> job_ids, correlations, entities, change_targets, follow_pool;
  ChangePosition before_changes;
  Micros later = 0;
  {
    auto store = open_store(path.string());
    constexpr std::size_t chunk_events = 500'000;
    std::mt19937_64 pick(7);
    for (std::size_t done = 0, round = 0; done < count; ++round) {
      auto workload = bench::make_workload(std::min(chunk_events, count - done),
                                           t0 + static_cast<Micros>(round) * 3'600'000'000LL, 3'600'000'000LL, round + 11);
      for (std::size_t i = 0; i < workload.events.size(); i += batch) {
        std::vector<Event> chunk(workload.events.begin() + static_cast<std::ptrdiff_t>(i),
                                 workload.events.begin() + static_cast<std::ptrdiff_t>(std::min(workload.events.size(), i + batch)));
        store->append(chunk);
      }
      done += workload.events.size();
      for (int k = 0; k < 50; ++k) {
        job_ids.push_back(workload.job_ids[pick() % workload.job_ids.size()]);
        correlations.push_back(workload.correlation_ids[pick() % workload.correlation_ids.size()]);
        entities.push_back(workload.entities[pick() % workload.entities.size()]);
      }
      for (int k = 0; k < 100; ++k) change_targets.push_back(workload.job_ids[pick() % workload.job_ids.size()]);
      for (int k = 0; k < 1000; ++k) follow_pool.push_back(workload.job_ids[pick() % workload.job_ids.size()]);
    }
    // What a follower polls for: 100 distinct jobs, from all over the store, changing state
    // after its last look (one batch of `dead`, an hour after the last workload).
    std::sort(change_targets.begin(), change_targets.end());
    change_targets.erase(std::unique(change_targets.begin(), change_targets.end()), change_targets.end());
    std::shuffle(change_targets.begin(), change_targets.end(), pick);
    change_targets.resize(std::min<std::size_t>(100, change_targets.size()));
    before_changes = store->last_change();
    std::vector<Event> changes;
    later = t0 + static_cast<Micros>(count / chunk_events + 2) * 3'600'000'000LL;
    for (std::size_t k = 0; k < change_targets.size(); ++k) {
      Event dead;
      dead.job_id = change_targets[k];
      dead.state = State::dead;
      dead.at = later + static_cast<Micros>(k);
      changes.push_back(std::move(dead));
    }
    store->append(changes);
  }
  OpenOptions read_only;
  read_only.read_only = true;
  auto store = open_store(path.string(), read_only);
  auto time_each = [](std::size_t n, auto&& query) {
    std::vector<double> micros;
    for (std::size_t i = 0; i < n; ++i) {
      auto start = Clock::now();
      query(i);
      micros.push_back(seconds_since(start) * 1e6);
    }
    return quantile(micros, 0.5);
  };
  std::size_t n = std::min<std::size_t>(job_ids.size(), 1000);
  // Repeat the key lists so that small stores are timed as often as large ones.
  while (job_ids.size() < n * 2) {
    job_ids.insert(job_ids.end(), job_ids.begin(), job_ids.end());
    correlations.insert(correlations.end(), correlations.begin(), correlations.end());
    entities.insert(entities.end(), entities.begin(), entities.end());
  }
  LookupTimes times;
  times.show_us = time_each(n, [&](std::size_t i) {
    auto job = store->find_job(job_ids[i]);
    auto events = store->events_of(job_ids[i]);
    if (!job || events.empty()) std::abort();
  });
  times.trace_us = time_each(n, [&](std::size_t i) {
    if (store->jobs_in_trace(correlations[i]).empty()) std::abort();
  });
  times.entity_us = time_each(n, [&](std::size_t i) {
    JobFilter filter;
    filter.entity = entities[i];
    if (store->list_jobs(filter).empty()) std::abort();
  });
  // Cursors at random places in the list: the position of a random job, as a page ending
  // there would hand it on. Most have more than page_count_limit jobs after them at 10M, so
  // the bounded count walks its whole bound there.
  std::vector<ListPosition> positions;
  for (std::size_t i = 0; i < n; ++i) {
    const auto job = store->find_job(job_ids[i]);
    positions.push_back({job->first_event_at, job->row});
  }
  times.page_us = time_each(n, [&](std::size_t i) {
    JobFilter filter;
    filter.after = positions[i];
    if (list_page(*store, filter).jobs.empty() && i == 0) std::abort();
  });
  times.state_page_us = time_each(n, [&](std::size_t i) {
    JobFilter filter;
    filter.states = {State::failed, State::dead};
    filter.after = positions[i];
    list_page(*store, filter);
  });
  JobFilter everything;
  everything.limit = 1000;  // as ls --follow reads
  times.follow_poll_us = time_each(n, [&](std::size_t) {
    if (store->changed_jobs(everything, before_changes).jobs.size() != change_targets.size()) std::abort();
  });
  const ChangePosition newest = store->last_change();
  times.follow_idle_us = time_each(n, [&](std::size_t) {
    if (!store->changed_jobs(everything, newest).jobs.empty()) std::abort();
  });
  // Windows ending at a random job and reaching back over the next impact_window_jobs jobs in
  // list order (found with list_jobs, outside the timing): a window of time would hold five
  // times more jobs at 10M, whose workload packs 500k events into each hour, than at 100k.
  std::vector<std::pair<Micros, Micros>> windows;
  for (std::size_t i = 0; i < n; ++i) {
    JobFilter older;
    older.after = positions[i];
    older.limit = impact_window_jobs;
    const std::vector<JobRecord> jobs = store->list_jobs(older);
    windows.emplace_back(jobs.empty() ? positions[i].first_event_at : jobs.back().first_event_at,
                         positions[i].first_event_at + 1);
  }
  times.impact_us = time_each(n, [&](std::size_t i) {
    ImpactFilter filter;
    std::tie(filter.since, filter.until) = windows[i];
    if (store->impact(filter).entity_count == 0) std::abort();
  });
  times.class_impact_us = time_each(n, [&](std::size_t i) {
    ImpactFilter filter;
    filter.job = "WelcomeEmailJob";
    std::tie(filter.since, filter.until) = windows[i];
    if (store->impact(filter).matching_jobs > static_cast<std::int64_t>(2 * impact_window_jobs)) std::abort();
  });
  // Every job of the workload ends succeeded: the range of job_by_state is empty, and the
  // figure says the look-up stays in it instead of reading the window's jobs (all of them).
  times.state_impact_us = time_each(n, [&](std::size_t) {
    ImpactFilter filter;
    filter.states = {State::failed, State::dead};
    filter.since = t0;
    store->impact(filter);
  });
  // What `ls --follow` meets: each poll that finds changes comes right after another
  // connection (a worker's) wrote them, and a write by another connection makes SQLite drop
  // this one's whole page cache (seen with SQLITE_DBSTATUS_CACHE_MISS: every page of a table
  // read twice misses again after one row is written elsewhere), so the changed rows come
  // from the file (the OS's cache) at both sizes. (The timing above re-reads the same
  // 100 changes with nothing written between: its pages stay cached at 100k, where they fit
  // SQLite's 2 MB cache, and not at 10M, a case a follower never meets, as each batch of
  // changes is read once.) Timed last: it adds `dead` events to the store.
  {
    auto writer = open_store(path.string());  // a connection of its own, as a worker's is
    std::mt19937_64 pick(13);
    std::sort(follow_pool.begin(), follow_pool.end());
    follow_pool.erase(std::unique(follow_pool.begin(), follow_pool.end()), follow_pool.end());
    const std::size_t batch_jobs = std::min<std::size_t>(100, follow_pool.size());
    std::vector<std::string> targets;
    std::vector<double> micros;
    for (std::size_t i = 0; i < n; ++i) {
      targets.clear();
      while (targets.size() < batch_jobs) {
        const std::string& id = follow_pool[pick() % follow_pool.size()];
        if (std::find(targets.begin(), targets.end(), id) == targets.end()) targets.push_back(id);
      }
      std::vector<Event> changes;
      for (const std::string& id : targets) {
        Event dead;
        dead.job_id = id;
        dead.state = State::dead;
        dead.at = ++later;
        changes.push_back(std::move(dead));
      }
      const ChangePosition seen = store->last_change();
      writer->append(changes);
      const auto start = Clock::now();  // the poll alone: the write is the worker's
      if (store->changed_jobs(everything, seen).jobs.size() != targets.size()) std::abort();
      micros.push_back(seconds_since(start) * 1e6);
    }
    times.follow_fresh_us = quantile(micros, 0.5);
  }
  return times;
}

std::size_t parse_count(const char* text) {
  char* end = nullptr;
  auto value = std::strtoull(text, &end, 10);
  if (!end || *end != '\0' || value == 0) {
    std::fprintf(stderr, "tracker_bench: not a positive count: %s\n", text);
    std::exit(2);
  }
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "tracker_bench: %s needs a value\n", flag.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (flag == "--events") settings.events = parse_count(value());
    else if (flag == "--naive-events") settings.naive_events = parse_count(value());
    else if (flag == "--small") settings.small = parse_count(value());
    else if (flag == "--large") settings.large = parse_count(value());
    else if (flag == "--dir") settings.dir = value();
    else if (flag == "--keep") settings.keep = true;
    else if (flag == "--lookups-only") settings.lookups_only = true;
    else if (flag == "--batch") settings.batch = parse_count(value());
    else {
      std::fprintf(stderr,
                   "usage: tracker_bench [--events N] [--naive-events N] [--small N] [--large N] [--batch N] [--dir DIR] [--keep]\n"
                   "                     [--lookups-only]\n");
      return flag == "--help" ? 0 : 2;
    }
  }
  std::filesystem::create_directories(settings.dir);
  const auto& dir = settings.dir;
  std::printf("jobtrail tracker benchmark: %zu events, batches of %zu, in %s\n", settings.events, settings.batch,
              dir.c_str());

  if (!settings.lookups_only) {
    auto workload = bench::make_workload(settings.events, t0, 3'600'000'000LL, 1);
    const auto& events = workload.events;
    std::printf("workload: %zu events, %zu jobs, %zu requests, %.2f events per job\n\n", events.size(),
                workload.job_ids.size(), workload.correlation_ids.size(),
                static_cast<double>(events.size()) / static_cast<double>(workload.job_ids.size()));

    auto tracker = run_tracker(dir / "tracker.db", events, settings.batch);
    auto contended = run_tracker(dir / "tracker-4.db", events, settings.batch, 4);
    auto direct = run_store_direct(dir / "direct.db", events, settings.batch);
    auto naive = plain_inserts(dir / "naive.db", events, std::min(settings.naive_events, events.size()), 1, false);
    auto raw = plain_inserts(dir / "raw.db", events, events.size(), settings.batch, true);
    auto raw_bytes = static_cast<double>(store_bytes(dir / "raw.db")) / static_cast<double>(events.size());
    auto raw_indexed = plain_inserts(dir / "raw-indexed.db", events, events.size(), settings.batch, true, true);
    auto raw_indexed_bytes = static_cast<double>(store_bytes(dir / "raw-indexed.db")) / static_cast<double>(events.size());

    std::printf("record() on the caller's thread: p50 %.3f us, p99 %.3f us, p99.9 %.3f us (dropped %llu)\n",
                static_cast<double>(tracker.p50_ns) / 1000, static_cast<double>(tracker.p99_ns) / 1000,
                static_cast<double>(tracker.p999_ns) / 1000, static_cast<unsigned long long>(tracker.dropped));
    std::printf("record() from 4 threads at once:  p50 %.3f us, p99 %.3f us, p99.9 %.3f us (dropped %llu)\n",
                static_cast<double>(contended.p50_ns) / 1000, static_cast<double>(contended.p99_ns) / 1000,
                static_cast<double>(contended.p999_ns) / 1000, static_cast<unsigned long long>(contended.dropped));
    std::printf("%-58s %12.0f events/s\n", "tracker -> SQLite store, all indexes (sustained)", tracker.events_per_second);
    std::printf("%-58s %12.0f events/s\n", "Store::append directly, same batches", direct);
    std::printf("%-58s %12.0f events/s\n", "naive: autocommit INSERT per event, plain table, defaults", naive);
    std::printf("%-58s %12.0f events/s\n", "raw limit: prepared INSERT, batched, plain table, WAL", raw);
    std::printf("%-58s %12.0f events/s\n", "raw, plain table + text indexes for the same look-ups", raw_indexed);
    std::printf("ratio tracker / naive:                 %8.1fx\n", tracker.events_per_second / naive);
    std::printf("ratio tracker / raw limit:             %8.2fx\n", tracker.events_per_second / raw);
    std::printf("ratio tracker / raw with look-up index:%8.2fx\n", tracker.events_per_second / raw_indexed);
    std::printf("bytes on disk per event: jobtrail store %.1f, plain table %.1f, plain table with look-up indexes %.1f\n\n",
                tracker.bytes_per_event, raw_bytes, raw_indexed_bytes);
  }

  auto small = lookups(dir / "small.db", settings.small, settings.batch);
  auto large = lookups(dir / "large.db", settings.large, settings.batch);
  std::printf("look-ups, median of 1000 (us):   %10zu events %10zu events   ratio\n", settings.small, settings.large);
  std::printf("  show (job row + timeline)       %16.1f %17.1f   %5.2fx\n", small.show_us, large.show_us,
              large.show_us / small.show_us);
  std::printf("  trace (jobs of one request)     %16.1f %17.1f   %5.2fx\n", small.trace_us, large.trace_us,
              large.trace_us / small.trace_us);
  std::printf("  ls --entity (jobs of one user)  %16.1f %17.1f   %5.2fx\n", small.entity_us, large.entity_us,
              large.entity_us / small.entity_us);
  std::printf("  ls --cursor (page + count)      %16.1f %17.1f   %5.2fx\n", small.page_us, large.page_us,
              large.page_us / small.page_us);
  std::printf("  ls --state failed,dead --cursor %16.1f %17.1f   %5.2fx\n", small.state_page_us, large.state_page_us,
              large.state_page_us / small.state_page_us);
  std::printf("  ls --follow poll (100 changes)  %16.1f %17.1f   %5.2fx\n", small.follow_poll_us, large.follow_poll_us,
              large.follow_poll_us / small.follow_poll_us);
  std::printf("  ls --follow poll (no change)    %16.1f %17.1f   %5.2fx\n", small.follow_idle_us, large.follow_idle_us,
              large.follow_idle_us / small.follow_idle_us);
  std::printf("  ls --follow poll (100 just written by a worker)\n"
              "                                  %16.1f %17.1f   %5.2fx\n", small.follow_fresh_us, large.follow_fresh_us,
              large.follow_fresh_us / small.follow_fresh_us);
  std::printf("  impact (100-job window)         %16.1f %17.1f   %5.2fx\n", small.impact_us, large.impact_us,
              large.impact_us / small.impact_us);
  std::printf("  impact --job CLASS (same)       %16.1f %17.1f   %5.2fx\n", small.class_impact_us,
              large.class_impact_us, large.class_impact_us / small.class_impact_us);
  std::printf("  impact --state failed,dead (all)%16.1f %17.1f   %5.2fx\n", small.state_impact_us,
              large.state_impact_us, large.state_impact_us / small.state_impact_us);
  if (!settings.keep) {
    for (const char* name : {"tracker.db", "tracker-4.db", "direct.db", "naive.db", "raw.db", "raw-indexed.db", "small.db", "large.db"}) fresh(dir / name);
  }
  return 0;
}
