// `jobtrail exec --job NAME -- CMD ARGS...`: run a command as a tracked job, like a cron monitor.
// The command always runs and its exit code always passes through: a store or server that
// cannot be reached costs one warning line on stderr, never the job.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <iostream>
#include <optional>
#include <string_view>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli_error.h"
#include "commands.h"
#include "generate_docs.h"
#include "global_options.h"
#include "jobtrail/context.h"
#include "jobtrail/ingest_client.h"
#include "jobtrail/store.h"
#include "jobtrail/tracker.h"
#include "jobtrail/view/output.h"
#include "jobtrail/view/time_format.h"
#include "token_file.h"

extern char** environ;

namespace jobtrail::cli {
namespace {

// Set by the signal handler, read by the main loop. sig_atomic_t: all a handler may touch.
volatile sig_atomic_t child_pid = 0;  // also the command's process group
volatile sig_atomic_t stop_signal = 0;

extern "C" void forward_signal(int signal_number) {
  stop_signal = signal_number;
  // The command runs in a process group of its own, so that what it starts (a shell's
  // children) is stopped with it; the terminal's Ctrl-C therefore reaches only us, and every
  // stop signal is passed on to the whole group.
  if (child_pid > 0) kill(-static_cast<pid_t>(child_pid), signal_number);
}

constexpr int forwarded_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

/// Holds the stop signals back on this thread while it lives; they arrive when it ends.
/// Not thread-safe: a signal mask belongs to one thread.
class HeldStopSignals {
 public:
  HeldStopSignals() {
    sigset_t held;
    sigemptyset(&held);
    for (const int signal_number : forwarded_signals) sigaddset(&held, signal_number);
    pthread_sigmask(SIG_BLOCK, &held, &previous_);
  }
  ~HeldStopSignals() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  HeldStopSignals(const HeldStopSignals&) = delete;
  HeldStopSignals& operator=(const HeldStopSignals&) = delete;

  /// The mask from before, for a forked child to restore.
  const sigset_t& previous() const { return previous_; }

 private:
  sigset_t previous_;
};

/// Before anything else: a SIGTERM while the store or server is still being reached must not
/// kill exec with 'started' never followed by an outcome, and a closed stdout or stderr
/// (`jobtrail exec ... 2>&1 | head`) must not kill it with SIGPIPE while the command runs on.
void install_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = forward_signal;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  for (const int signal_number : forwarded_signals) sigaction(signal_number, &action, nullptr);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGPIPE, &ignore, nullptr);
}

/// How long exec keeps passing on stderr after the command exited: a process it left behind
/// may hold stderr open (and keep writing) for as long as it likes.
constexpr Micros drain_after_exit = 1'000'000;

std::string signal_name(int signal_number) {
  const char* abbreviation = sigabbrev_np(signal_number);
  return abbreviation != nullptr ? fmt::format("SIG{}", abbreviation) : fmt::format("signal {}", signal_number);
}

/// Where the events go: the store directly, a server, or nowhere after a warning.
/// Not thread-safe: exec is single-threaded apart from the tracker's own writer.
class Reporter {
 public:
  Reporter(const GlobalOptions& global, const ExecOptions& options) {
    try {
      if (!options.server.empty()) {
        std::string token;
        if (!options.token_file.empty()) token = read_token_file(options.token_file);
        client_ = std::make_unique<IngestClient>(options.server, token, std::chrono::seconds(3));
        if (!options.every.empty()) note(client_->put_schedule(options.job, options.every, options.grace));
      } else {
        const std::string url = store_url(global);
        const bool announce = !store_exists(url);
        std::unique_ptr<Store> store = open_store(url);
        if (announce) std::cerr << new_store_note(url) << '\n';
        if (!options.every.empty()) store->register_schedule(schedule_of(options));
        TrackerOptions tracker_options;
        // exec waits for the outcome to be committed before exiting; a wedged store must not
        // hold a cron line hostage for long.
        tracker_options.durable_timeout = std::chrono::seconds(5);
        tracker_options.shutdown_timeout = std::chrono::seconds(5);
        tracker_options.error_handler = [this](std::string_view message) { note(std::string(message)); };
        tracker_ = std::make_unique<Tracker>(std::move(store), tracker_options);
      }
    } catch (const std::exception& error) {
      note(error.what());
      client_.reset();
      tracker_.reset();
    }
  }

