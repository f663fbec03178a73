// The PostgreSQL store's speed, measured beside its baselines in the same run, each in a fresh
// database of its own on one server:
//   1. events/s through jobtrail::Tracker (default options) into a PostgreSQL store, until
//      flush() has seen everything committed, beside raw COPY of the same event rows (the
//      columns the store writes) into the same jobtrail.event table of a fresh store, and
//      beside the store's other way, one INSERT ... SELECT FROM unnest() per batch, and beside
//      raw COPY of every row an append writes (events, the jobs' final rows, their tags);
//   2. PostgresStore::append with EventInsert::copy against EventInsert::unnest, same batches:
//      which of the two open_store should keep;
//   3. show / trace / ls --entity look-ups at a small and a large store, filled through the
//      store's append in big batches from two writers at once.
// Write figures are medians over --runs runs, and ratios are taken within each run.
// Usage: pg_bench (--url URL | --start-cluster DIR) [--events N] [--small N] [--large N]
//                 [--runs R] [--batch N] [--fill-batch N] [--keys N] [--keep]

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "jobtrail/store.h"
#include "jobtrail/tracker.h"
#include "jobtrail/drivers/pg_connection.h"
#include "postgres/pg_store.h"
#include "workload.h"

using namespace jobtrail;
using Clock = std::chrono::steady_clock;

namespace {

struct Settings {
  std::string url;            ///< a server where we may create and drop databases
  std::string cluster_dir;    ///< or: start a throw-away cluster here
  std::size_t events = 200'000;
  std::size_t small = 100'000;
  std::size_t large = 10'000'000;
  std::size_t runs = 3;
  std::size_t batch = TrackerOptions{}.max_batch;  ///< the tracker's own batch size
  std::size_t fill_batch = 20'000;
  std::size_t keys = 1'000;
  bool keep = false;  ///< keep the databases for a look with psql
};

constexpr Micros t0 = 1'790'000'000'000'000;
constexpr Micros hour = 3'600'000'000LL;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

template <typename T>
T quantile(std::vector<T> values, double q) {
  if (values.empty()) return T{};
  auto index = static_cast<std::size_t>(q * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index), values.end());
  return values[index];
}

double median(const std::vector<double>& values) { return quantile(values, 0.5); }

/// "0.61, 0.58, 0.64": each run's ratio, to show the spread behind a median.
std::string listed(const std::vector<double>& values) {
  std::string text;
  char buffer[32];
  for (double value : values) {
    std::snprintf(buffer, sizeof buffer, "%s%.2f", text.empty() ? "" : ", ", value);
    text += buffer;
  }
  return text;
}

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "pg_bench: %s\n", message.c_str());
  std::exit(1);
}

// ---- Databases ----------------------------------------------------------------------------

/// The server's URL with another database: libpq lets a later dbname parameter override the
/// path's ("postgresql:///postgres?host=/tmp/x&dbname=other").
std::string with_database(const std::string& url, const std::string& name) {
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    return url + (url.find('?') == std::string::npos ? "?" : "&") + "dbname=" + name;
  }
  return url + " dbname=" + name;  // key=value form
}

/// Fresh databases on one server, dropped at the end unless kept.
class Databases {
 public:
  Databases(std::string url, bool keep) : url_(std::move(url)), keep_(keep), admin_(url_) {
    admin_.execute("SET client_min_messages = warning");
  }
  ~Databases() {
    if (keep_) {
      if (!names_.empty()) std::printf("kept databases: %s ... %s\n", names_.front().c_str(), names_.back().c_str());
      return;
    }
    for (const auto& name : names_) drop(name);
  }
  /// A new empty database; returns its URL.
  std::string fresh(const std::string& what) {
    auto name = "jobtrail_bench_" + std::to_string(getpid()) + "_" + std::to_string(names_.size()) + "_" + what;
    admin_.execute("DROP DATABASE IF EXISTS " + name);
    admin_.execute("CREATE DATABASE " + name);
    names_.push_back(name);
    return with_database(url_, name);
  }
  /// Drops the last database made, once done with it (saves the server's disk and cache).
  void drop_last() {
    if (keep_ || names_.empty()) return;
    drop(names_.back());
    names_.pop_back();
  }

