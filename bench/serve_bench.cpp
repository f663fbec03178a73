// Events through `jobtrail serve` over loopback beside the in-process tracker, in the same run:
//   1. in-process: Tracker::record for every event, then flush (committed), into SQLite;
//   2. through serve: the same events as NDJSON batches of --batch events, posted by --clients
//      keep-alive connections to a real server on 127.0.0.1, the last batch of each client with
//      ?wait=commit, so both figures count until everything is committed;
//   3. single-event POST latency, p50/p99, without and with ?wait=commit;
//   4. GET /healthz latency, p50/p99, from one keep-alive client while --idle other connections
//      are open and idle, each after one request of its own (a fleet's keep-alive connections).
// 1 and 2 alternate --rounds times (3) and the medians are compared: the machine is shared.
// Usage: serve_bench [--events N] [--batch N] [--clients N] [--singles N] [--idle N]
//                    [--healthz N] [--rounds N] [--dir DIR]

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
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
  std::size_t batch = 100;
  std::size_t clients = 200;
  std::size_t singles = 2'000;
  std::size_t idle = 1'000;
  std::size_t healthz = 1'000;
  std::size_t rounds = 3;
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

struct ServedRate {
  double events_per_second = 0;
  std::size_t failed_batches = 0;
  std::string first_failure;
};

ServedRate served_rate(const std::vector<Event>& events, const Settings& settings, const std::filesystem::path& path) {
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
  std::atomic<std::size_t> failed{0};
  std::mutex failure_mutex;
  std::string first_failure;
  const auto start = Clock::now();
  std::vector<std::thread> clients;
  for (std::size_t c = 0; c < settings.clients; ++c) {
    clients.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", serving.port);
      client.set_keep_alive(true);
      client.set_read_timeout(300, 0);
      std::vector<std::size_t> mine;
      for (std::size_t b = c; b < bodies.size(); b += settings.clients) mine.push_back(b);
      for (std::size_t k = 0; k < mine.size(); ++k) {
        const bool last = k + 1 == mine.size();
        const auto result = client.Post(last ? "/v1/events?wait=commit" : "/v1/events", bodies[mine[k]],
                                         "application/x-ndjson");
        if (!result || result->status >= 300) {
          ++failed;
          std::lock_guard lock(failure_mutex);
          if (first_failure.empty()) {
            first_failure = result ? "HTTP " + std::to_string(result->status) : httplib::to_string(result.error());
          }
        }
      }
    });
  }
  for (auto& client : clients) client.join();
  return {static_cast<double>(events.size()) / seconds_since(start), failed, first_failure};
}