  void report(const Event& event, bool durable) {
    if (tracker_) {
      const RecordStatus status = durable ? tracker_->record_durable(event) : tracker_->record(event);
      if (status != RecordStatus::queued && status != RecordStatus::durable) {
        note(fmt::format("the {} event was not recorded: {}", to_string(event.state), to_string(status)));
      }
    } else if (client_) {
      if (std::string problem = client_->post({event}); !problem.empty()) {
        note(problem);
        // An unreachable server would cost every later post its timeout too.
        if (problem.starts_with("cannot reach")) client_.reset();
      }
    }
  }

  static Schedule schedule_of(const ExecOptions& options) {
    Schedule schedule;
    schedule.job = options.job;
    schedule.every = parse_duration_argument("--every", options.every);
    if (!options.grace.empty()) schedule.grace = parse_duration_argument("--grace", options.grace);
    return schedule;
  }

 private:
  /// One warning line per run, whatever else goes wrong: the command's own output matters more.
  void note(const std::string& problem) {
    if (problem.empty() || warned_) return;
    warned_ = true;
    std::cerr << "jobtrail exec: warning: not tracking this run: " << printable(problem) << '\n';
  }

  bool warned_ = false;
  std::unique_ptr<Tracker> tracker_;
  std::unique_ptr<IngestClient> client_;
};

/// The last lines of the command's stderr, at most `limit` bytes, starting at a line if one
/// fits: the error message people want is the last thing the command said.
std::string tail_of(const std::string& captured, std::size_t limit) {
  std::string tail = captured.size() > limit ? captured.substr(captured.size() - limit) : captured;
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
  if (captured.size() > limit) {
    if (const auto newline = tail.find('\n'); newline != std::string::npos && newline + 1 < tail.size()) {
      tail.erase(0, newline + 1);
    }
    // Never start in the middle of a UTF-8 sequence.
    while (!tail.empty() && (static_cast<unsigned char>(tail.front()) & 0xC0) == 0x80) tail.erase(0, 1);
  }
  return tail;
}

struct ChildResult {
  int exit_code = 0;        ///< what exec exits with
  int signal_number = 0;    ///< the signal that killed the child, if any
  int exec_errno = 0;       ///< the command could not be started
  bool ran = true;          ///< false: stopped before the command was started
  std::string stderr_tail;
};