 private:
  void drop(const std::string& name) noexcept {
    try {
      admin_.execute("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    } catch (const std::exception& error) {
      std::fprintf(stderr, "pg_bench: could not drop %s: %s\n", name.c_str(), error.what());
    }
  }
  std::string url_;
  bool keep_;
  pg::Connection admin_;
  std::vector<std::string> names_;
};

/// A fresh database holding an empty jobtrail store (schema, indexes): the store creates it.
std::string fresh_store(Databases& databases, const std::string& what) {
  auto url = databases.fresh(what);
  PostgresStore create(url, OpenOptions{});
  return url;
}

// ---- Writing ------------------------------------------------------------------------------

/// Events/s through the tracker until everything is committed. Records in bursts that fit
/// the default queue, each followed by flush(), so nothing is dropped and the rate measured is
/// the writer's sustained one.
double run_tracker(const std::string& url, const std::vector<Event>& events, std::uint64_t& dropped) {
  TrackerOptions options;
  const std::size_t burst = options.queue_capacity / 2;
  std::vector<Event> copy = events;  // record() takes events by value; copy outside the clock
  Tracker tracker(url, options);
  auto start = Clock::now();
  for (std::size_t i = 0; i < copy.size(); ++i) {
    tracker.record(std::move(copy[i]));
    if (i % burst == burst - 1 && !tracker.flush(std::chrono::minutes(5))) fail("tracker flush timed out");
  }
  if (!tracker.flush(std::chrono::minutes(5))) fail("tracker flush timed out");
  double rate = static_cast<double>(events.size()) / seconds_since(start);
  auto counters = tracker.counters();
  dropped = counters.dropped_queue_full + counters.dropped_invalid + counters.dropped_store_error;
  if (counters.stored != events.size()) {
    fail("the tracker stored " + std::to_string(counters.stored) + " of " + std::to_string(events.size()) + " events");
  }
  return rate;
}

/// The event rows as the store writes them: job and worker as integer ids, seq per job.
struct EventRow {
  std::int64_t job = 0;
  std::int32_t seq = 0;
  std::int32_t state = 0;
  Micros at = 0;
  std::int32_t attempt = 0;
  std::int64_t worker = 0;
  const ErrorInfo* error = nullptr;
};

std::vector<EventRow> event_rows(const std::vector<Event>& events) {
  std::unordered_map<std::string, std::pair<std::int64_t, std::int32_t>> jobs;  // id, events so far
  std::unordered_map<std::string, std::int64_t> workers;
  std::vector<EventRow> rows;
  rows.reserve(events.size());
  for (const auto& event : events) {
    auto [job, fresh] = jobs.try_emplace(event.job_id, static_cast<std::int64_t>(jobs.size() + 1), 0);
    auto [worker, _] = workers.try_emplace(event.worker, static_cast<std::int64_t>(workers.size() + 1));
    EventRow row;
    row.job = job->second.first;
    row.seq = job->second.second++;
    row.state = static_cast<int>(event.state);
    row.at = event.at;
    row.attempt = event.attempt;
    row.worker = worker->second;
    row.error = event.error.empty() ? nullptr : &event.error;
    rows.push_back(row);
  }
  return rows;
}

/// Appends rows [begin, end) in COPY's text format.
void append_event_rows(std::string& data, const std::vector<EventRow>& rows, std::size_t begin, std::size_t end) {
  for (std::size_t i = begin; i < end; ++i) {
    const auto& row = rows[i];
    data += std::to_string(row.job);
    data += '\t';
    data += std::to_string(row.seq);
    data += '\t';
    data += std::to_string(row.state);
    data += '\t';
    data += std::to_string(row.at);
    data += '\t';
    data += std::to_string(row.attempt);
    data += '\t';
    data += std::to_string(row.worker);
    for (const std::string* part : {row.error ? &row.error->error_class : nullptr, row.error ? &row.error->message : nullptr}) {
      data += '\t';
      if (part && !part->empty()) {
        pg::append_copy_text(data, *part);
      } else {
        data += "\\N";
      }
    }
    data += '\n';
  }
}

/// Raw COPY of the rows into jobtrail.event, one COPY (one transaction) per batch, the text
/// built inside the clock as any client would.
double raw_copy(const std::string& url, const std::vector<EventRow>& rows, std::size_t batch) {
  pg::Connection db(url);
  std::string data;
  auto start = Clock::now();
  for (std::size_t begin = 0; begin < rows.size(); begin += batch) {
    data.clear();
    append_event_rows(data, rows, begin, std::min(rows.size(), begin + batch));
    db.copy_in("COPY jobtrail.event (job, seq, state, at, attempt, worker, error_class, error_message) FROM STDIN", data);
  }
  return static_cast<double>(rows.size()) / seconds_since(start);
}

/// The job rows and entity tags a store holds after the workload, as lines of COPY text: the
/// rows an append writes besides the events.
struct StoredRows {
  std::vector<std::string> jobs, tags;
};

StoredRows stored_rows(const std::string& url) {
  pg::Connection db(url);
  auto lines = [](const pg::Result& result) {
    std::vector<std::string> out;
    for (int r = 0; r < result.rows(); ++r) {
      std::string line;
      for (int c = 0; c < result.columns(); ++c) {
        if (c) line += '\t';
        if (result.is_null(r, c)) {
          line += "\\N";
        } else {
          pg::append_copy_text(line, result.text(r, c));
        }
      }
      out.push_back(std::move(line));
    }
    return out;
  };
  return {lines(db.execute("SELECT * FROM jobtrail.job ORDER BY id")),
          lines(db.execute("SELECT entity, job FROM jobtrail.job_entity ORDER BY job"))};
}

/// Raw COPY of every row an append writes (the events, the jobs' final rows, their tags) into a
/// fresh store: one transaction per batch of events with its share of jobs and tags. No folding,
/// no look-ups, no updates: the floor of what writing the same history costs.
double raw_copy_all(const std::string& url, const std::vector<EventRow>& rows, const StoredRows& stored,
                    std::size_t batch) {
  pg::Connection db(url);
  const std::size_t batches = (rows.size() + batch - 1) / batch;
  std::string data;
  auto share = [&](const std::vector<std::string>& lines, std::size_t b) {
    data.clear();
    for (std::size_t i = lines.size() * b / batches; i < lines.size() * (b + 1) / batches; ++i) {
      data += lines[i];
      data += '\n';
    }
    return data;
  };
  auto start = Clock::now();
  for (std::size_t b = 0; b < batches; ++b) {
    pg::Transaction transaction(db);
    db.copy_in("COPY jobtrail.job FROM STDIN", share(stored.jobs, b));
    data.clear();
    append_event_rows(data, rows, b * batch, std::min(rows.size(), (b + 1) * batch));
    db.copy_in("COPY jobtrail.event (job, seq, state, at, attempt, worker, error_class, error_message) FROM STDIN", data);
    db.copy_in("COPY jobtrail.job_entity (entity, job) FROM STDIN", share(stored.tags, b));
    transaction.commit();
  }
  return static_cast<double>(rows.size()) / seconds_since(start);
}

/// The same rows with one INSERT ... SELECT FROM unnest(array parameters) per batch, as the
/// store's EventInsert::unnest sends them.
double raw_unnest(const std::string& url, const std::vector<EventRow>& rows, std::size_t batch) {
  pg::Connection db(url);
  auto start = Clock::now();
  for (std::size_t begin = 0; begin < rows.size(); begin += batch) {
    pg::ArrayLiteral columns[8];
    for (std::size_t i = begin; i < std::min(rows.size(), begin + batch); ++i) {
      const auto& row = rows[i];
      columns[0].add(row.job);
      columns[1].add(std::int64_t{row.seq});
      columns[2].add(std::int64_t{row.state});
      columns[3].add(row.at);
      columns[4].add(std::int64_t{row.attempt});
      columns[5].add(row.worker);
      columns[6].add_text_or_null(row.error ? std::string_view(row.error->error_class) : std::string_view());
      columns[7].add_text_or_null(row.error ? std::string_view(row.error->message) : std::string_view());
    }
    pg::Params params;
    for (auto& column : columns) params.add(column);
    db.exec(R"SQL(
      INSERT INTO jobtrail.event (job, seq, state, at, attempt, worker, error_class, error_message)
      SELECT * FROM unnest($1::bigint[], $2::integer[], $3::smallint[], $4::bigint[], $5::integer[],
                           $6::integer[], $7::text[], $8::text[]))SQL",
            params);
  }
  return static_cast<double>(rows.size()) / seconds_since(start);
}

