// Events through `jobtrail serve` over loopback beside the in-process tracker, in the same run:
//   1. in-process: Tracker::record for every event, then flush (committed), into SQLite;
//   2. through serve: the same events as NDJSON batches of --batch events, posted by --clients
//      keep-alive connections to a real server on 127.0.0.1, the last batch of each client with
//      ?wait=commit, so both figures count until everything is committed;
//   3. single-event POST latency, p50/p99, without and with ?wait=commit.
// Usage: serve_bench [--events N] [--batch N] [--clients N] [--singles N] [--dir DIR]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "jobtrail/ingest.h"
#include "jobtrail/server.h"
#include "jobtrail/store.h"
#include "jobtrail/tracker.h"
#include "workload.h"

using namespace jobtrail;
using Clock = std::chrono::steady_clock;

namespace {

struct Settings {
  std::size_t events = 300'000;
  std::size_t batch = 1'000;
  std::size_t clients = 2;
  std::size_t singles = 2'000;
  std::filesystem::path dir = std::filesystem::temp_directory_path() / "jobtrail-serve-bench";
};

constexpr Micros t0 = 1'790'000'000'000'000;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

double quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  const auto index = static_cast<std::size_t>(q * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index), values.end());
  return values[index];
}

void fresh(const std::filesystem::path& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
}

std::size_t parse_count(const char* text) { return static_cast<std::size_t>(std::strtoull(text, nullptr, 10)); }

double in_process_rate(const std::vector<Event>& events, const std::filesystem::path& path) {
  fresh(path);
  TrackerOptions options;
  options.queue_capacity = events.size() + 1;
  Tracker tracker(path.string(), options);
  const auto start = Clock::now();
  for (const Event& event : events) tracker.record(event);
  if (!tracker.flush(std::chrono::minutes(5))) {
    std::fprintf(stderr, "serve_bench: in-process flush timed out\n");
    std::exit(1);
  }
  return static_cast<double>(events.size()) / seconds_since(start);
}

/// A server on a free loopback port, on its own thread, for one measurement.
struct Serving {
  std::unique_ptr<Server> server;
  std::thread thread;
  int port = 0;
  explicit Serving(const std::filesystem::path& path, std::size_t queue_capacity) {
    fresh(path);
    ServerOptions options;
    options.store_url = path.string();
    options.port = 0;
    options.queue_capacity = queue_capacity;
    options.commit_timeout = std::chrono::minutes(5);
    server = std::make_unique<Server>(options);
    port = server->bind();
    thread = std::thread([this] { server->run(); });
    server->wait_until_ready(std::chrono::seconds(10));
  }
  ~Serving() {
    server->stop();
    thread.join();
  }
};

double served_rate(const std::vector<Event>& events, const Settings& settings, const std::filesystem::path& path) {
  // Bodies are made before the clock starts: the figure is the server's, not the client's JSON.
  std::vector<std::string> bodies;
  for (std::size_t first = 0; first < events.size(); first += settings.batch) {
    std::string body;
    for (std::size_t i = first; i < std::min(events.size(), first + settings.batch); ++i) {
      body += event_to_json(events[i]);
      body += '\n';
    }
    bodies.push_back(std::move(body));
  }
  Serving serving(path, events.size() + 1);
  std::atomic<bool> failed{false};
  const auto start = Clock::now();
  std::vector<std::thread> clients;
  for (std::size_t c = 0; c < settings.clients; ++c) {
    clients.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", serving.port);
      client.set_read_timeout(300, 0);
      std::vector<std::size_t> mine;
      for (std::size_t b = c; b < bodies.size(); b += settings.clients) mine.push_back(b);
      for (std::size_t k = 0; k < mine.size(); ++k) {
        const bool last = k + 1 == mine.size();
        const auto result = client.Post(last ? "/v1/events?wait=commit" : "/v1/events", bodies[mine[k]],
                                         "application/x-ndjson");
        if (!result || result->status >= 300) failed = true;
      }
    });
  }
  for (auto& client : clients) client.join();
  const double rate = static_cast<double>(events.size()) / seconds_since(start);
  if (failed) {
    std::fprintf(stderr, "serve_bench: some batches were refused\n");
    std::exit(1);
  }
  return rate;
}

void single_latency(const std::vector<Event>& events, const Settings& settings, const std::filesystem::path& path,
                    bool wait_commit) {
  Serving serving(path, settings.singles + 1);
  httplib::Client client("127.0.0.1", serving.port);
  std::vector<double> micros;
  for (std::size_t i = 0; i < settings.singles && i < events.size(); ++i) {
    const std::string body = event_to_json(events[i]);
    const auto start = Clock::now();
    const auto result = client.Post(wait_commit ? "/v1/events?wait=commit" : "/v1/events", body, "application/json");
    micros.push_back(seconds_since(start) * 1e6);
    if (!result || result->status >= 300) {
      std::fprintf(stderr, "serve_bench: a single POST failed\n");
      std::exit(1);
    }
  }
  std::printf("  single-event POST%-15s p50 %7.0f µs   p99 %7.0f µs   (%zu requests, keep-alive)\n",
              wait_commit ? " ?wait=commit" : "", quantile(micros, 0.5), quantile(micros, 0.99), micros.size());
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "usage: serve_bench [--events N] [--batch N] [--clients N] [--singles N] [--dir DIR]\n");
      return flag == "--help" ? 0 : 2;
    }
    if (flag == "--events") settings.events = parse_count(argv[i + 1]);
    else if (flag == "--batch") settings.batch = std::max<std::size_t>(1, parse_count(argv[i + 1]));
    else if (flag == "--clients") settings.clients = std::max<std::size_t>(1, parse_count(argv[i + 1]));
    else if (flag == "--singles") settings.singles = parse_count(argv[i + 1]);
    else if (flag == "--dir") settings.dir = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: serve_bench [--events N] [--batch N] [--clients N] [--singles N] [--dir DIR]\n");
      return 2;
    }
  }
  std::filesystem::create_directories(settings.dir);
  const bench::Workload workload = bench::make_workload(settings.events, t0, 3600LL * 1'000'000, 42);
  const std::vector<Event>& events = workload.events;
  std::printf("serve_bench: %zu events, NDJSON batches of %zu, %zu client connection(s), SQLite in %s\n",
              events.size(), settings.batch, settings.clients, settings.dir.c_str());

  const double in_process = in_process_rate(events, settings.dir / "in-process.db");
  const double served = served_rate(events, settings, settings.dir / "served.db");
  std::printf("  in-process tracker   %10.0f events/s (record + flush, committed)\n", in_process);
  std::printf("  through serve        %10.0f events/s (loopback HTTP, committed)\n", served);
  std::printf("  ratio serve / in-process: %.2f\n", served / in_process);
  single_latency(events, settings, settings.dir / "single.db", false);
  single_latency(events, settings, settings.dir / "single-durable.db", true);
  std::filesystem::remove_all(settings.dir);
  return 0;
}