/// Runs the command with stderr passed through and its tail kept. `heartbeat` is called
/// every `heartbeat_every` while it runs (never if zero).
ChildResult run_child(const ExecOptions& options, const std::vector<std::pair<std::string, std::string>>& env,
                      Micros heartbeat_every, const std::function<void()>& heartbeat) {
  int err_pipe[2];
  int exec_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0 || pipe2(exec_pipe, O_CLOEXEC) != 0) {
    throw CliError(exit_store_unavailable, fmt::format("cannot create a pipe: {}", std::strerror(errno)));
  }
  // Everything the child needs is built before the fork: the tracker's writer thread may hold
  // the allocator's lock at that moment, so the child must not allocate (setenv would).
  std::vector<char*> argv;
  for (const std::string& argument : options.command) argv.push_back(const_cast<char*>(argument.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const bool replaced = std::any_of(env.begin(), env.end(), [&](const auto& pair) {
      return text.size() > pair.first.size() && text.starts_with(pair.first) && text[pair.first.size()] == '=';
    });
    if (!replaced) env_strings.emplace_back(text);
  }
  for (const auto& [name, value] : env) env_strings.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (std::string& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);

  // The stop signals wait until the child has its own process group and default handlers,
  // and until child_pid names that group: none is lost or swallowed in between.
  std::optional<HeldStopSignals> held(std::in_place);
  if (stop_signal != 0) {
    // Stopped while the store or server was being reached: the command never runs.
    for (const int fd : {err_pipe[0], err_pipe[1], exec_pipe[0], exec_pipe[1]}) close(fd);
    ChildResult result;
    result.ran = false;
    result.signal_number = stop_signal;
    result.exit_code = 128 + stop_signal;
    return result;
  }
  const pid_t pid = fork();
  if (pid < 0) throw CliError(exit_store_unavailable, fmt::format("cannot fork: {}", std::strerror(errno)));
  if (pid == 0) {
    // The child: its own process group, default signal handling (SIG_IGN would survive exec),
    // stderr into the pipe, then the command.
    setpgid(0, 0);
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    for (const int signal_number : forwarded_signals) sigaction(signal_number, &default_action, nullptr);
    sigaction(SIGPIPE, &default_action, nullptr);
    sigprocmask(SIG_SETMASK, &held->previous(), nullptr);  // async-signal-safe, unlike the pthread_ one
    dup2(err_pipe[1], STDERR_FILENO);
    execvpe(argv[0], argv.data(), envp.data());
    const int error = errno;
    [[maybe_unused]] const ssize_t written = write(exec_pipe[1], &error, sizeof error);
    _exit(127);
  }
  // Both sides set the group, so it exists whichever runs first (EACCES: it already exec'd).
  setpgid(pid, pid);
  child_pid = pid;
  held.reset();
  // Another thread may have taken a signal while this one held them.
  if (stop_signal != 0) kill(-pid, stop_signal);
  close(err_pipe[1]);
  close(exec_pipe[1]);

  ChildResult result;
  std::string captured;
  const std::size_t keep = 4 * options.tail_bytes;
  char buffer[8192];
  int status = 0;
  bool exited = false;
  Micros drain_until = 0;  // once the command exited
  bool pipe_open = true;
  long idle_nap = 500;  // µs
  Micros next_heartbeat = heartbeat_every > 0 ? now_micros() + heartbeat_every : 0;
  // Every pass checks the child and the heartbeat, however much the command writes.
  while (!exited || pipe_open) {
    if (pipe_open) {
      pollfd readable{err_pipe[0], POLLIN, 0};
      // Short polls while the child runs, so its exit is noticed even if a grandchild it
      // left behind keeps stderr open; once it exited, only drain what is already there.
      const int ready = poll(&readable, 1, exited ? 0 : 200);
      if (ready > 0) {
        const ssize_t got = read(err_pipe[0], buffer, sizeof buffer);
        if (got > 0) {
          std::size_t offset = 0;
          while (offset < static_cast<std::size_t>(got)) {
            const ssize_t out = write(STDERR_FILENO, buffer + offset, static_cast<std::size_t>(got) - offset);
            if (out <= 0 && errno != EINTR) break;  // our stderr is gone: keep capturing anyway
            if (out > 0) offset += static_cast<std::size_t>(out);
          }
          captured.append(buffer, static_cast<std::size_t>(got));
          if (captured.size() > keep) captured.erase(0, captured.size() - keep);
          // Something left behind that keeps writing must not keep exec alive for ever.
          if (exited && now_micros() >= drain_until) pipe_open = false;
        } else if (got == 0 || errno != EINTR) {
          pipe_open = false;
        }
      } else if (exited) {
        pipe_open = false;
      }
    } else {
      // stderr is closed (usually: the command just exited). Wait in short, growing naps so
      // a quick command is not held up and a long one still wakes for heartbeats.
      usleep(static_cast<useconds_t>(idle_nap));
      idle_nap = std::min(idle_nap * 2, 200'000L);
    }
    if (!exited) {
      const pid_t done = waitpid(pid, &status, WNOHANG);
      if (done == pid) {
        exited = true;
        drain_until = now_micros() + drain_after_exit;
      }
    }
    if (!exited && next_heartbeat != 0 && now_micros() >= next_heartbeat) {
      heartbeat();
      next_heartbeat = now_micros() + heartbeat_every;
    }
  }
  close(err_pipe[0]);
  child_pid = 0;

  int exec_errno = 0;
  if (read(exec_pipe[0], &exec_errno, sizeof exec_errno) == static_cast<ssize_t>(sizeof exec_errno)) {
    result.exec_errno = exec_errno;
  }
  close(exec_pipe[0]);
  result.stderr_tail = tail_of(captured, options.tail_bytes);
  if (result.exec_errno != 0) {
    // The shell's convention: 127 not found, 126 found but not runnable.
    result.exit_code = result.exec_errno == ENOENT ? 127 : 126;
  } else if (WIFSIGNALED(status)) {
    result.signal_number = WTERMSIG(status);
    result.exit_code = 128 + result.signal_number;
  } else {
    result.exit_code = WEXITSTATUS(status);
  }
  return result;
}

std::string default_job_id(const std::string& job) {
  // Unique per run and readable in `ls`: the class, the start time, a random suffix.
  return fmt::format("{}-{}-{}", job, format_rfc3339(now_micros()).substr(0, 19), new_correlation_id().substr(0, 8));
}

}  // namespace