void single_latency(const std::vector<Event>& events, const Settings& settings, const std::filesystem::path& path,
                    bool wait_commit) {
  Serving serving(path, settings.singles + 1);
  httplib::Client client("127.0.0.1", serving.port);
  client.set_keep_alive(true);
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

/// A loopback TCP connection to `port`, or -1.
int connect_loopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/// Opens `count` connections that each send one GET /healthz (keep-alive) and then stay idle;
/// waits up to `patience` for their answers. Returns the sockets and how many were answered.
std::pair<std::vector<int>, std::size_t> open_idle(int port, std::size_t count, std::chrono::seconds patience) {
  static const std::string request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  std::vector<int> sockets;
  for (std::size_t i = 0; i < count; ++i) {
    const int fd = connect_loopback(port);
    if (fd < 0) break;
    sockets.push_back(fd);
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) break;
  }
  // The answer's end is seen as "}\n" after the headers: /healthz answers one JSON line.
  std::vector<std::string> answers(sockets.size());
  std::vector<bool> done(sockets.size(), false);
  std::size_t answered = 0;
  const auto deadline = Clock::now() + patience;
  while (answered < sockets.size() && Clock::now() < deadline) {
    std::vector<pollfd> waiting;
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < sockets.size(); ++i) {
      if (!done[i]) {
        waiting.push_back({sockets[i], POLLIN, 0});
        which.push_back(i);
      }
    }
    if (poll(waiting.data(), waiting.size(), 100) <= 0) continue;
    for (std::size_t k = 0; k < waiting.size(); ++k) {
      if (!(waiting[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const std::size_t i = which[k];
      char buffer[4096];
      const ssize_t got = recv(sockets[i], buffer, sizeof buffer, 0);
      if (got <= 0) {
        done[i] = true;  // closed by the server: no longer idle, and not answered
        continue;
      }
      answers[i].append(buffer, static_cast<std::size_t>(got));
      if (answers[i].find("\r\n\r\n") != std::string::npos && answers[i].ends_with("}\n")) {
        done[i] = true;
        ++answered;
      }
    }
  }
  return {std::move(sockets), answered};
}

void healthz_with_idle(const Settings& settings, const std::filesystem::path& path) {
  Serving serving(path, 1000);
  const auto opened = Clock::now();
  auto [idle, answered] = open_idle(serving.port, settings.idle, std::chrono::seconds(30));
  std::printf("  %zu idle keep-alive connections open (%zu answered their first request, %.1f s)\n", idle.size(),
              answered, seconds_since(opened));
  httplib::Client client("127.0.0.1", serving.port);
  client.set_keep_alive(true);
  client.set_connection_timeout(60, 0);
  client.set_read_timeout(60, 0);
  std::vector<double> micros;
  std::size_t failed = 0;
  for (std::size_t i = 0; i < settings.healthz; ++i) {
    const auto start = Clock::now();
    const auto result = client.Get("/healthz");
    micros.push_back(seconds_since(start) * 1e6);
    if (!result || result->status != 200) ++failed;
  }
  std::printf("  GET /healthz beside them  p50 %7.0f µs   p99 %7.0f µs   (%zu requests, %zu failed; aim: p99 under 50 ms)\n",
              quantile(micros, 0.5), quantile(micros, 0.99), micros.size(), failed);
  for (const int fd : idle) close(fd);
}

/// The idle connections and the server share this process: two descriptors per connection.
void raise_open_files_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "usage: serve_bench [--events N] [--batch N] [--clients N] [--singles N] [--idle N] [--healthz N] [--rounds N] [--dir DIR]\n");
      return flag == "--help" ? 0 : 2;
    }
    if (flag == "--events") settings.events = parse_count(argv[i + 1]);
    else if (flag == "--batch") settings.batch = std::max<std::size_t>(1, parse_count(argv[i + 1]));
    else if (flag == "--clients") settings.clients = std::max<std::size_t>(1, parse_count(argv[i + 1]));
    else if (flag == "--singles") settings.singles = parse_count(argv[i + 1]);
    else if (flag == "--idle") settings.idle = parse_count(argv[i + 1]);
    else if (flag == "--healthz") settings.healthz = parse_count(argv[i + 1]);
    else if (flag == "--rounds") settings.rounds = std::max<std::size_t>(1, parse_count(argv[i + 1]));
    else if (flag == "--dir") settings.dir = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: serve_bench [--events N] [--batch N] [--clients N] [--singles N] [--idle N] [--healthz N] [--rounds N] [--dir DIR]\n");
      return 2;
    }
  }
  raise_open_files_limit();
  std::filesystem::create_directories(settings.dir);
  const bench::Workload workload = bench::make_workload(settings.events, t0, 3600LL * 1'000'000, 42);
  const std::vector<Event>& events = workload.events;
  std::printf("serve_bench: %zu events, NDJSON batches of %zu, %zu client connection(s), SQLite in %s\n",
              events.size(), settings.batch, settings.clients, settings.dir.c_str());

  // The machine is shared: measure both ways in turn, --rounds times, and compare medians, so
  // a burst of load elsewhere does not land on one side only.
  std::vector<double> in_process_rates;
  std::vector<double> served_rates;
  for (std::size_t round = 1; round <= settings.rounds; ++round) {
    const double in_process = in_process_rate(events, settings.dir / "in-process.db");
    const ServedRate served = served_rate(events, settings, settings.dir / "served.db");
    std::printf("  round %zu: in-process %8.0f events/s, through serve %8.0f events/s, ratio %.2f\n", round,
                in_process, served.events_per_second, served.events_per_second / in_process);
    if (served.failed_batches > 0) {
      std::printf("  FAILED: %zu batches were not accepted (first: %s); the rate counts them as sent\n",
                  served.failed_batches, served.first_failure.c_str());
    }
    in_process_rates.push_back(in_process);
    served_rates.push_back(served.events_per_second);
  }
  const double in_process = quantile(in_process_rates, 0.5);
  const double served = quantile(served_rates, 0.5);
  std::printf("  in-process tracker   %10.0f events/s (record + flush, committed; median)\n", in_process);
  std::printf("  through serve        %10.0f events/s (loopback HTTP, %zu keep-alive clients, committed; median)\n",
              served, settings.clients);
  std::printf("  ratio serve / in-process: %.2f (aim: at least 0.5)\n", served / in_process);
  single_latency(events, settings, settings.dir / "single.db", false);
  single_latency(events, settings, settings.dir / "single-durable.db", true);
  if (settings.healthz > 0) healthz_with_idle(settings, settings.dir / "healthz.db");
  std::filesystem::remove_all(settings.dir);
  return 0;
}
