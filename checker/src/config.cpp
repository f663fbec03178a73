// Reading checks.yaml: every mistake is reported with its file and line before anything runs.

#include <libpq-fe.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "jobtrail/view/time_format.h"
#include "jobtrail/checker.h"
#include "jobtrail/drivers/pg_connection.h"
#include "sql_check.h"

namespace jobtrail::check {

namespace {

namespace fs = std::filesystem;

/// Reads one YAML document with the file name and line at hand for every message.
/// Stateless apart from the file name; thread-safe.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& problem) const {
    throw ConfigError(file_, node.Mark().line + 1, problem);
  }

  void expect_map(const YAML::Node& node, const std::string& what) const {
    if (!node.IsMap()) fail(node, what + " must be a mapping of keys to values");
  }

  /// Refuses keys outside `known`, naming them: a typo ("severty") must not pass silently.
  void only_keys(const YAML::Node& map, const std::vector<std::string>& known, const std::string& where) const {
    for (const auto& entry : map) {
      const auto key = entry.first.Scalar();
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string list;
        for (const auto& name : known) list += (list.empty() ? "" : ", ") + name;
        fail(entry.first, "unknown key \"" + key + "\" in " + where + " (known: " + list + ")");
      }
    }
  }

  std::string text(const YAML::Node& node, const std::string& key) const {
    if (!node.IsScalar()) fail(node, "\"" + key + "\" must be a single value");
    return node.Scalar();
  }

  std::int64_t integer(const YAML::Node& node, const std::string& key, std::int64_t min, std::int64_t max) const {
    const auto value = text(node, key);
    std::int64_t number = 0;
    std::size_t used = 0;
    try {
      number = std::stoll(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != value.size() || number < min || number > max) {
      fail(node, "\"" + key + "\" must be a whole number from " + std::to_string(min) + " to " +
                     std::to_string(max) + " (got \"" + value + "\")");
    }
    return number;
  }

  /// A positive duration of at most `longest` (`longest_text` says it in the message).
  Micros duration(const YAML::Node& node, const std::string& key, Micros longest = view::longest_duration,
                  const char* longest_text = "366000d (1000 years)") const {
    const auto value = text(node, key);
    bool too_long = false;
    auto parsed = view::parse_duration(value, &too_long);
    if (too_long || (parsed && *parsed > longest)) {
      fail(node, "\"" + key + "\" must be at most " + longest_text + " (got \"" + value + "\")");
    }
    if (!parsed || *parsed <= 0) {
      fail(node, "\"" + key + "\" must be a positive duration such as 30s, 15m, 2h or 7d (got \"" + value + "\")");
    }
    return *parsed;
  }

  Threshold threshold(const YAML::Node& node, const std::string& key) const {
    const auto value = text(node, key);
    auto parsed = Threshold::parse(value);
    if (!parsed) {
      fail(node, "\"" + key + "\" must compare the row count with a number, such as \"> 10\", \">= 1\" or "
                 "\"!= 0\" (got \"" + value + "\"; quote it in YAML)");
    }
    return *parsed;
  }

  std::string severity(const YAML::Node& node) const {
    const auto value = text(node, "severity");
    if (value != "warn" && value != "error") fail(node, "\"severity\" must be warn or error (got \"" + value + "\")");
    return value;
  }

 private:
  std::string file_;
};

bool is_valid_name(const std::string& name) {
  if (name.empty() || name.size() > 100) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
  });
}

struct Defaults {
  std::size_t samples = 5;
  Micros timeout = 30'000'000;
};

/// The settings every check shares: severity, thresholds, samples, timeout (SQL checks only),
/// words for people.
void read_common(const Reader& reader, const YAML::Node& map, CheckDefinition& check) {
  if (auto node = map["description"]) check.description = reader.text(node, "description");
  if (auto node = map["runbook"]) check.runbook = reader.text(node, "runbook");
  if (auto node = map["severity"]) check.severity = reader.severity(node);
  if (auto node = map["warn_if"]) check.warn_if = reader.threshold(node, "warn_if");
  if (auto node = map["error_if"]) check.error_if = reader.threshold(node, "error_if");
  if (auto node = map["samples"]) check.samples = static_cast<std::size_t>(reader.integer(node, "samples", 0, 1000));
  if (auto node = map["timeout"]) check.timeout = reader.duration(node, "timeout", longest_timeout, "24h");
}

