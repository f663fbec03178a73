// The real `jobtrail` binary: serve stopped by SIGTERM under load, exec's exit codes and signals.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <catch2/catch.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "jobtrail/store.h"
#include "spawned_process.h"
#include "temp_dir.h"

using namespace jobtrail;
using nlohmann::json;

namespace {

using jobtrail::testing::SpawnedProcess;
using jobtrail::testing::TempDir;

/// `jobtrail args...` as a child process with stdout and stderr in files of `dir`. Not thread-safe.
class Process : public SpawnedProcess {
 public:
  Process(const std::vector<std::string>& args, const TempDir& dir, Stderr stderr_to = Stderr::file)
      : SpawnedProcess(with_program(args), dir.file("out"), dir.file("err"), stderr_to) {}

 private:
  static std::vector<std::string> with_program(const std::vector<std::string>& args) {
    std::vector<std::string> argv{JOBTRAIL_CLI_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
};

/// The port `jobtrail serve --listen 127.0.0.1:0` announced on its first line of stdout.
int announced_port(const Process& serve) {
  for (int i = 0; i < 1000; ++i) {
    const std::string out = serve.out();
    if (const auto at = out.find("127.0.0.1:"); at != std::string::npos && out.find('\n', at) != std::string::npos) {
      return std::stoi(out.substr(at + 10));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL("serve did not announce its port; stderr: " << serve.err());
  return 0;
}

std::unique_ptr<Store> read_store(const std::string& path) {
  OpenOptions read_only;
  read_only.read_only = true;
  return open_store(path, read_only);
}

}  // namespace

TEST_CASE("serve: SIGTERM under load commits every accepted event and exits 0", "[server]") {
  TempDir dir;
  const std::string db = dir.file("jobs.db");
  Process serve({"serve", "--db", db, "--listen", "127.0.0.1:0"}, dir);
  const int port = announced_port(serve);

  std::atomic<std::size_t> accepted{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 3; ++c) {
    clients.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", port);
      for (int batch = 0; batch < 100000; ++batch) {
        std::string body;
        for (int i = 0; i < 200; ++i) {
          body += R"({"job_id":"p)" + std::to_string(c) + "-" + std::to_string(batch) + "-" + std::to_string(i) +
                  R"(","state":"enqueued","job":"Load"})" "\n";
        }
        const auto result = client.Post("/v1/events", body, "application/x-ndjson");
        if (!result) return;  // stopped: no answer, no promise
        if (result->status == 202) accepted += json::parse(result->body)["accepted"].get<std::size_t>();
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  serve.signal(SIGTERM);
  const int exit_code = serve.wait();
  for (auto& client : clients) client.join();
  INFO(serve.err());
  CHECK(exit_code == 0);
  REQUIRE(accepted > 0);
  JobFilter all;
  all.limit = 100'000'000;
  CHECK(read_store(db)->list_jobs(all).size() == accepted);
}

TEST_CASE("serve: a port in use is one clear line and exit code 4", "[server]") {
  TempDir dir;
  Process first({"serve", "--db", dir.file("jobs.db"), "--listen", "127.0.0.1:0"}, dir);
  const int port = announced_port(first);
  TempDir other;
  Process second({"serve", "--db", other.file("jobs.db"), "--listen", "127.0.0.1:" + std::to_string(port)}, other);
  CHECK(second.wait() == 4);
  CHECK(second.err().find("already in use") != std::string::npos);
  first.signal(SIGTERM);
  CHECK(first.wait() == 0);
}

TEST_CASE("exec: exit codes pass through and outcomes are recorded", "[server]") {
  TempDir dir;
  const std::string db = dir.file("jobs.db");
  const auto exec = [&](const std::string& id, const std::vector<std::string>& command) {
    std::vector<std::string> args = {"exec", "--db", db, "--job", "cron", "--job-id", id, "--"};
    args.insert(args.end(), command.begin(), command.end());
    Process process(args, dir);
    return process.wait();
  };
  CHECK(exec("ok", {"true"}) == 0);
  {
    // stderr still reaches the terminal (here: a file), besides becoming the error message.
    Process three({"exec", "--db", db, "--job", "cron", "--job-id", "three", "--", "sh", "-c",
                   "echo first >&2; echo 'disk full' >&2; exit 3"},
                  dir);
    CHECK(three.wait() == 3);
    CHECK(three.err() == "first\ndisk full\n");
  }
  CHECK(exec("missing", {"/no/such/command"}) == 127);
  CHECK(exec("killed", {"sh", "-c", "kill -KILL $$"}) == 128 + SIGKILL);

  auto store = read_store(db);
  CHECK(store->find_job("ok")->state == State::succeeded);
  const JobRecord three = *store->find_job("three");
  CHECK(three.state == State::dead);
  CHECK(three.last_error.error_class == "exit status 3");
  CHECK(three.last_error.message == "first\ndisk full");
  CHECK(three.started_at);
  CHECK(three.finished_at);
  CHECK(store->find_job("missing")->state == State::dead);
  CHECK(store->find_job("killed")->last_error.error_class == "killed by SIGKILL");
}

TEST_CASE("exec: SIGTERM is passed to the command, which is recorded as cancelled", "[server]") {
  TempDir dir;
  const std::string db = dir.file("jobs.db");
  const std::string marker = dir.file("got-term");
  Process process({"exec", "--db", db, "--job", "cron", "--job-id", "t", "--", "sh", "-c",
                   "trap 'echo term > " + marker + "; exit 42' TERM; sleep 30 & wait"},
                  dir);
  // Wait until the job is recorded as started, so the command and its trap are in place.
  for (int i = 0; i < 500 && !std::filesystem::exists(db); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  process.signal(SIGTERM);
  CHECK(process.wait(std::chrono::seconds(10)) == 42);
  CHECK(std::filesystem::exists(marker));
  CHECK(read_store(db)->find_job("t")->state == State::cancelled);
}

TEST_CASE("exec: an unreachable store or server costs one warning, not the command", "[server]") {
  TempDir dir;
  Process no_store({"exec", "--db", "/proc/no/such/dir/jobs.db", "--job", "cron", "--", "sh", "-c", "exit 5"}, dir);
  CHECK(no_store.wait() == 5);
  CHECK(no_store.err().find("warning: not tracking this run") != std::string::npos);

  TempDir other;
  Process no_server({"exec", "--server", "http://127.0.0.1:1", "--job", "cron", "--", "true"}, other);
  CHECK(no_server.wait() == 0);
  const std::string err = no_server.err();
  CHECK(err.find("cannot reach the server") != std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
}

TEST_CASE("exec --server --every posts to serve and registers the schedule", "[server]") {
  TempDir dir;
  const std::string db = dir.file("jobs.db");
  {
    std::ofstream(dir.file("token")) << "tok\n";
  }
  Process serve({"serve", "--db", db, "--listen", "127.0.0.1:0", "--token-file", dir.file("token")}, dir);
  const int port = announced_port(serve);
  TempDir other;
  Process exec({"exec", "--server", "http://127.0.0.1:" + std::to_string(port), "--token-file", dir.file("token"),
                "--job", "backup", "--job-id", "b1", "--every", "24h", "--grace", "1h", "--", "sh", "-c", "exit 0"},
               other);
  CHECK(exec.wait() == 0);
  CHECK(exec.err().empty());
  serve.signal(SIGTERM);
  CHECK(serve.wait() == 0);
  auto store = read_store(db);
  CHECK(store->find_job("b1")->state == State::succeeded);
  const std::vector<Schedule> schedules = store->schedules();
  REQUIRE(schedules.size() == 1);
  CHECK(schedules[0].job == "backup");
  CHECK(schedules[0].grace == 3600LL * 1000000);
}

TEST_CASE("exec: a long run records heartbeats, so it never looks stuck", "[server]") {
  TempDir dir;
  const std::string db = dir.file("jobs.db");
  Process process({"exec", "--db", db, "--job", "cron", "--job-id", "long", "--heartbeat", "100ms", "--", "sleep", "0.5"},
                  dir);
  CHECK(process.wait() == 0);
  const JobRecord job = *read_store(db)->find_job("long");
  CHECK(job.state == State::succeeded);
  REQUIRE(job.heartbeat_at);
  CHECK(*job.heartbeat_at > *job.started_at);
  CHECK(read_store(db)->events_of("long").size() >= 4);  // started, >= 2 heartbeats, succeeded
}

TEST_CASE("exec: a closed stderr (2>&1 | true) does not kill exec with SIGPIPE", "[server]") {
  TempDir dir;
  const std::string db = dir.file("jobs.db");
  Process process({"exec", "--db", db, "--job", "cron", "--job-id", "piped", "--", "sh", "-c",
                   "echo one >&2; sleep 0.2; echo two >&2; exit 0"},
                  dir, Process::Stderr::closed_pipe);
  CHECK(process.wait(std::chrono::seconds(10)) == 0);
  const JobRecord job = *read_store(db)->find_job("piped");
  CHECK(job.state == State::succeeded);
}

TEST_CASE("exec: a command that keeps writing to stderr still gets its heartbeats", "[server]") {
  TempDir dir;
  const std::string db = dir.file("jobs.db");
  // A line every 100 ms for about 3 s: stderr is never quiet for a whole poll.
  Process process({"exec", "--db", db, "--job", "cron", "--job-id", "chatty", "--heartbeat", "1s", "--", "sh", "-c",
                   "i=0; while [ $i -lt 30 ]; do echo tick $i >&2; sleep 0.1; i=$((i+1)); done"},
                  dir);
  CHECK(process.wait() == 0);
  const std::vector<EventRecord> events = read_store(db)->events_of("chatty");
  const auto heartbeats = std::count_if(events.begin(), events.end(),
                                        [](const EventRecord& event) { return event.state == State::heartbeat; });
  CHECK(heartbeats >= 2);
}

TEST_CASE("exec: SIGTERM stops the command's whole process group", "[server]") {
  TempDir dir;
  const std::string db = dir.file("jobs.db");
  const std::string pid_file = dir.file("sleep.pid");
  Process process({"exec", "--db", db, "--job", "cron", "--job-id", "group", "--", "sh", "-c",
                   "sleep 30 & echo $! > " + pid_file + "; wait"},
                  dir);
  pid_t sleeper = 0;
  for (int i = 0; i < 500 && sleeper == 0; ++i) {
    std::ifstream file(pid_file);
    if (!(file >> sleeper)) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(sleeper > 0);
  process.signal(SIGTERM);
  CHECK(process.wait(std::chrono::seconds(10)) == 128 + SIGTERM);
  // The grandchild got the signal too (its parent died, so init reaps it).
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = kill(sleeper, 0) != 0 && errno == ESRCH;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!gone) kill(sleeper, SIGKILL);
  CHECK(gone);
  CHECK(read_store(db)->find_job("group")->state == State::cancelled);
}

TEST_CASE("exec: what the command leaves behind cannot keep exec alive through stderr", "[server]") {
  TempDir dir;
  const std::string db = dir.file("jobs.db");
  // `yes` keeps writing to the inherited stderr long after the command exited; it dies of
  // SIGPIPE once exec stops reading.
  Process process({"exec", "--db", db, "--job", "cron", "--job-id", "leftover", "--", "sh", "-c",
                   "yes spam >&2 & sleep 0.5; exit 0"},
                  dir, Process::Stderr::closed_pipe);  // not gigabytes of spam on the disk
  const auto started = std::chrono::steady_clock::now();
  CHECK(process.wait(std::chrono::seconds(15)) == 0);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));
  CHECK(read_store(db)->find_job("leftover")->state == State::succeeded);
}

TEST_CASE("exec and serve read --token-file alike: trimmed, and never empty", "[server]") {
  TempDir dir;
  const std::string db = dir.file("jobs.db");
  {
    std::ofstream(dir.file("token")) << "  tok\n";
    std::ofstream(dir.file("empty")) << " \n";
  }
  Process serve({"serve", "--db", db, "--listen", "127.0.0.1:0", "--token-file", dir.file("token")}, dir);
  const int port = announced_port(serve);
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  TempDir other;
  {
    Process exec({"exec", "--server", url, "--token-file", dir.file("token"), "--job", "cron", "--job-id", "t1", "--",
                  "true"},
                 other);
    CHECK(exec.wait() == 0);
    CHECK(exec.err().empty());  // the same token as serve's, leading blanks and all
  }
  {
    Process exec({"exec", "--server", url, "--token-file", dir.file("empty"), "--job", "cron", "--", "true"}, other);
    CHECK(exec.wait() == 0);
    CHECK(exec.err().find("--token-file '" + dir.file("empty") + "' is empty") != std::string::npos);
  }
  serve.signal(SIGTERM);
  CHECK(serve.wait() == 0);
  CHECK(read_store(db)->find_job("t1")->state == State::succeeded);

  TempDir third;
  Process empty_serve({"serve", "--db", third.file("jobs.db"), "--listen", "127.0.0.1:0", "--token-file", dir.file("empty")},
                      third);
  CHECK(empty_serve.wait() == 2);
}

TEST_CASE("exec: SIGTERM while 'started' is still being posted is handled; the command never runs", "[server]") {
  // A server that takes connections and never answers: exec waits out its 3 s timeout there.
  const int silent = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(silent >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  REQUIRE(bind(silent, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(listen(silent, 8) == 0);
  REQUIRE(getsockname(silent, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port));

  TempDir dir;
  const std::string marker = dir.file("ran");
  Process exec({"exec", "--server", url, "--job", "cron", "--", "touch", marker}, dir);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  exec.signal(SIGTERM);
  CHECK(exec.wait(std::chrono::seconds(15)) == 128 + SIGTERM);
  CHECK(!std::filesystem::exists(marker));
  // Handled, not killed: exec lived on to say that this run was not tracked.
  CHECK(exec.err().find("warning: not tracking this run") != std::string::npos);
  close(silent);
}
