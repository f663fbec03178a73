// Running the checks of a config: thresholds, fingerprints, the comparison with the previous
// run, entity links to the jobs, and the check history.

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string_view>
#include <tuple>

#include <nlohmann/json.hpp>

#include "jobtrail/view/time_format.h"
#include "jobtrail/checker.h"
#include "sql_check.h"

namespace jobtrail::check {

// ---- Thresholds and statuses --------------------------------------------------------------

bool Threshold::matches(std::int64_t count) const noexcept {
  switch (op) {
    case Op::greater: return count > value;
    case Op::greater_equal: return count >= value;
    case Op::less: return count < value;
    case Op::less_equal: return count <= value;
    case Op::equal: return count == value;
    case Op::not_equal: return count != value;
  }
  return false;
}

std::string Threshold::text() const {
  static constexpr const char* symbols[] = {">", ">=", "<", "<=", "=", "!="};
  return std::string(symbols[static_cast<int>(op)]) + " " + std::to_string(value);
}

std::optional<Threshold> Threshold::parse(const std::string& text) {
  std::size_t i = text.find_first_not_of(' ');
  if (i == std::string::npos) return std::nullopt;
  Threshold threshold;
  auto starts = [&](std::string_view symbol) { return text.compare(i, symbol.size(), symbol) == 0; };
  // Two-character operators first, so ">=" is not read as ">" followed by "=1".
  if (starts(">=")) threshold.op = Op::greater_equal, i += 2;
  else if (starts("<=")) threshold.op = Op::less_equal, i += 2;
  else if (starts("!=")) threshold.op = Op::not_equal, i += 2;
  else if (starts("==")) threshold.op = Op::equal, i += 2;
  else if (starts(">")) threshold.op = Op::greater, i += 1;
  else if (starts("<")) threshold.op = Op::less, i += 1;
  else if (starts("=")) threshold.op = Op::equal, i += 1;
  else return std::nullopt;
  i = text.find_first_not_of(' ', i);
  if (i == std::string::npos) return std::nullopt;
  const auto end = text.find_last_not_of(' ') + 1;
  const auto number = text.substr(i, end - i);
  if (number.empty() || number.size() > 15 || !std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  threshold.value = std::stoll(number);
  return threshold;
}

std::string_view to_string(Builtin builtin) noexcept {
  switch (builtin) {
    case Builtin::stuck_jobs: return "stuck_jobs";
    case Builtin::lost_jobs: return "lost_jobs";
    case Builtin::duplicate_executions: return "duplicate_executions";
    case Builtin::dead_jobs: return "dead_jobs";
    case Builtin::missed_cron_runs: return "missed_cron_runs";
  }
  return "unknown";
}

CheckStatus CheckDefinition::status_for(std::int64_t count) const noexcept {
  // dbt's meaning: error_if is only consulted by default when the severity is error; an
  // explicit error_if always is. warn_if defaults to "any row".
  const Threshold any_row{Threshold::Op::not_equal, 0};
  const std::optional<Threshold> error_threshold = error_if ? error_if : (severity == "error" ? std::optional(any_row) : std::nullopt);
  if (error_threshold && error_threshold->matches(count)) return CheckStatus::fail;
  if (warn_if.value_or(any_row).matches(count)) return CheckStatus::warn;
  return CheckStatus::pass;
}

std::size_t RunReport::count(CheckStatus status) const noexcept {
  return static_cast<std::size_t>(
      std::count_if(results.begin(), results.end(), [&](const CheckResult& result) { return result.status == status; }));
}

int RunReport::exit_code() const noexcept {
  if (count(CheckStatus::error) > 0 || !history_error.empty()) return 3;
  if (count(CheckStatus::fail) > 0) return 2;
  if (count(CheckStatus::warn) > 0) return 1;
  return 0;
}

namespace {

// ---- Rows of the built-in checks ----------------------------------------------------------

const std::vector<std::string> job_row_columns = {"job_id", "job", "state", "attempts", "since", "for", "error"};

std::optional<std::string> optional_text(const std::string& text) {
  return text.empty() ? std::nullopt : std::optional<std::string>(text);
}

/// One flagged job as a row: `since` is the time the rule measures from (last sign of life,
/// enqueue, death).
std::vector<std::optional<std::string>> job_row(const JobRecord& job, Micros since, Micros now) {
  std::string error = job.last_error.error_class;
  if (!job.last_error.message.empty()) error += (error.empty() ? "" : ": ") + job.last_error.message;
  return {job.job_id,
          optional_text(job.job),
          std::string(to_string(job.state)),
          std::to_string(job.attempts),
          view::format_rfc3339_seconds(since),
          view::format_duration(now - since),
          optional_text(error)};
}

QueryRows builtin_rows(const CheckDefinition& check, Store& store, Micros now, std::size_t keep) {
  QueryRows rows;
  rows.columns = job_row_columns;
  JobFindings findings;
  // checks.yaml bounds the window; a Config built in code is clamped the same way.
  const Micros window_start = now - std::clamp<Micros>(check.window, 0, view::longest_duration);
  switch (*check.builtin) {
    case Builtin::stuck_jobs: findings = store.stuck_jobs(check.deadlines, now, keep); break;
    case Builtin::lost_jobs: findings = store.lost_jobs(check.deadlines, now, keep); break;
    case Builtin::duplicate_executions: findings = store.duplicate_executions(window_start, keep); break;
    case Builtin::dead_jobs: findings = store.dead_jobs(window_start, keep); break;
    case Builtin::missed_cron_runs: {
      // Few schedules: the store returns each with its newest run, found by index.
      rows.columns = {"job", "every", "last_run", "due_at", "overdue_by"};
      for (const auto& schedule : store.schedules()) {
        const Micros reference = schedule.last_run_at.value_or(schedule.updated_at);
        const Micros due = reference + schedule.every + schedule.grace;
        if (now <= due) continue;
        rows.count += 1;
        if (rows.rows.size() < keep) {
          rows.rows.push_back({schedule.job, view::format_duration(schedule.every),
                               schedule.last_run_at ? std::optional(view::format_rfc3339_seconds(*schedule.last_run_at)) : std::nullopt,
                               view::format_rfc3339_seconds(due), view::format_duration(now - due)});
        }
      }
      return rows;
    }
  }
  if (check.builtin == Builtin::duplicate_executions) rows.columns.push_back("anomaly");
  rows.count = findings.total;
  for (std::size_t i = 0; i < findings.jobs.size(); ++i) {
    const auto& job = findings.jobs[i];
    Micros since = job.first_event_at;
    switch (*check.builtin) {
      case Builtin::stuck_jobs:
        since = std::max(job.started_at.value_or(job.first_event_at), job.heartbeat_at.value_or(job.first_event_at));
        break;
      case Builtin::lost_jobs: since = job.enqueued_at.value_or(job.first_event_at); break;
      case Builtin::dead_jobs: since = job.last_event_at; break;
      default: since = job.finished_at.value_or(job.last_event_at); break;
    }
    auto row = job_row(job, since, now);
    if (check.builtin == Builtin::duplicate_executions) row.push_back(findings.reasons[i]);
    rows.rows.push_back(std::move(row));
  }
  return rows;
}

/// The columns that identify a failing row across runs. Empty when no key is configured: then
/// the whole row is the key, by column name (see fingerprint).
std::vector<std::size_t> key_columns(const CheckDefinition& check, const QueryRows& rows) {
  std::vector<std::string> wanted = check.key;
  if (check.builtin == Builtin::missed_cron_runs) wanted = {"job"};
  else if (check.builtin == Builtin::duplicate_executions) wanted = {"job_id", "anomaly"};
  else if (check.builtin) wanted = {"job_id"};
  else if (wanted.empty() && !check.entity.empty()) wanted = {check.entity_column};
  std::vector<std::size_t> indexes;
  for (const auto& name : wanted) {
    auto it = std::find(rows.columns.begin(), rows.columns.end(), name);
    if (it == rows.columns.end()) {
      std::string list;
      for (const auto& column : rows.columns) list += (list.empty() ? "" : ", ") + column;
      throw CheckFailure("the column \"" + name + "\" (" + (check.key.empty() ? "entity_column" : "key") +
                         ") is not among the query's columns: " + list);
    }
    indexes.push_back(static_cast<std::size_t>(it - rows.columns.begin()));
  }
  return indexes;
}

/// FNV-1a, each field length-prefixed (and NULL told from ""), so the same row gets the same
/// fingerprint on every run, build and machine.
class Fingerprint {
 public:
  void add(const std::optional<std::string>& field) {
    if (field) {
      add(std::string_view(*field));
      return;
    }
    mix('n');
    for (int byte = 0; byte < 8; ++byte) mix(0);
  }
  void add(std::string_view field) {
    mix('v');
    const std::uint64_t size = field.size();
    for (int shift = 0; shift < 64; shift += 8) mix(static_cast<unsigned char>(size >> shift));
    for (unsigned char c : field) mix(c);
  }
  std::string hex() const {
    static constexpr char digits[] = "0123456789abcdef";
    std::uint64_t hash = hash_;
    std::string text(16, '0');
    for (int i = 15; i >= 0; --i, hash >>= 4) text[static_cast<std::size_t>(i)] = digits[hash & 15];
    return text;
  }

 private:
  void mix(unsigned char byte) {
    hash_ ^= byte;
    hash_ *= 1099511628211ull;
  }
  std::uint64_t hash_ = 14695981039346656037ull;
};

/// An explicit key hashes its values in the key's order (as configured). Without one, every
/// (column name, value) pair is hashed, sorted by name: reordering the SELECT, or a column
/// added behind `SELECT *` being read at a new position, must not make a still-failing row
/// look new (an added column does change the row, as it should).
std::string fingerprint(const std::vector<std::string>& columns, const std::vector<std::optional<std::string>>& row,
                        const std::vector<std::size_t>& key) {
  Fingerprint hash;
  if (!key.empty()) {
    for (auto index : key) hash.add(row[index]);
    return hash.hex();
  }
  std::vector<std::pair<const std::string*, const std::optional<std::string>*>> fields;
  fields.reserve(columns.size());
  for (std::size_t i = 0; i < columns.size(); ++i) fields.emplace_back(&columns[i], &row[i]);
  // Values break ties between equal names, so even duplicate names do not depend on order.
  std::sort(fields.begin(), fields.end(),
            [](const auto& a, const auto& b) { return std::tie(*a.first, *a.second) < std::tie(*b.first, *b.second); });
  for (const auto& [name, value] : fields) {
    hash.add(std::string_view(*name));
    hash.add(*value);
  }
  return hash.hex();
}

std::string row_json(const std::vector<std::string>& columns, const std::vector<std::optional<std::string>>& row) {
  nlohmann::ordered_json object = nlohmann::ordered_json::object();
  for (std::size_t i = 0; i < columns.size(); ++i) {
    object[columns[i]] = row[i] ? nlohmann::ordered_json(*row[i]) : nlohmann::ordered_json(nullptr);
  }
  return object.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

/// The store as a SQL check reaches it: a PostgreSQL URL (to connect to), or a SQLite path
/// (to attach).
struct StoreDatabase {
  std::string postgres_url;
  std::string sqlite_path;
};

StoreDatabase store_database(const Store& store, const RunOptions& options) {
  // location() redacts a PostgreSQL password: connect with the URL the store was opened with.
  if (is_postgres_url(options.store_url)) return {options.store_url, {}};
  auto location = store.location();
  if (is_postgres_url(location)) return {location, {}};
  if (location.rfind("sqlite:", 0) != 0) {
    throw CheckFailure("SQL checks cannot reach a jobtrail store at " + location);
  }
  return {{}, location.substr(7)};
}

/// Runs a SQL check where its database is. The store joins in as `jobtrail` when both are
/// SQLite (attached) or when the application's PostgreSQL database holds the store's schema;
/// an application database of the other kind runs alone.
QueryRows sql_rows(const Config& config, const CheckDefinition& check, const Store& store, const RunOptions& options,
                   std::size_t keep) {
  const auto jobtrail = store_database(store, options);
  if (check.database == "jobtrail") {
    if (!jobtrail.postgres_url.empty()) {
      // The PostgreSQL store keeps its tables and views in the schema `jobtrail`.
      return run_postgres_check(jobtrail.postgres_url, "jobtrail", check.query, check.timeout, keep);
    }
    return run_sql_check(std::string(), jobtrail.sqlite_path, check.query, check.timeout, keep);
  }
  const auto& database = config.databases.at(check.database);
  if (is_postgres_url(database)) return run_postgres_check(database, std::string(), check.query, check.timeout, keep);
  return run_sql_check(database, jobtrail.sqlite_path, check.query, check.timeout, keep);
}

/// Runs one check; fills result and the record for the history.
void run_one(const Config& config, const CheckDefinition& check, Store& store, const RunOptions& options, Micros now,
             CheckResult& result, CheckResultRecord& record) {
  result.check = check;
  result.started_at = now;
  record.check = check.name;
  record.severity = check.severity;
  record.started_at = now;

  std::optional<CheckResultRecord> previous = store.last_check_result(check.name);
  result.compared = previous.has_value();
  std::map<std::string, const CheckViolation*> previously_failing;
  if (previous) {
    for (const auto& violation : previous->failing) previously_failing[violation.fingerprint] = &violation;
  }

  const auto clock_start = std::chrono::steady_clock::now();
  const std::size_t keep = std::max(options.fingerprint_limit, check.samples);
  try {
    QueryRows rows;
    if (check.builtin) {
      rows = builtin_rows(check, store, now, keep);
    } else {
      rows = sql_rows(config, check, store, options, keep);
    }
    const auto key = key_columns(check, rows);
    std::size_t entity_index = 0;
    if (!check.entity.empty()) {
      auto it = std::find(rows.columns.begin(), rows.columns.end(), check.entity_column);
      if (it == rows.columns.end()) {
        throw CheckFailure("the entity column \"" + check.entity_column + "\" is not among the query's columns");
      }
      entity_index = static_cast<std::size_t>(it - rows.columns.begin());
    }
    result.violations = rows.count;
    result.status = check.status_for(rows.count);
    record.fingerprints_complete = rows.count <= static_cast<std::int64_t>(rows.rows.size());

    std::set<std::string> seen;
    for (std::size_t i = 0; i < rows.rows.size(); ++i) {
      const auto& row = rows.rows[i];
      CheckViolation violation;
      violation.fingerprint = fingerprint(rows.columns, row, key);
      if (!seen.insert(violation.fingerprint).second) continue;  // the same row twice counts once
      auto before = previously_failing.find(violation.fingerprint);
      const bool is_new = before == previously_failing.end();
      violation.first_seen_at = is_new ? now : before->second->first_seen_at;
      (is_new ? result.new_violations : result.persisting) += 1;
      if (result.samples.size() < check.samples) {
        violation.sample = row_json(rows.columns, row);
        SampleRow sample;
        for (std::size_t c = 0; c < rows.columns.size(); ++c) sample.columns.emplace_back(rows.columns[c], row[c]);
        sample.fingerprint = violation.fingerprint;
        sample.is_new = is_new;
        sample.failing_since = violation.first_seen_at;
        if (!check.entity.empty() && row[entity_index]) {
          sample.entity = check.entity + ":" + *row[entity_index];
          violation.entity = sample.entity;  // kept, so the console links the row to these jobs
          JobFilter filter;
          filter.entity = sample.entity;
          filter.limit = options.linked_jobs;
          sample.jobs = store.list_jobs(filter);
        }
        result.samples.push_back(std::move(sample));
      }
      record.failing.push_back(std::move(violation));
    }
    // Rows beyond the fingerprint limit are neither new nor old as far as we can tell; only a
    // complete previous and current set can say a row was resolved.
    if (previous && previous->fingerprints_complete && record.fingerprints_complete) {
      for (const auto& violation : previous->failing) {
        if (seen.count(violation.fingerprint)) continue;
        result.resolved += 1;
        if (!violation.sample.empty() && result.resolved_samples.size() < check.samples) {
          result.resolved_samples.push_back(violation.sample);
        }
      }
    }
  } catch (const std::exception& error) {
    // CheckFailure, a StoreError from a built-in check, a bad_alloc: this check is in error,
    // the others still run. Its failing rows are carried over, so a streak survives a
    // transient error and the next run does not call every row new.
    result.status = CheckStatus::error;
    result.error = error.what();
    result.violations = 0;
    result.new_violations = result.persisting = result.resolved = 0;
    result.samples.clear();
    record.failing = previous ? previous->failing : std::vector<CheckViolation>{};
    record.fingerprints_complete = previous ? previous->fingerprints_complete : true;
  }
  result.duration = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - clock_start).count();
  record.status = result.status;
  record.violations = result.violations;
  record.new_violations = result.new_violations;
  record.resolved = result.resolved;
  record.duration = result.duration;
  record.error = result.error;
}

}  // namespace

RunReport run_checks(const Config& config, Store& store, const RunOptions& options) {
  RunReport report;
  report.config_path = config.path;
  const Micros now = options.now ? options.now : now_micros();
  const auto run_clock = std::chrono::steady_clock::now();
  report.started_at = now;
  CheckRunRecord run;
  run.started_at = now;
  std::error_code ignored;
  run.config = std::filesystem::absolute(config.path, ignored).string();
  for (const auto& check : config.checks) {
    if (!options.only.empty() && std::find(options.only.begin(), options.only.end(), check.name) == options.only.end()) {
      continue;
    }
    CheckResult result;
    CheckResultRecord record;
    run_one(config, check, store, options, now, result, record);
    report.results.push_back(std::move(result));
    run.results.push_back(std::move(record));
  }
  const Micros elapsed =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - run_clock).count();
  report.finished_at = now + elapsed;
  run.finished_at = report.finished_at;
  if (options.record_history) {
    try {
      report.run_id = store.record_check_run(run);
    } catch (const std::exception& error) {
      report.history_error = std::string("the run could not be stored in the check history: ") + error.what();
    }
  }
  for (auto& result : report.results) {
    // Only a stored pass counts: an unrecorded one would be forgotten by the next run, and
    // the last-success metric would go back in time.
    if (result.status == CheckStatus::pass && report.run_id != 0) {
      result.last_success = result.started_at;
      continue;
    }
    try {
      result.last_success = store.last_check_success(result.check.name);
    } catch (const std::exception&) {
      // Already reported as the history error, or the store vanished: no timestamp then.
    }
  }
  return report;
}

}  // namespace jobtrail::check