const std::vector<std::string> common_keys = {"description", "runbook", "severity", "warn_if",
                                              "error_if", "samples", "timeout"};

std::vector<std::string> with_common(std::vector<std::string> keys) {
  keys.insert(keys.end(), common_keys.begin(), common_keys.end());
  return keys;
}

CheckDefinition builtin_defaults(Builtin builtin, const Defaults& defaults) {
  CheckDefinition check;
  check.builtin = builtin;
  check.name = std::string(to_string(builtin));
  check.samples = defaults.samples;
  check.timeout = defaults.timeout;
  constexpr Micros minute = 60'000'000;
  switch (builtin) {
    case Builtin::stuck_jobs:
      check.description = "Jobs started but with neither an end nor a heartbeat within their deadline";
      check.deadlines.deadline = 60 * minute;
      break;
    case Builtin::lost_jobs:
      check.description = "Jobs enqueued but not started within their deadline";
      check.deadlines.deadline = 30 * minute;
      break;
    case Builtin::duplicate_executions:
      check.description = "Jobs that succeeded twice, or under an idempotency key another job already used";
      check.window = 7 * 24 * 60 * minute;
      break;
    case Builtin::dead_jobs:
      check.description = "Jobs that gave up for good";
      check.severity = "warn";
      check.window = 24 * 60 * minute;
      break;
    case Builtin::missed_cron_runs:
      check.description = "Jobs registered with `jobtrail exec --every` whose run is overdue";
      break;
  }
  return check;
}

void read_builtin(const Reader& reader, const YAML::Node& node, CheckDefinition& check) {
  if (node.IsNull()) return;  // "stuck_jobs:" alone: the defaults
  if (node.IsScalar()) {
    reader.fail(node, "built-in check \"" + check.name + "\" takes a mapping of settings, {} for the defaults, "
                      "or false to turn it off");
  }
  reader.expect_map(node, "built-in check \"" + check.name + "\"");
  std::vector<std::string> keys = {};
  const bool has_deadline = check.builtin == Builtin::stuck_jobs || check.builtin == Builtin::lost_jobs;
  const bool has_window = check.builtin == Builtin::dead_jobs || check.builtin == Builtin::duplicate_executions;
  if (has_deadline) keys = {"deadline", "per_job"};
  if (has_window) keys = {"window"};
  // The built-in checks are index lookups in the store, which cannot be interrupted: a
  // timeout here would be a promise nobody keeps.
  if (auto timeout = node["timeout"]) {
    reader.fail(timeout, "built-in check \"" + check.name + "\" takes no \"timeout\": it is answered from an index "
                         "of the store; \"timeout\" is for SQL checks");
  }
  keys = with_common(keys);
  keys.erase(std::remove(keys.begin(), keys.end(), "timeout"), keys.end());
  reader.only_keys(node, keys, "built-in check \"" + check.name + "\"");
  read_common(reader, node, check);
  if (has_deadline) {
    if (auto deadline = node["deadline"]) check.deadlines.deadline = reader.duration(deadline, "deadline");
    if (auto per_job = node["per_job"]) {
      reader.expect_map(per_job, "\"per_job\" (job class: deadline)");
      for (const auto& entry : per_job) {
        check.deadlines.per_class.emplace_back(entry.first.Scalar(),
                                               reader.duration(entry.second, "deadline of " + entry.first.Scalar()));
      }
    }
  }
  if (has_window) {
    if (auto window = node["window"]) check.window = reader.duration(window, "window");
  }
}

