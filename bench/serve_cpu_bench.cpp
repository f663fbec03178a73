// The CPU time `jobtrail serve` spends per ingested event: what it takes from the cores it
// shares with the workers (BENCHMARKS.md, "Real workers, plain and tracked"). Wall time on a
// shared machine says more about the neighbours than about serve; its CPU time much less so.
//   1. start `jobtrail serve` (a real process) on a fresh SQLite store, 127.0.0.1, a free port;
//   2. post one warm-up batch, then read serve's user + system time from /proc/PID/stat;
//   3. post --batches NDJSON batches of --batch events from one keep-alive client, the last with
//      ?wait=commit, so the figure counts until everything is committed;
//   4. read its CPU time again, divide by the events, stop it (SIGTERM).
// The events are what the Sidekiq, RQ and Celery clients send: a started and a succeeded event
// per job, with job_id, job, queue, correlation_id, worker, attempt and integer-microsecond at.
// With --baseline OTHER_JOBTRAIL, rounds alternate the two binaries and both medians print, so
// a change is measured against the old binary in the same minutes.
// Usage: serve_cpu_bench [--jobtrail PATH] [--baseline PATH] [--batch N] [--batches N]
//                        [--rounds N] [--dir DIR]

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <httplib.h>

namespace {

struct Settings {
  std::string jobtrail = "build/cli/jobtrail";
  std::string baseline;
  std::size_t batch = 100;
  std::size_t batches = 500;
  std::size_t rounds = 5;
  std::filesystem::path dir = std::filesystem::temp_directory_path() / "jobtrail-serve-cpu-bench";
};

/// serve's user + system time so far, all its threads, in seconds.
double cpu_seconds(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  // The command name (field 2) is in parentheses and may hold spaces: count from after it.
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  for (int index = 3; index <= 15 && rest >> field; ++index) {
    if (index == 14) utime = std::stoull(field);
    if (index == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// A running `jobtrail serve`, its pid and the port it printed.
struct Serve {
  pid_t pid = -1;
  int port = 0;

  Serve(const std::string& jobtrail, const std::filesystem::path& store) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(store.string() + suffix);
    int out[2];
    if (pipe(out) != 0) fail("pipe");
    pid = fork();
    if (pid == 0) {
      dup2(out[1], STDOUT_FILENO);
      if (const int null = open("/dev/null", O_WRONLY); null >= 0) dup2(null, STDERR_FILENO);  // "created a store"
      close(out[0]);
      close(out[1]);
      const std::string db = "sqlite:" + store.string();
      execl(jobtrail.c_str(), jobtrail.c_str(), "--db", db.c_str(), "serve", "--listen", "127.0.0.1:0",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    // "jobtrail serve: listening on http://127.0.0.1:PORT"
    std::string line;
    char c = 0;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    output_ = out[0];  // kept open: a closed pipe would kill serve (SIGPIPE) at its next line
    const auto colon = line.rfind(':');
    if (line.find("listening") == std::string::npos || colon == std::string::npos) fail("serve did not start: " + line);
    port = std::atoi(line.c_str() + colon + 1);
  }
  ~Serve() {
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    close(output_);
  }

  [[noreturn]] static void fail(const std::string& why) {
    std::fprintf(stderr, "serve_cpu_bench: %s\n", why.c_str());
    std::exit(1);
  }

 private:
  int output_ = -1;
};

/// NDJSON bodies of `batch` events each, a started and a succeeded event per job, as the
/// contrib clients write them; times near now so every one is plausible.
std::vector<std::string> make_bodies(const Settings& settings) {
  const long long now = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  const char* classes[] = {"HardJob", "MailerJob", "ReportJob", "Billing::ChargeJob"};
  const char* queues[] = {"default", "mailers", "critical"};
  std::vector<std::string> bodies;
  std::size_t job = 0;
  for (std::size_t b = 0; b < settings.batches + 1; ++b) {  // + 1: the warm-up
    std::string body;
    for (std::size_t i = 0; i < settings.batch; i += 2, ++job) {
      char id[32];
      std::snprintf(id, sizeof id, "%024zx", job * 2654435761u);
      const long long started = now - 600'000'000 + static_cast<long long>(job) * 50;
      for (int succeeded = 0; succeeded < 2 && i + static_cast<std::size_t>(succeeded) < settings.batch; ++succeeded) {
        body += R"({"job_id":")" + std::string(id) + R"(","state":")" + (succeeded ? "succeeded" : "started") +
                R"(","at":)" + std::to_string(started + succeeded * 1234) + R"(,"worker":"worker-host-3:41872")" +
                R"(,"attempt":1,"job":")" + classes[job % 4] + R"(","queue":")" + queues[job % 3] +
                R"(","correlation_id":"req-)" + std::to_string(job / 3) + "\"}\n";
      }
    }
    bodies.push_back(std::move(body));
  }
  return bodies;
}

/// One measurement: µs of serve's CPU per event.
double cpu_per_event(const std::string& jobtrail, const std::vector<std::string>& bodies, const Settings& settings) {
  Serve serve(jobtrail, settings.dir / "serve.db");
  httplib::Client client("127.0.0.1", serve.port);
  client.set_keep_alive(true);
  client.set_read_timeout(300, 0);
  const auto post = [&](const std::string& body, bool commit) {
    const auto result = client.Post(commit ? "/v1/events?wait=commit" : "/v1/events", body, "application/x-ndjson");
    if (!result || result->status >= 300) {
      Serve::fail(result ? "HTTP " + std::to_string(result->status) + ": " + result->body
                         : httplib::to_string(result.error()));
    }
  };
  post(bodies[0], true);  // the store's schema, the first statements, the connection: not per event
  const double before = cpu_seconds(serve.pid);
  for (std::size_t b = 1; b < bodies.size(); ++b) post(bodies[b], b + 1 == bodies.size());
  const double after = cpu_seconds(serve.pid);
  return (after - before) * 1e6 / static_cast<double>(settings.batch * settings.batches);
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

void usage() {
  std::fprintf(stderr,
               "usage: serve_cpu_bench [--jobtrail PATH] [--baseline PATH] [--batch N] [--batches N] [--rounds N] "
               "[--dir DIR]\n");
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) {
      usage();
      return flag == "--help" ? 0 : 2;
    }
    const char* value = argv[i + 1];
    if (flag == "--jobtrail") settings.jobtrail = value;
    else if (flag == "--baseline") settings.baseline = value;
    else if (flag == "--batch") settings.batch = std::max<std::size_t>(1, std::strtoull(value, nullptr, 10));
    else if (flag == "--batches") settings.batches = std::max<std::size_t>(1, std::strtoull(value, nullptr, 10));
    else if (flag == "--rounds") settings.rounds = std::max<std::size_t>(1, std::strtoull(value, nullptr, 10));
    else if (flag == "--dir") settings.dir = value;
    else {
      usage();
      return 2;
    }
  }
  std::filesystem::create_directories(settings.dir);
  const std::vector<std::string> bodies = make_bodies(settings);
  std::printf("serve_cpu_bench: %zu NDJSON batches of %zu events (+1 warm-up), one keep-alive client, %zu rounds\n",
              settings.batches, settings.batch, settings.rounds);
  std::vector<double> current;
  std::vector<double> baseline;
  for (std::size_t round = 1; round <= settings.rounds; ++round) {
    // Alternate which goes first, so neither always meets the machine as the other left it.
    const bool baseline_first = !settings.baseline.empty() && round % 2 == 0;
    if (baseline_first) baseline.push_back(cpu_per_event(settings.baseline, bodies, settings));
    current.push_back(cpu_per_event(settings.jobtrail, bodies, settings));
    if (!settings.baseline.empty() && !baseline_first) baseline.push_back(cpu_per_event(settings.baseline, bodies, settings));
    std::printf("  round %zu: %6.2f µs an event", round, current.back());
    if (!settings.baseline.empty()) std::printf(" (baseline %6.2f)", baseline.back());
    std::printf("\n");
  }
  std::printf("  serve's CPU (user + system) per event, median: %.2f µs  (%s)\n", median(current),
              settings.jobtrail.c_str());
  if (!settings.baseline.empty()) {
    std::printf("  baseline, median:                              %.2f µs  (%s)\n", median(baseline),
                settings.baseline.c_str());
    // Each round's two runs met the same minutes of the machine: their ratio is steadier than
    // the ratio of the medians when the load moves.
    std::vector<double> ratios;
    for (std::size_t i = 0; i < current.size(); ++i) ratios.push_back(current[i] / baseline[i]);
    std::printf("  ratio of the medians: %.2f; median of the rounds' ratios: %.2f\n", median(current) / median(baseline),
                median(ratios));
  }
  std::filesystem::remove_all(settings.dir);
  return 0;
}
