// Several processes writing one store at once (SQLite, and PostgreSQL in the postgres: run), and
// a process killed right after a durable record: the situations a single-process test cannot show.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <random>
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

  /// The next line the child writes to stdout, or "" if none comes within `timeout`.
  std::string read_line(std::chrono::milliseconds timeout) {
    std::string line;
    next_line(line, std::chrono::steady_clock::now() + timeout);
    return line;
  }

  /// Reads the next whole line into `line`: false at `deadline` or at the end of the output
  /// (the child died; what it wrote before is still read).
  bool next_line(std::string& line, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      if (const auto end = unread_.find('\n'); end != std::string::npos) {
        line = unread_.substr(0, end);
        unread_.erase(0, end + 1);
        return true;
      }
      if (ended_) return false;
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd readable{stdout_fd_, POLLIN, 0};
      if (poll(&readable, 1, static_cast<int>(left.count())) <= 0) return false;
      char chunk[4096];
      const ssize_t got = read(stdout_fd_, chunk, sizeof chunk);
      if (got <= 0) {
        ended_ = true;
      } else {
        unread_.append(chunk, static_cast<std::size_t>(got));
      }
    }
  }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string unread_;
  bool ended_ = false;
};

std::string contents(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// Runs `processes` record_events children at once into `test_store`, `jobs_per_process` jobs
// (three events each) apiece, and checks that every job and event is there. With
// `lock_waits_allowed` a writer may wait past its busy timeout and retry (it says so on
// stderr), as long as nothing is lost.
void record_from_processes_at_once(const testing::TestStore& test_store, int processes, int jobs_per_process,
                                   bool lock_waits_allowed = false) {
  const auto& dir = test_store.dir();
  const std::string& db = test_store.url();
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
    if (!lock_waits_allowed) {
      CHECK(errors.find("busy") == std::string::npos);
      CHECK(errors.find("locked") == std::string::npos);
    }
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
  CHECK(events == std::int64_t{processes} * jobs_per_process * 3);
}

/// `PRAGMA integrity_check` of the SQLite file at `path`, through a plain connection: the file
/// as the kill left it (opening it recovers the WAL, as any reader would).
std::string integrity_of(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    const std::string message = db ? sqlite3_errmsg(db) : "cannot open";
    sqlite3_close_v2(db);
    return message;
  }
  std::string result;
  sqlite3_stmt* statement = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &statement, nullptr) == SQLITE_OK) {
    while (sqlite3_step(statement) == SQLITE_ROW) {
      if (!result.empty()) result += "; ";
      result += reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
    }
  } else {
    result = sqlite3_errmsg(db);
  }
  sqlite3_finalize(statement);
  sqlite3_close_v2(db);
  return result;
}

/// What one kill loop found.
struct KillLoopTally {
  int kills = 0;
  std::int64_t acknowledged = 0;  ///< DURABLE lines read
  std::int64_t checked_jobs = 0;  ///< jobs that had to be complete (acknowledged or queued before one)
  std::int64_t missing = 0;       ///< of those, jobs absent or with events missing
  int integrity_failures = 0;
};