CheckDefinition read_check(const Reader& reader, const YAML::Node& node, const Defaults& defaults,
                           const std::map<std::string, std::string>& databases) {
  reader.expect_map(node, "each entry of \"checks\"");
  reader.only_keys(node, with_common({"name", "database", "query", "entity", "entity_column", "key"}), "a check");
  CheckDefinition check;
  check.line = node.Mark().line + 1;
  check.samples = defaults.samples;
  check.timeout = defaults.timeout;
  auto name = node["name"];
  if (!name) reader.fail(node, "a check needs a \"name\"");
  check.name = reader.text(name, "name");
  if (!is_valid_name(check.name)) {
    reader.fail(name, "check name \"" + check.name + "\" must be 1 to 100 of A-Z a-z 0-9 _ . - (it becomes a metric label)");
  }
  const std::string where = "check \"" + check.name + "\"";
  auto database = node["database"];
  if (!database) reader.fail(node, where + " needs a \"database\" (one of \"databases\", or jobtrail)");
  check.database = reader.text(database, "database");
  if (check.database != "jobtrail" && databases.count(check.database) == 0) {
    std::string known = "jobtrail";
    for (const auto& [db_name, path] : databases) known += ", " + db_name;
    reader.fail(database, where + " names the database \"" + check.database + "\", which \"databases\" does not "
                          "define (known: " + known + ")");
  }
  auto query = node["query"];
  if (!query) reader.fail(node, where + " needs a \"query\" returning the rows that must not exist");
  check.query = reader.text(query, "query");
  if (check.query.find_first_not_of(" \t\r\n;") == std::string::npos) reader.fail(query, where + " has an empty query");
  read_common(reader, node, check);
  if (auto entity = node["entity"]) {
    check.entity = reader.text(entity, "entity");
    if (!is_valid_entity(check.entity + ":x")) {
      reader.fail(entity, "\"entity\" must be an entity type of a-z 0-9 _ . - such as user (got \"" + check.entity + "\")");
    }
  }
  if (auto column = node["entity_column"]) {
    if (check.entity.empty()) reader.fail(column, "\"entity_column\" needs \"entity\" (the entity type) too");
    check.entity_column = reader.text(column, "entity_column");
  }
  if (auto key = node["key"]) {
    if (key.IsScalar()) {
      check.key.push_back(key.Scalar());
    } else if (key.IsSequence() && key.size() > 0) {
      for (const auto& column : key) check.key.push_back(reader.text(column, "key"));
    } else {
      reader.fail(key, "\"key\" must be a column name or a list of column names");
    }
  }
  return check;
}

std::string resolve_path(const std::string& value, const fs::path& base) {
  std::string path = value.rfind("sqlite:", 0) == 0 ? value.substr(7) : value;
  if (path.rfind("//", 0) == 0) path = path.substr(2);
  fs::path resolved(path);
  if (resolved.is_relative()) resolved = base / resolved;
  return resolved.lexically_normal().string();
}

}  // namespace

ConfigError::ConfigError(const std::string& file, int line, const std::string& problem)
    : std::runtime_error(line > 0 ? file + ":" + std::to_string(line) + ": " + problem : file + ": " + problem),
      file_(file),
      line_(line) {}