CLI::App* setup_exec(CLI::App& app, ExecOptions& options) {
  CLI::App* exec = app.add_subcommand("exec", "Run a command as a tracked job (a cron monitor); its exit code passes through.");
  exec->add_option("--job", options.job, "The job class, e.g. nightly-backup.")->required()->option_text("NAME");
  exec->add_option("--job-id", options.job_id, "This run's ID (default: NAME-TIME-RANDOM).")->option_text("ID");
  exec->add_option("--queue", options.queue, "A queue name to file the run under.")->option_text("QUEUE");
  exec->add_option("--correlation-id", options.correlation_id,
                   "The request this run belongs to (default: $JOBTRAIL_CORRELATION_ID, else new).")
      ->option_text("ID");
  exec->add_option("--parent-id", options.parent_id, "The job that started this one (default: $JOBTRAIL_PARENT_JOB_ID).")
      ->option_text("JOB_ID");
  exec->add_option("--entity", options.entities, "A business object the run touches, e.g. tenant:7; repeatable.")
      ->option_text("TYPE:ID")
      ->allow_extra_args(false);
  exec->add_option("--every", options.every,
                   "Register the expected schedule (24h, 15m, ...) so the checker can report a missed run.")
      ->option_text("DURATION");
  exec->add_option("--grace", options.grace, "How late a run may start before it counts as missed (with --every).")
      ->option_text("DURATION");
  exec->add_option("--heartbeat", options.heartbeat, "Record a heartbeat this often while it runs (default 60s; 0 = never).")
      ->option_text("DURATION");
  exec->add_option("--tail", options.tail_bytes, "Bytes of the end of stderr kept as the error message (default 2048).")
      ->check(CLI::Range(std::size_t{0}, std::size_t{8000}))
      ->option_text("BYTES");
  exec->add_option("--server", options.server, "Post to `jobtrail serve` at this URL instead of writing the store.")
      ->option_text("URL");
  exec->add_option("--token-file", options.token_file, "The server's bearer token (with --server).")
      ->option_text("PATH")
      ->check(completes(ValueKind::file));
  exec->add_option("command", options.command, "The command and its arguments, after --.")
      ->required()
      ->check(completes(ValueKind::command_line));
  exec->footer(
      "Records started, then succeeded (exit 0), dead (non-zero exit, with the tail of stderr\n"
      "as the error) or cancelled (stopped by SIGINT/SIGTERM/SIGHUP/SIGQUIT, which are passed\n"
      "on to the command's process group: it runs in a group of its own, so what it starts is\n"
      "stopped with it). The command sees JOBTRAIL_CORRELATION_ID and JOBTRAIL_PARENT_JOB_ID.\n"
      "If the store or server cannot be reached, the command runs anyway with one warning line.\n\n"
      "Global options (--db URL): see 'jobtrail --help'.\n\n"
      "Exit codes: the command's own; 128+N if a signal N killed it; 127 command not found,\n"
      "126 not executable; 2 bad usage of exec itself (nothing was run).\n");
  return exec;
}