/// SIGKILLs `kills` record_events --until-killed children in turn, each at a random moment
/// while it records into the SQLite file of `test_store`, and checks after every kill that each
/// acknowledged job (a DURABLE line) is there with all three events, and so is every job its
/// thread queued before it (one FIFO queue), and that the file passes integrity_check.
KillLoopTally kill_loop(const testing::TestStore& test_store, int kills, int durable_every, int threads) {
  const auto& dir = test_store.dir();
  const std::string& db = test_store.url();
  std::mt19937 random(20261202);
  std::uniform_int_distribution<int> run_for_ms(1, 150);
  KillLoopTally tally;
  for (int kill = 0; kill < kills; ++kill) {
    const std::string prefix = "k" + std::to_string(kill);
    const std::string stderr_path = dir.file("stderr-" + prefix);
    // Per thread ("k3-t1"), the highest job number acknowledged.
    std::map<std::string, long> acknowledged_up_to;
    {
      RecordEventsProcess child({"--db", db, "--prefix", prefix, "--until-killed", "--durable-every",
                                 std::to_string(durable_every), "--threads", std::to_string(threads)},
                                stderr_path, true);
      std::string line;
      auto note = [&](const std::string& acknowledgement) {
        REQUIRE(acknowledgement.rfind("DURABLE ", 0) == 0);
        const std::string job_id = acknowledgement.substr(8);
        const auto dash = job_id.rfind('-');
        const std::string thread = job_id.substr(0, dash);
        const long number = std::stol(job_id.substr(dash + 1));
        long& highest = acknowledged_up_to[thread];
        highest = std::max(highest, number);
        ++tally.acknowledged;
      };
      // Kill only once it records: the first acknowledgement, then a random while.
      const bool started = child.next_line(line, std::chrono::steady_clock::now() + std::chrono::seconds(60));
      INFO("stderr: " << contents(stderr_path));
      REQUIRE(started);
      note(line);
      const auto kill_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(run_for_ms(random));
      while (child.next_line(line, kill_at)) note(line);
      child.kill_hard();
      const int status = child.wait();
      INFO("stderr: " << contents(stderr_path));
      REQUIRE(WIFSIGNALED(status));
      // What it printed before it died was acknowledged too.
      while (child.next_line(line, std::chrono::steady_clock::now() + std::chrono::seconds(10))) note(line);
    }
    ++tally.kills;
    const std::string integrity = integrity_of(db);
    if (integrity != "ok") {
      ++tally.integrity_failures;
      UNSCOPED_INFO("after kill " << kill << ": integrity_check says " << integrity);
    }
    auto store = open_store(db, OpenOptions{.read_only = true});
    for (const auto& [thread, highest] : acknowledged_up_to) {
      for (long i = 1; i <= highest; ++i) {
        ++tally.checked_jobs;
        const std::string job_id = thread + "-" + std::to_string(i);
        const auto job = store->find_job(job_id);
        if (!job || job->state != State::succeeded || job->event_count != 3) {
          if (tally.missing++ < 5) UNSCOPED_INFO("after kill " << kill << ": job " << job_id << " is missing or incomplete");
        }
      }
    }
  }
  return tally;
}

}  // namespace

// On PostgreSQL these are also the "workers on different hosts": separate processes,
// each with its own tracker and connection, writing one store.
TEST_CASE("four processes record into one store at once without losing anything",
          "[tracker][processes][store]") {
  testing::TestStore test_store;
  record_from_processes_at_once(test_store, 4, 2000);
}

// The probe at full size, on SQLite: 8 processes x 6,667 jobs x 3 events = 20,001 events
// per process in one file (9 s on 2 busy cores). Under ASan on a loaded machine 5,000-event
// commits from 8 writers outlast the busy timeout: the writers retry, which is allowed here.
TEST_CASE("eight processes record 20,000 events each into one SQLite file without losing any",
          "[tracker][processes][slow]") {
  testing::TestStore test_store;
  record_from_processes_at_once(test_store, 8, 6667, true);
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

// The probe: 100 SIGKILLs of a process whose four threads record every job's last
// event durably. Nothing acknowledged may be lost, and the file is sound after every kill.
TEST_CASE("100 SIGKILLs of a process recording durable events lose nothing acknowledged",
          "[tracker][processes][slow]") {
  testing::TestStore test_store;
  const KillLoopTally tally = kill_loop(test_store, 100, 1, 4);
  WARN(tally.kills << " kills: " << tally.acknowledged << " acknowledged, " << tally.checked_jobs << " jobs checked, "
                   << tally.missing << " missing");
  CHECK(tally.kills == 100);
  CHECK(tally.acknowledged >= 100);
  CHECK(tally.missing == 0);
  CHECK(tally.integrity_failures == 0);
}

// Mostly queued events with a durable one every tenth job: a durable acknowledgement also
// vouches for every event its thread queued before it.
TEST_CASE("30 SIGKILLs of a mixed durable and queued writer lose nothing acknowledged",
          "[tracker][processes][slow]") {
  testing::TestStore test_store;
  const KillLoopTally tally = kill_loop(test_store, 30, 10, 4);
  WARN(tally.kills << " kills: " << tally.acknowledged << " acknowledged, " << tally.checked_jobs << " jobs checked, "
                   << tally.missing << " missing");
  CHECK(tally.kills == 30);
  CHECK(tally.checked_jobs >= 10 * tally.acknowledged);
  CHECK(tally.missing == 0);
  CHECK(tally.integrity_failures == 0);
}