Config parse_config(const std::string& text, const std::string& path) {
  Reader reader(path);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& error) {
    throw ConfigError(path, error.mark.line + 1, "not valid YAML: " + error.msg);
  }
  if (!root.IsMap()) throw ConfigError(path, root.IsDefined() ? root.Mark().line + 1 : 1,
                                       "a checks file is a mapping with \"checks\" (and optionally \"databases\", "
                                       "\"store\", \"defaults\", \"builtin\")");
  reader.only_keys(root, {"store", "databases", "defaults", "builtin", "checks"}, "the checks file");

  Config config;
  config.path = path;
  const fs::path base = fs::absolute(fs::path(path)).parent_path();
  if (auto store = root["store"]) {
    config.store = reader.text(store, "store");
    // A relative SQLite store is relative to the config file too, like the databases.
    if (config.store.find("://") == std::string::npos) config.store = "sqlite:" + resolve_path(config.store, base);
  }
  if (auto databases = root["databases"]) {
    reader.expect_map(databases, "\"databases\" (name: SQLite path or postgresql:// URL)");
    for (const auto& entry : databases) {
      const auto name = entry.first.Scalar();
      if (name == "jobtrail") reader.fail(entry.first, "\"jobtrail\" is the store's own name; pick another name for this database");
      if (!is_valid_name(name)) reader.fail(entry.first, "database name \"" + name + "\" must be of A-Z a-z 0-9 _ . -");
      const auto value = reader.text(entry.second, "database " + name);
      if (value.rfind("postgresql:", 0) == 0 || value.rfind("postgres:", 0) == 0) {
        // Kept as written: a URL is not a path to resolve. A malformed one is reported here,
        // with its line, rather than as a check that cannot connect tonight.
        if (value.find("://") == std::string::npos) {
          reader.fail(entry.second, "database " + name + ": a PostgreSQL database is a URL such as "
                                    "postgresql://USER@HOST:5432/DBNAME (got \"" + pg::redact(value) + "\")");
        }
        char* problem = nullptr;
        PQconninfoOption* options = PQconninfoParse(value.c_str(), &problem);
        if (!options) {
          std::string why = problem ? problem : "out of memory";
          PQfreemem(problem);
          while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
          reader.fail(entry.second, "database " + name + ": not a valid PostgreSQL URL (" + pg::redact(value) + "): " + why);
        }
        PQconninfoFree(options);
        config.databases[name] = value;
        continue;
      }
      for (const char* keyword : {"host=", "hostaddr=", "dbname=", "user=", "service="}) {
        if (value.rfind(keyword, 0) == 0) {
          reader.fail(entry.second, "database " + name + ": write a PostgreSQL database as a URL, such as "
                                    "postgresql://USER@HOST:5432/DBNAME, not as key=value settings");
        }
      }
      config.databases[name] = resolve_path(value, base);
    }
  }
  Defaults defaults;
  if (auto node = root["defaults"]) {
    reader.expect_map(node, "\"defaults\"");
    reader.only_keys(node, {"samples", "timeout"}, "\"defaults\"");
    if (auto samples = node["samples"]) defaults.samples = static_cast<std::size_t>(reader.integer(samples, "samples", 0, 1000));
    if (auto timeout = node["timeout"]) defaults.timeout = reader.duration(timeout, "timeout", longest_timeout, "24h");
  }

  std::set<std::string> names;
  if (auto checks = root["checks"]) {
    if (!checks.IsSequence()) reader.fail(checks, "\"checks\" must be a list of checks (each entry starts with \"- name:\")");
    for (const auto& node : checks) {
      auto check = read_check(reader, node, defaults, config.databases);
      if (!names.insert(check.name).second) reader.fail(node, "two checks are named \"" + check.name + "\"");
      config.checks.push_back(std::move(check));
    }
  }

  // Built-in checks run unless turned off: the job history is checked without being asked.
  const auto builtin = root["builtin"];
  if (builtin && builtin.IsScalar() && (builtin.Scalar() == "false" || builtin.Scalar() == "off")) return config;
  if (builtin && !builtin.IsNull()) {
    reader.expect_map(builtin, "\"builtin\" (or false to turn every built-in check off)");
    reader.only_keys(builtin, {"stuck_jobs", "lost_jobs", "duplicate_executions", "dead_jobs", "missed_cron_runs"},
                     "\"builtin\"");
  }
  for (auto kind : {Builtin::stuck_jobs, Builtin::lost_jobs, Builtin::duplicate_executions, Builtin::dead_jobs,
                    Builtin::missed_cron_runs}) {
    auto check = builtin_defaults(kind, defaults);
    YAML::Node settings = builtin && builtin.IsMap() ? builtin[check.name] : YAML::Node();
    if (settings) {
      check.line = settings.Mark().line + 1;
      if (settings.IsScalar() && (settings.Scalar() == "false" || settings.Scalar() == "off")) continue;
      read_builtin(reader, settings, check);
    }
    for (const auto& other : config.checks) {
      if (other.name == check.name) {
        throw ConfigError(path, other.line, "the check \"" + check.name + "\" has the name of a built-in check; rename it");
      }
    }
    config.checks.push_back(std::move(check));
  }
  return config;
}

Config load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path, 0, "cannot read the checks file (" + std::string(std::strerror(errno)) + ")");
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

}  // namespace jobtrail::check