int run_exec(const GlobalOptions& global, const ExecOptions& options, std::ostream&) {
  install_signal_handlers();
  // Usage mistakes are found before anything runs: a cron line with a typo should fail loudly.
  refuse_csv(global, "exec");
  if (!options.grace.empty() && options.every.empty()) throw CliError(exit_bad_input, "--grace needs --every");
  if (!options.every.empty()) (void)Reporter::schedule_of(options);
  const Micros heartbeat_every =
      options.heartbeat == "0" ? 0 : parse_duration_argument("--heartbeat", options.heartbeat);
  for (const std::string& entity : options.entities) {
    if (!is_valid_entity(entity)) {
      throw CliError(exit_bad_input, fmt::format("bad --entity '{}': expected type:id like user:42", entity));
    }
  }
  const auto from_env = [](const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr ? std::string(value) : std::string();
  };

  Event started;
  started.job_id = options.job_id.empty() ? default_job_id(options.job) : options.job_id;
  started.state = State::started;
  started.job = options.job;
  started.queue = options.queue;
  started.correlation_id = !options.correlation_id.empty() ? options.correlation_id : from_env("JOBTRAIL_CORRELATION_ID");
  if (started.correlation_id.empty()) started.correlation_id = new_correlation_id();
  started.parent_job_id = !options.parent_id.empty() ? options.parent_id : from_env("JOBTRAIL_PARENT_JOB_ID");
  started.attempt = 1;
  started.entities = options.entities;
  // Named here, not by the tracker: through --server it would name the server's process.
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  started.worker = fmt::format("{}:{}", host, getpid());
  if (const std::string problem = validation_error(started); !problem.empty()) {
    throw CliError(exit_bad_input, fmt::format("invalid job: {}", problem));
  }

  // The tracker's writer thread starts in here: with the stop signals blocked while it is
  // created, it inherits the mask and they are always handled on this thread.
  std::optional<Reporter> constructed;
  {
    const HeldStopSignals held;
    constructed.emplace(global, options);
  }
  Reporter& reporter = *constructed;
  started.at = now_micros();
  reporter.report(started, false);

  Event heartbeat_event = started;
  heartbeat_event.state = State::heartbeat;
  heartbeat_event.entities.clear();
  const ChildResult child = run_child(
      options, {{"JOBTRAIL_CORRELATION_ID", started.correlation_id}, {"JOBTRAIL_PARENT_JOB_ID", started.job_id}},
      heartbeat_every, [&] {
        heartbeat_event.at = now_micros();
        reporter.report(heartbeat_event, false);
      });

  Event outcome = heartbeat_event;
  outcome.at = now_micros();
  if (child.exec_errno != 0) {
    outcome.state = State::dead;
    outcome.error = {"exec", fmt::format("cannot run '{}': {}", options.command.front(), std::strerror(child.exec_errno)), ""};
    std::cerr << fmt::format("jobtrail exec: cannot run '{}': {}\n", printable(options.command.front()),
                             std::strerror(child.exec_errno));
  } else if (child.exit_code == 0) {
    outcome.state = State::succeeded;
  } else {
    // dead, not failed: nothing will retry this run (the next one is a new job), and a
    // failed job would look like it is still waiting for its retry.
    outcome.state = stop_signal != 0 ? State::cancelled : State::dead;
    const std::string how =
        !child.ran                ? fmt::format("stopped by {} before it started", signal_name(child.signal_number))
        : child.signal_number != 0 ? fmt::format("killed by {}", signal_name(child.signal_number))
                                                     : fmt::format("exit status {}", child.exit_code);
    outcome.error.error_class = how;
    outcome.error.message = child.stderr_tail;
  }
  reporter.report(outcome, true);
  return child.exit_code;
}

}  // namespace jobtrail::cli
