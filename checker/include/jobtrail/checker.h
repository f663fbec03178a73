#pragma once
/// \file
/// `jobtrail check`: sanity checks over application databases and the job history.
///
/// A check is a query that returns the rows you do *not* want (dbt/Soda semantics). Its row
/// count is compared with thresholds to give pass / warn / fail; a check that cannot run is
/// `error`. Every run and its failing rows (by a stable fingerprint) are stored in the jobtrail
/// store, so a report tells new rows from rows still failing and from resolved ones.
/// The public face names neither SQLite nor yaml-cpp nor prometheus-cpp.

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "jobtrail/event.h"
#include "jobtrail/store.h"

namespace jobtrail::check {

/// `warn_if` / `error_if`: a comparison of the row count with a number, e.g. "> 10".
struct Threshold {
  enum class Op { greater, greater_equal, less, less_equal, equal, not_equal };
  Op op = Op::not_equal;
  std::int64_t value = 0;

  bool matches(std::int64_t count) const noexcept;
  /// "> 10"
  std::string text() const;
  /// Parses "> 10", ">=1", "!= 0", "= 0", "== 0", "< 5", "<= 5"; nothing for anything else.
  static std::optional<Threshold> parse(const std::string& text);
};

/// The checks jobtrail brings for the job history.
enum class Builtin { stuck_jobs, lost_jobs, duplicate_executions, dead_jobs, missed_cron_runs };
/// The check name of a built-in check: "stuck_jobs", ...
std::string_view to_string(Builtin builtin) noexcept;

/// One check, as configured.
struct CheckDefinition {
  std::string name;         ///< unique; [A-Za-z0-9_.-], it becomes a metric label
  std::string description;
  std::string runbook;      ///< a link for whoever is paged
  std::optional<Builtin> builtin;  ///< set for a built-in check; then database/query are empty
  std::string database;     ///< a name from Config::databases, or "jobtrail" (the store)
  std::string query;        ///< one SELECT returning the bad rows
  std::string severity = "error";  ///< "warn" or "error": what any failing row means by default
  std::optional<Threshold> warn_if;   ///< default "!= 0"
  std::optional<Threshold> error_if;  ///< default "!= 0" when severity is error, else never
  std::size_t samples = 5;  ///< failing rows kept and shown
  Micros timeout = 30'000'000;  ///< SQL checks; at most 24h (checks.yaml refuses more, code is clamped)
  std::string entity;         ///< entity type ("user"): each sample row links to its jobs
  std::string entity_column = "id";   ///< the column holding the entity's id
  std::vector<std::string> key;  ///< columns that identify a row for its fingerprint (default:
                                 ///< the entity column if set, else every column)
  JobDeadlines deadlines;     ///< stuck_jobs, lost_jobs
  Micros window = 0;          ///< dead_jobs, duplicate_executions: how far back to look (at most 366000d)
  int line = 0;               ///< where the check is defined in its config file (1-based)

  /// The status a check with `count` failing rows gets.
  CheckStatus status_for(std::int64_t count) const noexcept;
};

/// A parsed config file.
struct Config {
  std::string path;   ///< the file it was read from
  std::string store;  ///< `store:` (a store URL), empty if not given
  std::map<std::string, std::string> databases;  ///< name -> SQLite path (absolute) or
                                                 ///< postgresql:// URL (as written)
  std::vector<CheckDefinition> checks;           ///< in file order, then the built-in ones
};

/// A config file that cannot be used. what(): "checks.yaml:12: <what is wrong>".
/// Immutable once thrown, so thread-safe.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(const std::string& file, int line, const std::string& problem);
  const std::string& file() const noexcept { return file_; }
  int line() const noexcept { return line_; }  ///< 1-based; 0 when the file could not be read
 private:
  std::string file_;
  int line_;
};

/// Reads and validates a config file. Relative database paths are relative to the file's
/// folder (a crontab runs in $HOME); postgresql:// URLs are kept as written. Throws ConfigError.
Config load_config(const std::string& path);
/// The same for config text; `path` names it in messages and anchors relative paths.
Config parse_config(const std::string& text, const std::string& path);

