#pragma once
/// \file
/// The subcommands of `jobtrail`, in CLI11's own layout: per subcommand an options struct,
/// a `setup_<verb>` that registers it on the app (returning the subcommand, so main can
/// tell which one was chosen) and a `run_<verb>` that does the work. `run_<verb>` writes
/// its result to `out`, returns the exit code, and reports failures by throwing CliError
/// or StoreError; main turns those into one line on stderr.

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace jobtrail::cli {

struct GlobalOptions;

struct ShowOptions {
  std::string job_id;
  bool backtrace = false;
};
CLI::App* setup_show(CLI::App& app, ShowOptions& options);
int run_show(const GlobalOptions& global, const ShowOptions& options, std::ostream& out);

struct TraceOptions {
  std::string correlation_id;
  std::optional<std::size_t> depth;  ///< --depth: deepest level drawn
  std::optional<std::size_t> width;  ///< --width: children drawn per job
  bool follow = false;
};
CLI::App* setup_trace(CLI::App& app, TraceOptions& options);
int run_trace(const GlobalOptions& global, const TraceOptions& options, std::ostream& out);

struct LsOptions {
  std::string state;
  std::string job;
  std::string queue;
  std::string entity;
  std::string since;
  std::string until;
  bool anomalies_only = false;
  std::size_t limit = 50;
  std::string cursor;           ///< --cursor: where the page starts (from a previous page's note)
  std::string output = "normal";  ///< --output: normal or wide
  bool follow = false;
  std::string interval = "1s";  ///< --interval: how often --follow polls
};
CLI::App* setup_ls(CLI::App& app, LsOptions& options);
int run_ls(const GlobalOptions& global, const LsOptions& options, std::ostream& out);

struct StatsOptions {
  std::string since;
  std::string until;
  std::string job;
  std::string by = "class";  ///< class or queue
};
CLI::App* setup_stats(CLI::App& app, StatsOptions& options);
int run_stats(const GlobalOptions& global, const StatsOptions& options, std::ostream& out);

struct ImpactOptions {
  std::string job;
  std::string state;               ///< --state: comma-separated, read as ls reads it
  std::string type;                ///< --type: only entities of this type
  std::string since;               ///< empty: view::default_impact_since before now
  std::string until;
  std::size_t limit = 50;          ///< entities shown
  std::size_t jobs_per_entity = 5;
  std::size_t max_jobs = 0;        ///< --max-jobs: read the tags of at most the newest N; 0: all
};
CLI::App* setup_impact(CLI::App& app, ImpactOptions& options);
int run_impact(const GlobalOptions& global, const ImpactOptions& options, std::ostream& out);

struct EmitOptions {
  std::string job_id;
  std::string job;
  std::string state;
  std::string queue;
  std::string correlation_id;
  std::string parent_id;
  std::int32_t attempt = 0;
  std::string error_message;
  std::string error_class;
  std::string backtrace;
  std::vector<std::string> entities;
  std::string idempotency_key;
  std::string worker;
  std::string at;
};
CLI::App* setup_emit(CLI::App& app, EmitOptions& options);
int run_emit(const GlobalOptions& global, const EmitOptions& options, std::ostream& out);

struct PruneOptions {
  std::string older_than;
  bool dry_run = false;  ///< count what would go, delete nothing
  bool reclaim = false;  ///< give the space of what went back to the file system
};
CLI::App* setup_prune(CLI::App& app, PruneOptions& options);
int run_prune(const GlobalOptions& global, const PruneOptions& options, std::ostream& out);

struct ServeOptions {
  std::string listen = "127.0.0.1:8089";
  std::string token_file;
  bool protect_reads = false;
  std::size_t max_body_bytes = 16 * 1024 * 1024;
  std::size_t max_events = 10000;
  std::size_t max_connections = 10000;
  std::string request_timeout = "30s";
  std::string idle_timeout = "120s";
};
CLI::App* setup_serve(CLI::App& app, ServeOptions& options);
int run_serve(const GlobalOptions& global, const ServeOptions& options, std::ostream& out);

struct ExecOptions {
  std::string job;
  std::string job_id;
  std::string queue;
  std::string correlation_id;
  std::string parent_id;
  std::vector<std::string> entities;
  std::string every;
  std::string grace;
  std::string heartbeat = "60s";
  std::size_t tail_bytes = 2048;
  std::string server;
  std::string token_file;
  std::vector<std::string> command;
};
CLI::App* setup_exec(CLI::App& app, ExecOptions& options);
/// Returns the command's exit code (128+N for a signal N), not one of ExitCode.
int run_exec(const GlobalOptions& global, const ExecOptions& options, std::ostream& out);

struct CheckOptions {
  std::string config;
  std::vector<std::string> only;
  std::string textfile_dir;
  std::string push_gateway;
  bool no_record = false;
  bool validate = false;
  std::string history;
  std::size_t limit = 20;
};
CLI::App* setup_check(CLI::App& app, CheckOptions& options);
/// Returns 0 pass, 1 warnings, 2 failures; throws CliError(3) when the checker cannot run.
int run_check(const GlobalOptions& global, const CheckOptions& options, std::ostream& out);

struct HelpOptions {
  std::string command;  ///< empty: jobtrail's own help
};
CLI::App* setup_help(CLI::App& app, HelpOptions& options);
/// Prints what `jobtrail --help` prints, or `jobtrail COMMAND --help` for options.command;
/// throws CliError (bad input) for an unknown command, naming the ones it may have meant.
int run_help(const CLI::App& app, const HelpOptions& options, std::ostream& out);
/// The error for `typed` where a subcommand was expected (`jobtrail sho`, `jobtrail help sho`):
/// the subcommands it may have meant, else all of them.
std::string no_such_subcommand(const CLI::App& app, const std::string& typed);

}  // namespace jobtrail::cli