/// PostgresStore::append directly, in the tracker's batch size.
double store_append(const std::string& url, const std::vector<Event>& events, std::size_t batch,
                    PostgresStore::EventInsert method) {
  PostgresStore store(url, OpenOptions{}, method);
  std::vector<Event> chunk;
  auto start = Clock::now();
  for (std::size_t i = 0; i < events.size(); i += batch) {
    chunk.assign(events.begin() + static_cast<std::ptrdiff_t>(i),
                 events.begin() + static_cast<std::ptrdiff_t>(std::min(events.size(), i + batch)));
    store.append(chunk);
  }
  return static_cast<double>(events.size()) / seconds_since(start);
}

std::int64_t count_rows(const std::string& url, const char* table) {
  pg::Connection db(url);
  return db.execute(std::string("SELECT count(*) FROM jobtrail.") + table).integer(0, 0);
}

// ---- Look-ups -----------------------------------------------------------------------------

struct Keys {
  std::vector<std::string> job_ids, correlations, entities;
};

struct Filled {
  std::string url;
  Keys keys;
  double seconds = 0;
  std::size_t events = 0;
};

/// A store of `count` events, written through PostgresStore::append in `batch`-event batches
/// from `writers` threads at once (each its own store and connection), in chunks of an hour of
/// traffic each. Picks about `keys` random IDs of each kind, spread over all chunks.
Filled fill(Databases& databases, const std::string& what, std::size_t count, std::size_t batch, std::size_t keys,
            int writers) {
  Filled filled;
  filled.url = fresh_store(databases, what);
  constexpr std::size_t chunk_events = 200'000;
  const std::size_t chunks = (count + chunk_events - 1) / chunk_events;
  const std::size_t keys_per_chunk = keys / chunks + 2;
  std::atomic<std::size_t> next{0}, written{0};
  std::vector<Keys> picked(static_cast<std::size_t>(writers));
  std::vector<std::string> errors(static_cast<std::size_t>(writers));
  auto start = Clock::now();
  auto writer = [&](std::size_t w) {
    try {
      PostgresStore store(filled.url, OpenOptions{});
      std::mt19937_64 pick(7 + w);
      std::vector<Event> slice;
      for (std::size_t chunk; (chunk = next++) < chunks;) {
        const std::size_t size = std::min(chunk_events, count - chunk * chunk_events);
        auto workload = bench::make_workload(size, t0 + static_cast<Micros>(chunk) * hour, hour, chunk + 11);
        for (std::size_t i = 0; i < workload.events.size(); i += batch) {
          slice.assign(workload.events.begin() + static_cast<std::ptrdiff_t>(i),
                       workload.events.begin() + static_cast<std::ptrdiff_t>(std::min(workload.events.size(), i + batch)));
          store.append(slice);
        }
        written += workload.events.size();
        for (std::size_t k = 0; k < keys_per_chunk; ++k) {
          picked[w].job_ids.push_back(workload.job_ids[pick() % workload.job_ids.size()]);
          picked[w].correlations.push_back(workload.correlation_ids[pick() % workload.correlation_ids.size()]);
          picked[w].entities.push_back(workload.entities[pick() % workload.entities.size()]);
        }
      }
    } catch (const std::exception& error) {
      errors[w] = error.what();
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) threads.emplace_back(writer, static_cast<std::size_t>(w));
  for (auto& thread : threads) thread.join();
  filled.seconds = seconds_since(start);
  for (const auto& error : errors) {
    if (!error.empty()) fail("filling " + what + ": " + error);
  }
  filled.events = written;
  // Fresh statistics, as autovacuum would have them soon after a real fill.
  pg::Connection(filled.url).execute("VACUUM ANALYZE");
  std::mt19937_64 shuffle(3);
  for (auto& part : picked) {
    auto append = [](std::vector<std::string>& to, const std::vector<std::string>& from) {
      to.insert(to.end(), from.begin(), from.end());
    };
    append(filled.keys.job_ids, part.job_ids);
    append(filled.keys.correlations, part.correlations);
    append(filled.keys.entities, part.entities);
  }
  for (auto* list : {&filled.keys.job_ids, &filled.keys.correlations, &filled.keys.entities}) {
    std::shuffle(list->begin(), list->end(), shuffle);
    // Small stores have fewer chunks than keys wanted: repeat the keys to reach the count.
    const std::size_t have = list->size();
    for (std::size_t i = 0; list->size() < keys; ++i) list->push_back((*list)[i % have]);
    list->resize(keys);
  }
  return filled;
}

struct Latency {
  std::vector<double> micros;
  double p50() const { return quantile(micros, 0.5); }
  double p99() const { return quantile(micros, 0.99); }
};

struct LookupTimes {
  Latency show, trace, entity, failed;
};

/// One pass of every look-up over the keys, timing each call.
void time_lookups(Store& store, const Keys& keys, LookupTimes& times) {
  auto time_each = [](Latency& latency, std::size_t n, auto&& query) {
    for (std::size_t i = 0; i < n; ++i) {
      auto start = Clock::now();
      query(i);
      latency.micros.push_back(seconds_since(start) * 1e6);
    }
  };
  const std::size_t n = keys.job_ids.size();
  time_each(times.show, n, [&](std::size_t i) {
    auto job = store.find_job(keys.job_ids[i]);
    auto events = store.events_of(keys.job_ids[i]);
    if (!job || events.empty()) fail("show found no job " + keys.job_ids[i]);
  });
  time_each(times.trace, n, [&](std::size_t i) {
    if (store.jobs_in_trace(keys.correlations[i]).empty()) fail("trace found no jobs for " + keys.correlations[i]);
  });
  time_each(times.entity, n, [&](std::size_t i) {
    JobFilter filter;
    filter.entity = keys.entities[i];
    if (store.list_jobs(filter).empty()) fail("ls --entity found no jobs for " + keys.entities[i]);
  });
  // ls --state failed: the newest 50 failed jobs (the workload's failures are all retried, so
  // none is failed now: this times the partial state index's look-up, not reading rows).
  time_each(times.failed, std::max<std::size_t>(1, n / 10), [&](std::size_t) {
    JobFilter filter;
    filter.state = State::failed;
    store.list_jobs(filter);
  });
}

// ---- The program --------------------------------------------------------------------------

std::size_t parse_count(const char* text) {
  char* end = nullptr;
  auto value = std::strtoull(text, &end, 10);
  if (!end || *end != '\0' || value == 0) fail(std::string("not a positive count: ") + text);
  return value;
}

/// Starts a throw-away cluster with tests/pg/pg_cluster.sh; stops it at exit.
class Cluster {
 public:
  explicit Cluster(std::string dir) : dir_(std::move(dir)) {
    std::string command = "bash '" + std::string(JOBTRAIL_PG_CLUSTER_SCRIPT) + "' start '" + dir_ + "'";
    FILE* out = popen(command.c_str(), "r");
    if (!out) fail("cannot run " + command);
    char line[4096];
    while (std::fgets(line, sizeof line, out)) url_ = line;
    if (pclose(out) != 0 || url_.empty()) fail("could not start a cluster in " + dir_);
    while (!url_.empty() && (url_.back() == '\n' || url_.back() == '\r')) url_.pop_back();
  }
  ~Cluster() {
    std::string command = "bash '" + std::string(JOBTRAIL_PG_CLUSTER_SCRIPT) + "' stop '" + dir_ + "'";
    if (std::system(command.c_str()) != 0) std::fprintf(stderr, "pg_bench: could not stop the cluster in %s\n", dir_.c_str());
  }
  const std::string& url() const { return url_; }

 private:
  std::string dir_, url_;
};

void usage(FILE* out) {
  std::fprintf(out,
               "usage: pg_bench (--url URL | --start-cluster DIR) [--events N] [--small N] [--large N]\n"
               "                [--runs R] [--batch N] [--fill-batch N] [--keys N] [--keep]\n"
               "  --url URL            a PostgreSQL server where pg_bench may create and drop databases\n"
               "  --start-cluster DIR  start a throw-away server in DIR (tests/pg/pg_cluster.sh) instead\n"
               "  --events N           events for the write measurements (default 200000)\n"
               "  --small N, --large N store sizes for the look-ups (default 100000 and 10000000)\n"
               "  --runs R             write runs and look-up passes, medians taken (default 3)\n"
               "  --batch N            events per append in the write measurements (default: the tracker's %zu)\n"
               "  --fill-batch N       events per append when filling the look-up stores (default 20000)\n"
               "  --keys N             random keys per look-up (default 1000)\n"
               "  --keep               keep the databases\n",
               TrackerOptions{}.max_batch);
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) fail(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--url") settings.url = value();
    else if (flag == "--start-cluster") settings.cluster_dir = value();
    else if (flag == "--events") settings.events = parse_count(value());
    else if (flag == "--small") settings.small = parse_count(value());
    else if (flag == "--large") settings.large = parse_count(value());
    else if (flag == "--runs") settings.runs = parse_count(value());
    else if (flag == "--batch") settings.batch = parse_count(value());
    else if (flag == "--fill-batch") settings.fill_batch = parse_count(value());
    else if (flag == "--keys") settings.keys = parse_count(value());
    else if (flag == "--keep") settings.keep = true;
    else {
      usage(flag == "--help" ? stdout : stderr);
      return flag == "--help" ? 0 : 2;
    }
  }
  if (settings.url.empty() == settings.cluster_dir.empty()) {
    usage(stderr);
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows up when run under nohup

  try {
    std::unique_ptr<Cluster> cluster;
    if (!settings.cluster_dir.empty()) {
      cluster = std::make_unique<Cluster>(settings.cluster_dir);
      settings.url = cluster->url();
    }
    Databases databases(settings.url, settings.keep);
    {
      pg::Connection server(settings.url);
      std::printf("jobtrail PostgreSQL benchmark: %s\nserver: %s\n", pg::redact(settings.url).c_str(),
                  server.execute("SELECT version()").string(0, 0).c_str());
      auto show = [&](const char* name) { return server.execute(std::string("SHOW ") + name).string(0, 0); };
      std::printf("server settings: shared_buffers %s, fsync %s, synchronous_commit %s\n", show("shared_buffers").c_str(),
                  show("fsync").c_str(), show("synchronous_commit").c_str());
    }

    auto workload = bench::make_workload(settings.events, t0, hour, 1);
    const auto& events = workload.events;
    const auto rows = event_rows(events);
    std::printf("workload: %zu events, %zu jobs, %zu requests; batches of %zu events; %zu runs\n\n", events.size(),
                workload.job_ids.size(), workload.correlation_ids.size(), settings.batch, settings.runs);

    // What an append writes besides the events, taken from one untimed store run.
    StoredRows stored;
    {
      auto url = fresh_store(databases, "rows");
      store_append(url, events, settings.batch, PostgresStore::EventInsert::copy);
      stored = stored_rows(url);
      databases.drop_last();
    }

    // 1 and 2: every measurement of a run in a fresh database, the order turned each run.
    std::vector<double> tracker, copy, unnest, store_copy, store_unnest, copy_all;
    std::vector<double> tracker_to_copy, copy_to_unnest, store_copy_to_unnest, tracker_to_copy_all;
    std::uint64_t dropped = 0;
    for (std::size_t run = 0; run < settings.runs; ++run) {
      double t = 0, c = 0, u = 0, sc = 0, su = 0, ca = 0;
      auto measure = [&](int which) {
        switch (which) {
          case 0: {
            auto url = fresh_store(databases, "tracker");
            std::uint64_t run_dropped = 0;
            t = run_tracker(url, events, run_dropped);
            dropped += run_dropped;
            break;
          }
          case 1: {
            auto url = fresh_store(databases, "raw_copy");
            c = raw_copy(url, rows, settings.batch);
            if (count_rows(url, "event") != static_cast<std::int64_t>(rows.size())) fail("raw COPY lost rows");
            break;
          }
          case 2: u = raw_unnest(fresh_store(databases, "raw_unnest"), rows, settings.batch); break;
          case 3: {
            auto url = fresh_store(databases, "store_copy");
            sc = store_append(url, events, settings.batch, PostgresStore::EventInsert::copy);
            if (count_rows(url, "event") != static_cast<std::int64_t>(events.size())) fail("the store lost events");
            break;
          }
          case 4: su = store_append(fresh_store(databases, "store_unnest"), events, settings.batch, PostgresStore::EventInsert::unnest); break;
          case 5: ca = raw_copy_all(fresh_store(databases, "raw_copy_all"), rows, stored, settings.batch); break;
        }
        databases.drop_last();
      };
      static constexpr int orders[2][6] = {{0, 1, 2, 3, 4, 5}, {5, 4, 3, 2, 1, 0}};
      for (int which : orders[run % 2]) measure(which);
      std::printf("run %zu: tracker %.0f, raw COPY %.0f, raw unnest %.0f, store copy %.0f, store unnest %.0f, "
                  "raw COPY of all rows %.0f events/s\n",
                  run + 1, t, c, u, sc, su, ca);
      copy_all.push_back(ca);
      tracker_to_copy_all.push_back(t / ca);
      tracker.push_back(t);
      copy.push_back(c);
      unnest.push_back(u);
      store_copy.push_back(sc);
      store_unnest.push_back(su);
      tracker_to_copy.push_back(t / c);
      copy_to_unnest.push_back(c / u);
      store_copy_to_unnest.push_back(sc / su);
    }
    std::printf("\nwrites, median of %zu runs (events/s):\n", settings.runs);
    std::printf("  %-62s %10.0f\n", "tracker -> PostgreSQL store (default options, until flushed)", median(tracker));
    std::printf("  %-62s %10.0f\n", "raw COPY of the same event rows into jobtrail.event", median(copy));
    std::printf("  %-62s %10.0f\n", "raw INSERT ... SELECT FROM unnest() of the same rows", median(unnest));
    std::printf("  %-62s %10.0f\n", "PostgresStore::append, EventInsert::copy", median(store_copy));
    std::printf("  %-62s %10.0f\n", "PostgresStore::append, EventInsert::unnest", median(store_unnest));
    std::printf("  %-62s %10.0f\n", "raw COPY of every row an append writes (events, jobs, tags)", median(copy_all));
    std::printf("  ratio tracker / raw COPY (aim >= 0.5):          %6.2f  (runs: %s)\n", median(tracker_to_copy),
                listed(tracker_to_copy).c_str());
    std::printf("  ratio tracker / raw COPY of all its rows:        %6.2f  (runs: %s)\n", median(tracker_to_copy_all),
                listed(tracker_to_copy_all).c_str());
    std::printf("  ratio raw COPY / raw unnest:                    %6.2f  (runs: %s)\n", median(copy_to_unnest),
                listed(copy_to_unnest).c_str());
    std::printf("  ratio store copy / store unnest:                %6.2f  (runs: %s) -> %s is faster\n",
                median(store_copy_to_unnest), listed(store_copy_to_unnest).c_str(),
                median(store_copy_to_unnest) >= 1 ? "COPY" : "unnest");
    std::printf("  events dropped by the tracker: %llu\n\n", static_cast<unsigned long long>(dropped));

    // 3: look-ups.
    auto small = fill(databases, "small", settings.small, settings.fill_batch, settings.keys, 2);
    std::printf("filled the small store: %zu events in %.1f s (%.0f events/s, 2 writers)\n", small.events, small.seconds,
                static_cast<double>(small.events) / small.seconds);
    auto large = fill(databases, "large", settings.large, settings.fill_batch, settings.keys, 2);
    std::printf("filled the large store: %zu events in %.1f s (%.0f events/s, 2 writers)\n", large.events, large.seconds,
                static_cast<double>(large.events) / large.seconds);
    OpenOptions read_only;
    read_only.read_only = true;
    PostgresStore small_store(small.url, read_only), large_store(large.url, read_only);
    LookupTimes small_times, large_times;
    {
      // Warm up the connections and the plan cache, not the data: a few keys only.
      LookupTimes ignored;
      Keys few{{small.keys.job_ids[0]}, {small.keys.correlations[0]}, {small.keys.entities[0]}};
      time_lookups(small_store, few, ignored);
      few = Keys{{large.keys.job_ids[0]}, {large.keys.correlations[0]}, {large.keys.entities[0]}};
      time_lookups(large_store, few, ignored);
    }
    std::vector<double> show_first, trace_first, entity_first;  // the first pass: keys not read before
    for (std::size_t run = 0; run < settings.runs; ++run) {
      if (run % 2 == 0) {
        time_lookups(small_store, small.keys, small_times);
        time_lookups(large_store, large.keys, large_times);
      } else {
        time_lookups(large_store, large.keys, large_times);
        time_lookups(small_store, small.keys, small_times);
      }
    }
    auto first = [&](const Latency& latency) {
      Latency part;
      part.micros.assign(latency.micros.begin(), latency.micros.begin() + static_cast<std::ptrdiff_t>(settings.keys));
      return part.p50();
    };
    std::printf("\nlook-ups, %zu random keys x %zu passes (us)  %9zu events    %9zu events     ratio   first pass\n",
                settings.keys, settings.runs, small.events, large.events);
    auto line = [&](const char* name, const Latency& s, const Latency& l, bool with_first) {
      std::printf("  %-28s p50 %9.1f %19.1f %13.2fx", name, s.p50(), l.p50(), l.p50() / s.p50());
      if (with_first) std::printf("   %6.2fx", first(l) / first(s));
      std::printf("\n  %-28s p99 %9.1f %19.1f %13.2fx\n", "", s.p99(), l.p99(), l.p99() / s.p99());
    };
    line("show (find_job + events_of)", small_times.show, large_times.show, true);
    line("trace (jobs_in_trace)", small_times.trace, large_times.trace, true);
    line("ls --entity (list_jobs)", small_times.entity, large_times.entity, true);
    line("ls --state failed", small_times.failed, large_times.failed, false);
    std::printf("aim: trace and entity at the large size within 1.5x of the small (p50)\n");
  } catch (const std::exception& error) {
    fail(error.what());
  }
  return 0;
}
