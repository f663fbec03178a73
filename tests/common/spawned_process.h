#pragma once
// A program run as a child process with its stdout and stderr in files, for the tests that
// watch a real binary (the CLI's follow, the server's processes, the JSON contract). Shared by
// every test folder; one place for posix_spawn and its file actions.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

extern char** environ;

namespace jobtrail::testing {

/// `args[0]` run with `args` (found by path, not on PATH), stdin from /dev/null, stdout written
/// to `out_path` and stderr to `err_path`; killed and reaped at the end if still running.
/// Files rather than pipes: a full pipe cannot block the child while the test waits for it.
/// Not thread-safe.
class SpawnedProcess {
 public:
  /// Where the process's stderr goes: its file, or a pipe nobody reads (as in `... 2>&1 | true`).
  enum class Stderr { file, closed_pipe };

  /// `environment`: the child's whole environment ("NAME=value" entries); without it, this
  /// process's. Throws std::system_error when the process cannot be started.
  SpawnedProcess(std::vector<std::string> args, std::string out_path, std::string err_path,
                 Stderr stderr_to = Stderr::file, const std::vector<std::string>* environment = nullptr)
      : out_(std::move(out_path)), err_(std::move(err_path)) {
    std::vector<char*> argv;
    for (auto& argument : args) argv.push_back(argument.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_storage;
    std::vector<char*> envp;
    if (environment != nullptr) {
      env_storage = *environment;
      for (auto& entry : env_storage) envp.push_back(entry.data());
      envp.push_back(nullptr);
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int unread[2] = {-1, -1};
    if (stderr_to == Stderr::closed_pipe) {
      if (pipe2(unread, O_CLOEXEC) != 0) {
        posix_spawn_file_actions_destroy(&actions);
        throw std::system_error(errno, std::generic_category(), "pipe2");
      }
      posix_spawn_file_actions_adddup2(&actions, unread[1], STDERR_FILENO);
    } else {
      posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    }
    // As a shell would start it: SIGPIPE at its default, whatever this test process does with it.
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF);
    const int spawned =
        posix_spawn(&pid_, argv[0], &actions, &attributes, argv.data(), environment ? envp.data() : environ);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    if (stderr_to == Stderr::closed_pipe) {
      close(unread[0]);
      close(unread[1]);
    }
    if (spawned != 0) {
      pid_ = 0;
      throw std::system_error(spawned, std::generic_category(), "posix_spawn " + args.front());
    }
  }
  ~SpawnedProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  SpawnedProcess(const SpawnedProcess&) = delete;
  SpawnedProcess& operator=(const SpawnedProcess&) = delete;

  void signal(int signal_number) const {
    if (pid_ > 0) kill(pid_, signal_number);
  }
  /// The exit code, 128+N for a signal N, -1 if it did not end within `timeout`.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    // Short sleeps first: most children the tests wait for end within milliseconds.
    std::chrono::microseconds pause(100);
    for (;;) {
      const pid_t ended = waitpid(pid_, &status, WNOHANG);
      if (ended == pid_) break;
      if (ended < 0 && errno != EINTR) return -1;
      if (std::chrono::steady_clock::now() > deadline) return -1;
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(5000));
    }
    pid_ = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  /// What it wrote so far.
  std::string out() const { return read(out_); }
  std::string err() const { return read(err_); }

 private:
  static std::string read(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(file), {}};
  }
  std::string out_, err_;
  pid_t pid_ = 0;
};

}  // namespace jobtrail::testing
