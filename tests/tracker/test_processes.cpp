// Several processes writing one store at once (SQLite, and PostgreSQL in the postgres: run), and
// a process killed right after a durable record: the situations a single-process test cannot show.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "jobtrail/store.h"
#include "temp_dir.h"
#include "test_store.h"

extern char** environ;

using namespace jobtrail;

namespace {

/// A child process running record_events. Not thread-safe. Kills the child if the test
/// leaves without waiting for it.
class RecordEventsProcess {
 public:
  RecordEventsProcess(const std::vector<std::string>& arguments, const std::string& stderr_path,
                      bool capture_stdout = false) {
    std::vector<std::string> argv_strings{RECORD_EVENTS_PATH};
    argv_strings.insert(argv_strings.end(), arguments.begin(), arguments.end());
    std::vector<char*> argv;
    for (auto& argument : argv_strings) argv.push_back(argument.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    int pipe_fds[2] = {-1, -1};
    if (capture_stdout) {
      REQUIRE(pipe(pipe_fds) == 0);
      posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
      posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
      posix_spawn_file_actions_addclose(&actions, pipe_fds[1]);
    }
    const int spawned = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (capture_stdout) {
      close(pipe_fds[1]);
      stdout_fd_ = pipe_fds[0];
    }
    REQUIRE(spawned == 0);
  }
  ~RecordEventsProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stdout_fd_ >= 0) close(stdout_fd_);
  }
  RecordEventsProcess(const RecordEventsProcess&) = delete;
  RecordEventsProcess& operator=(const RecordEventsProcess&) = delete;

  /// Waits for the child to end; its wait status.
  int wait() {
    int status = 0;
    REQUIRE(waitpid(pid_, &status, 0) == pid_);
    pid_ = -1;
    return status;
  }

  void kill_hard() { REQUIRE(kill(pid_, SIGKILL) == 0); }

  /// The first line the child writes to stdout, or "" if none comes within `timeout`.
  std::string read_line(std::chrono::milliseconds timeout) {
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (line.empty() || line.back() != '\n') {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return {};
      pollfd readable{stdout_fd_, POLLIN, 0};
      if (poll(&readable, 1, static_cast<int>(left.count())) <= 0) return {};
      char c = 0;
      if (read(stdout_fd_, &c, 1) != 1) return {};
      line.push_back(c);
    }
    line.pop_back();
    return line;
  }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
};

std::string contents(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace

// On PostgreSQL these are also the "workers on different hosts": separate processes,
// each with its own tracker and connection, writing one store.
TEST_CASE("four processes record into one store at once without losing anything",
          "[tracker][processes][store]") {
  testing::TestStore test_store;
  const auto& dir = test_store.dir();
  const std::string& db = test_store.url();
  constexpr int processes = 4;
  constexpr int jobs_per_process = 2000;

  std::vector<std::unique_ptr<RecordEventsProcess>> children;
  for (int p = 0; p < processes; ++p) {
    children.push_back(std::make_unique<RecordEventsProcess>(
        std::vector<std::string>{"--db", db, "--prefix", "p" + std::to_string(p), "--count",
                                 std::to_string(jobs_per_process)},
        dir.file("stderr-" + std::to_string(p))));
  }
  for (int p = 0; p < processes; ++p) {
    const int status = children[static_cast<std::size_t>(p)]->wait();
    const std::string errors = contents(dir.file("stderr-" + std::to_string(p)));
    INFO("process " << p << " stderr: " << errors);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(errors.find("busy") == std::string::npos);
    CHECK(errors.find("locked") == std::string::npos);
  }

  auto store = open_store(db, OpenOptions{.read_only = true});
  std::int64_t events = 0;
  int missing_or_wrong = 0;
  for (int p = 0; p < processes; ++p) {
    for (int i = 1; i <= jobs_per_process; ++i) {
      const auto job = store->find_job("p" + std::to_string(p) + "-" + std::to_string(i));
      if (!job || job->state != State::succeeded) {
        ++missing_or_wrong;
        continue;
      }
      events += job->event_count;
    }
  }
  CHECK(missing_or_wrong == 0);
  CHECK(events == processes * jobs_per_process * 3);
}

TEST_CASE("an event recorded durably survives the process being killed at once",
          "[tracker][processes][store]") {
  testing::TestStore test_store;
  const auto& dir = test_store.dir();
  const std::string& db = test_store.url();
  RecordEventsProcess child({"--db", db, "--prefix", "payment", "--count", "50", "--durable-last", "--then-sleep"},
                            dir.file("stderr"), true);
  const std::string line = child.read_line(std::chrono::seconds(30));
  INFO("stderr: " << contents(dir.file("stderr")));
  REQUIRE(line.rfind("DURABLE ", 0) == 0);
  const std::string job_id = line.substr(8);
  CHECK(job_id == "payment-50");

  child.kill_hard();
  const int status = child.wait();
  CHECK(WIFSIGNALED(status));

  auto store = open_store(db);
  const auto job = store->find_job(job_id);
  REQUIRE(job);
  CHECK(job->state == State::succeeded);
  const auto events = store->events_of(job_id);
  REQUIRE_FALSE(events.empty());
  CHECK(events.back().state == State::succeeded);
}