/// One failing row kept as a sample.
struct SampleRow {
  std::vector<std::pair<std::string, std::optional<std::string>>> columns;  ///< name, value (NULL: none)
  std::string fingerprint;
  bool is_new = true;         ///< not failing in the previous run
  Micros failing_since = 0;   ///< start of the first run of the current streak
  std::string entity;         ///< "user:42" when the check names an entity
  std::vector<JobRecord> jobs;  ///< the entity's jobs, newest first
};

/// The outcome of one check in one run.
struct CheckResult {
  CheckDefinition check;
  CheckStatus status = CheckStatus::pass;
  std::int64_t violations = 0;
  std::int64_t new_violations = 0;
  std::int64_t persisting = 0;
  std::int64_t resolved = 0;
  bool compared = false;          ///< there was a previous run to compare with
  std::vector<SampleRow> samples;
  std::vector<std::string> resolved_samples;  ///< JSON rows of resolved violations, when kept
  std::string error;              ///< why it could not run (status error)
  Micros started_at = 0;
  Micros duration = 0;
  std::optional<Micros> last_success;  ///< when it last passed: this run if it passed and was
                                       ///< recorded, else from the check history
};

/// One run of every check.
struct RunReport {
  std::string config_path;
  Micros started_at = 0;
  Micros finished_at = 0;
  std::vector<CheckResult> results;
  std::int64_t run_id = 0;     ///< in the check history; 0 when not recorded
  std::string history_error;   ///< why the run could not be recorded, if it could not

  std::size_t count(CheckStatus status) const noexcept;
  /// 0 every check passed, 1 warnings only, 2 a check failed, 3 a check could not run or the
  /// run could not be recorded (the report is incomplete: that must not pass unnoticed).
  int exit_code() const noexcept;
};

struct RunOptions {
  Micros now = 0;                  ///< the time checks run at; 0: the clock
  bool record_history = true;      ///< store the run in the check history
  std::vector<std::string> only;   ///< run only these checks (empty: all)
  std::size_t linked_jobs = 5;     ///< jobs listed per entity of a sample row
  std::size_t fingerprint_limit = 10000;  ///< failing rows fingerprinted per check
  /// The URL `store` was opened with, password included: SQL checks with `database: jobtrail`
  /// connect to a PostgreSQL store's database with it (Store::location() redacts the
  /// password). Empty, or a SQLite URL: the store's location() is used.
  std::string store_url;
};

/// Runs the checks of `config` against `store` (opened for writing unless record_history is
/// off) and the application databases, each opened read-only (a PostgreSQL one in a read-only
/// transaction). Never throws for one check's
/// failure: that check is `error` and the others run. Throws StoreError when the store itself
/// cannot be read. Not thread-safe (it uses `store`).
RunReport run_checks(const Config& config, Store& store, const RunOptions& options = {});

/// The metrics of a run in Prometheus' text format (see docs/metrics.md). Every series has a
/// `config` label: the config file's name without folder and extension ("checks" if none).
/// A check in error has no violation counts, only its status, duration and timestamps.
std::string metrics_text(const RunReport& report);

/// Writes the metrics to DIR/jobtrail_check_<config>.prom (the config label cut down to
/// [A-Za-z0-9_]) for node_exporter's textfile collector, so two configs keep a file each:
/// written to a temporary file in DIR, flushed, then renamed over, so the collector never
/// reads half a file. Throws std::runtime_error.
void write_textfile(const RunReport& report, const std::string& directory);

/// Pushes the metrics to a Pushgateway at `url` ("http://host:port"), grouped under
/// job="jobtrail_check" and the config file's name as `instance`, replacing that group.
/// Returns the HTTP status (200 ok; < 0 when the gateway could not be reached).
/// Throws std::invalid_argument for a URL that is not http://host:port.
int push_metrics(const RunReport& report, const std::string& url);
/// Whether `url` has the form push_metrics takes: http://HOST:PORT (a trailing / allowed).
bool is_push_gateway_url(const std::string& url);

}  // namespace jobtrail::check
