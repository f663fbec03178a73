#include "sqlite/sqlite_store.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <limits>
#include <thread>

#include "entity_impact.h"
#include "job_stats.h"
#include "record_columns.h"
#include "sqlite/sqlite_check_queries.h"
#include "sqlite/sqlite_schema.h"
#include "store_rules.h"

namespace jobtrail {

using sqlite::Statement;

namespace {

// Cached job rows beyond this are dropped wholesale: simple, and the cache refills from the
// jobs that are active now.
constexpr std::size_t max_cached_jobs = 200000;

// IDs written in lowercase hex (Sidekiq job IDs, W3C trace IDs, UUIDs without dashes) are
// stored as blobs of half the size; every other ID as text. Readers get the text back.
bool is_compact_hex(std::string_view id) noexcept {
  if (id.empty() || id.size() % 2 != 0) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Statement& bind_id(Statement& statement, int index, std::string_view id) {
  if (!is_compact_hex(id)) return statement.bind(index, id);
  std::string bytes(id.size() / 2, '\0');
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<char>(nibble(id[2 * i]) << 4 | nibble(id[2 * i + 1]));
  }
  return statement.bind_blob(index, bytes);
}

Statement& bind_text_or_id(Statement& statement, int index, std::string_view text, bool compact) {
  return compact ? bind_id(statement, index, text) : statement.bind(index, text);
}

std::string read_id(const Statement& statement, int column) {
  if (!statement.is_blob(column)) return statement.text(column);
  static constexpr char digits[] = "0123456789abcdef";
  auto bytes = statement.blob(column);
  std::string id;
  id.reserve(bytes.size() * 2);
  for (unsigned char byte : bytes) {
    id += digits[byte >> 4];
    id += digits[byte & 15];
  }
  return id;
}

/// A result row as the decoders of record_columns.h read it. Times are stored relative to the
/// store's epoch, and a job's other times relative to its first_at: the queries add first_at.
struct Row {
  const Statement& q;
  Micros epoch;
  std::string text(int column) const { return q.text(column); }
  std::string id(int column) const { return read_id(q, column); }
  std::int64_t integer(int column) const { return q.integer(column); }
  std::optional<std::int64_t> optional_integer(int column) const { return q.optional_integer(column); }
  Micros time(int column) const { return q.integer(column) + epoch; }
  std::optional<Micros> optional_time(int column) const {
    const auto value = q.optional_integer(column);
    return value ? std::optional<Micros>(*value + epoch) : std::nullopt;
  }
  bool boolean(int column) const { return q.integer(column) != 0; }
};

/// Every row `q` steps to, decoded.
template <typename Decode>
auto decode_rows(Statement& q, Micros epoch, Decode decode) {
  std::vector<decltype(decode(Row{q, epoch}))> records;
  while (q.step()) records.push_back(decode(Row{q, epoch}));
  return records;
}

// The columns every job query returns, in the order of detail::read_job_record, then the job's
// entity tags (column 21), and their tables. The tags come joined by NUL, which no tag holds
// (an event's texts are UTF-8 without NUL): in the same statement, a look-up does not prepare
// a second one for them.
constexpr int entities_column = 21;
constexpr std::string_view job_select = R"SQL(
  j.job_id, c.text, q.text, co.text, j.parent_job_id, j.idempotency_key, j.state,
  j.first_at + j.enqueued_at, j.first_at + j.started_at, j.first_at + j.finished_at,
  j.first_at + j.heartbeat_at, j.first_at, j.first_at + j.last_at,
  j.attempts, j.events, w.text, e.class, e.message, e.backtrace, j.anomalies, j.id,
  (SELECT group_concat(en.name, char(0)) FROM job_entity t JOIN entity en ON en.id = t.entity WHERE t.job = j.id))SQL";
constexpr std::string_view job_from = R"SQL(
FROM job j
LEFT JOIN label c ON c.id = j.job
LEFT JOIN label q ON q.id = j.queue
LEFT JOIN label w ON w.id = j.worker
LEFT JOIN correlation co ON co.id = j.correlation
LEFT JOIN error e ON e.id = j.last_error
)SQL";
const std::string job_columns = std::string(job_select) + std::string(job_from);

}  // namespace

/// Prepared once per connection: the hot statements of append and the look-ups.
struct SqliteStore::Statements {
  explicit Statements(sqlite3* db)
      : data_version(db, "PRAGMA data_version"),
        max_job_id(db, "SELECT coalesce(max(id), 0) FROM job"),
        // detail::read_job_row's columns, then the names for the caches.
        load_job(db, R"SQL(
          SELECT j.id, j.job, j.queue, j.parent_job_id, j.idempotency_key, j.state,
                 j.first_at + j.enqueued_at, j.first_at + j.started_at, j.first_at + j.finished_at,
                 j.first_at + j.heartbeat_at, j.first_at, j.first_at + j.last_at, j.attempts,
                 j.events, j.successes, j.worker, j.last_error, j.tail_state, j.tail_attempt,
                 j.first_at + coalesce(j.tail_at, j.last_at), j.anomalies,
                 c.text, q.text, co.text, j.correlation
          FROM job j LEFT JOIN label c ON c.id = j.job LEFT JOIN label q ON q.id = j.queue
          LEFT JOIN correlation co ON co.id = j.correlation
          WHERE j.job_id = ?1)SQL"),
        insert_job(db, R"SQL(
          INSERT INTO job (id, job, queue, correlation, parent_job_id, idempotency_key,
                           state, enqueued_at, started_at, finished_at, heartbeat_at,
                           first_at, last_at, attempts, events, successes, worker, last_error,
                           tail_state, tail_attempt, tail_at, anomalies, job_id, changed)
          VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                  ?18, ?19, ?20, ?21, ?22, ?23, ?24))SQL"),
        update_job(db, R"SQL(
          UPDATE job SET job = ?2, queue = ?3, correlation = ?4, parent_job_id = ?5,
                 idempotency_key = ?6, state = ?7, enqueued_at = ?8, started_at = ?9,
                 finished_at = ?10, heartbeat_at = ?11, first_at = ?12, last_at = ?13,
                 attempts = ?14, events = ?15, successes = ?16, worker = ?17, last_error = ?18,
                 tail_state = ?19, tail_attempt = ?20, tail_at = ?21, anomalies = ?22,
                 changed = coalesce(?24, changed)
          WHERE id = ?1)SQL"),
        insert_event(db, "INSERT INTO event (job, seq, state, at, attempt, worker, error) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        find_event(db, "SELECT 1 FROM event WHERE job = ?1 AND state = ?2 AND attempt = ?3 AND at = ?4"),
        find_event_any_attempt(db, "SELECT 1 FROM event WHERE job = ?1 AND state = ?2 AND at = ?3"),
        events_for_refold(db, "SELECT state, attempt, at, seq, error FROM event WHERE job = ?1"),
        insert_error(db, "INSERT INTO error (class, message, backtrace) VALUES (?1, ?2, ?3)"),
        tag_job(db, "INSERT OR IGNORE INTO job_entity (entity, job) VALUES (?1, ?2)"),
        insert_anomaly(db, "INSERT INTO anomaly (job, kind, other_job, detail, at) VALUES (?1, ?2, ?3, ?4, ?5)"),
        find_success_by_key(db, "SELECT id FROM job WHERE idempotency_key = ?1 AND successes > 0 "
                                "AND id != ?2 LIMIT 1"),
        flag_job(db, "UPDATE job SET anomalies = anomalies | ?2, changed = ?3 WHERE id = ?1"),
        next_change(db, "UPDATE meta SET value = value + 1 WHERE key = 'change_seq' RETURNING value"),
        add_to_tally(db, "INSERT INTO job_tally (bucket, job, state, jobs) VALUES (?1, ?2, ?3, ?4) "
                         "ON CONFLICT (bucket, job, state) DO UPDATE SET jobs = jobs + excluded.jobs"),
        drop_empty_tally(db, "DELETE FROM job_tally WHERE bucket = ?1 AND job = ?2 AND state = ?3 AND jobs = 0") {}

  Statement data_version, max_job_id, load_job, insert_job, update_job, insert_event, find_event, find_event_any_attempt,
      events_for_refold, insert_error, tag_job,
      insert_anomaly, find_success_by_key, flag_job, next_change, add_to_tally, drop_empty_tally;
};

SqliteStore::SqliteStore(const std::string& path, const OpenOptions& options, bool sync_full)
    : path_(path), options_(options) {
  namespace fs = std::filesystem;
  std::error_code ignored;
  bool exists = path == ":memory:" || fs::exists(path, ignored);
  if (!exists && (options.read_only || !options.create)) {
    throw StoreError(StoreError::Kind::not_found, "no jobtrail store at " + path);
  }
  if (!exists) {
    // SQLite's own word for a missing directory is "unable to open database file".
    const fs::path parent = fs::path(path).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ignored)) {
      throw StoreError(StoreError::Kind::cannot_open, "cannot create a store at " + path + ": the directory " +
                                                          parent.string() + " does not exist");
    }
  }
  if (exists && fs::is_directory(path, ignored)) {
    throw StoreError(StoreError::Kind::cannot_open, path + " is a directory, not a jobtrail store");
  }
  int flags = options.read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  db_ = std::make_unique<sqlite::Connection>(path, flags, options.busy_timeout_ms);
  try {
    if (options.read_only) {
      sqlite::check_readable(*db_, path);
    } else {
      // WAL lets readers (the CLI) run while workers write. Switching a new file to WAL takes
      // an exclusive lock that the busy handler does not wait for, so processes creating the
      // store at once retry here, within the busy timeout.
      // Identify the file first: another application's database must be left as it was,
      // not switched to WAL and then refused.
      sqlite::check_identity(*db_, path);
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(options.busy_timeout_ms);
      for (;;) {
        try {
          db_->execute("PRAGMA journal_mode = WAL");
          break;
        } catch (const StoreError& error) {
          if (error.kind() != StoreError::Kind::busy || std::chrono::steady_clock::now() > give_up) throw;
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      }
      // NORMAL survives a process crash at every commit, and a power loss up to the last
      // checkpoint; FULL (sqlite:PATH?sync=full) survives a power loss at every commit.
      db_->execute(sync_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
      // Index pages that batch after batch rewrite are copied back to the database once per
      // checkpoint: checkpointing every 10,000 pages instead of 1,000 saved a third of the
      // write time in tracker_bench.
      db_->execute("PRAGMA wal_autocheckpoint = 10000");
      sqlite::migrate(*db_, path);
    }
    epoch_ = sqlite::read_epoch(*db_);
    // The writer's statements name the newest schema's columns; a reader of an older store
    // (read as it is, never migrated) must not prepare them.
    if (!options.read_only) statements_ = std::make_unique<Statements>(db_->handle());
    auto* handle = db_->handle();
    labels_ = {Statement(handle, "SELECT id FROM label WHERE text = ?1"),
               Statement(handle, "INSERT INTO label (text) VALUES (?1)"), {}};
    entities_ = {Statement(handle, "SELECT id FROM entity WHERE name = ?1"),
                 Statement(handle, "INSERT INTO entity (name) VALUES (?1)"), {}};
    correlations_ = {Statement(handle, "SELECT id FROM correlation WHERE text = ?1"),
                     Statement(handle, "INSERT INTO correlation (text) VALUES (?1)"), {}, true};
  } catch (const StoreError& error) {
    if (error.kind() == StoreError::Kind::not_a_store || error.kind() == StoreError::Kind::schema_too_new) throw;
    throw StoreError(error.kind(), "cannot open store " + path + ": " + error.what());
  }
}

SqliteStore::~SqliteStore() = default;

std::string SqliteStore::location() const { return "sqlite:" + path_; }

int SqliteStore::schema_version() { return static_cast<int>(db_->query_integer("PRAGMA user_version")); }

void SqliteStore::forget_cache() noexcept {
  jobs_.clear();
  labels_.ids.clear();
  entities_.ids.clear();
  correlations_.ids.clear();
  data_version_ = -1;
}

void SqliteStore::sync_cache_with_database() {
  auto& s = *statements_;
  std::int64_t version = s.data_version.reset().first_integer().value_or(-1);
  if (version != data_version_ || jobs_.size() > max_cached_jobs) {
    // Another connection wrote since our last append (or the cache grew too big).
    forget_cache();
    data_version_ = version;
    next_job_id_ = s.max_job_id.reset().first_integer().value_or(0) + 1;
  }
}

std::int64_t SqliteStore::intern(Dictionary& dictionary, const std::string& text) {
  if (text.empty()) return 0;
  if (auto it = dictionary.ids.find(text); it != dictionary.ids.end()) return it->second;
  std::int64_t id;
  if (auto found = bind_text_or_id(dictionary.find.reset(), 1, text, dictionary.compact_ids).first_integer()) {
    id = *found;
  } else {
    bind_text_or_id(dictionary.insert.reset(), 1, text, dictionary.compact_ids).run();
    id = db_->last_insert_rowid();
  }
  // Names of jobs and queues are few; entities and correlation IDs grow without end.
  if (dictionary.ids.size() >= max_cached_jobs) dictionary.ids.clear();
  dictionary.ids.emplace(text, id);
  return id;
}

detail::JobRow& SqliteStore::job_row(const std::string& job_id) {
  if (auto it = jobs_.find(job_id); it != jobs_.end()) return it->second;
  detail::JobRow row;
  row.job_id = job_id;
  auto& q = statements_->load_job;
  bind_id(q.reset(), 1, job_id);
  if (q.step()) {
    detail::read_job_row(Row{q, epoch_}, row);
    if (!q.is_null(21)) labels_.ids.emplace(q.text(21), row.job);
    if (!q.is_null(22)) labels_.ids.emplace(q.text(22), row.queue);
    if (!q.is_null(23)) {
      row.correlation_id = read_id(q, 23);
      row.correlation = q.integer(24);
      correlations_.ids.emplace(row.correlation_id, row.correlation);
    }
    q.reset();
  } else {
    row.id = next_job_id_++;
  }
  return jobs_.emplace(job_id, std::move(row)).first->second;
}

/// The store's answers to the planner, inside the append's write transaction: SQLite reads
/// its own uncommitted rows, so what earlier batches wrote is seen.
class SqliteStore::History final : public detail::BatchHistory {
 public:
  explicit History(SqliteStore& store) : store_(store) {}

  detail::JobRow& row(const std::string& job_id) override { return store_.job_row(job_id); }
  std::int64_t label_id(const std::string& text) override { return store_.intern(store_.labels_, text); }

  bool has_event(const detail::JobRow& row, State state, std::optional<std::int32_t> attempt, Micros at) override {
    auto& s = *store_.statements_;
    const Micros stored_at = at - store_.epoch_;
    if (!attempt) {
      return s.find_event_any_attempt.reset()
          .bind(1, row.id)
          .bind(2, static_cast<std::int64_t>(state))
          .bind(3, stored_at)
          .first_integer()
          .has_value();
    }
    return s.find_event.reset()
        .bind(1, row.id)
        .bind(2, static_cast<std::int64_t>(state))
        .bind(3, std::int64_t{*attempt})
        .bind(4, stored_at)
        .first_integer()
        .has_value();
  }

  std::int64_t success_under_key(const std::string& key, std::int64_t except_id) override {
    return store_.statements_->find_success_by_key.reset().bind(1, key).bind(2, except_id).first_integer().value_or(0);
  }

  std::vector<detail::StoredEvent> stored_events(const detail::JobRow& row) override {
    std::vector<detail::StoredEvent> events;
    auto& q = store_.statements_->events_for_refold;
    q.reset().bind(1, row.id);
    while (q.step()) {
      auto error = q.optional_integer(4);
      events.push_back({static_cast<State>(q.integer(0)), static_cast<std::int32_t>(q.integer(1)),
                        q.integer(2) + store_.epoch_, static_cast<std::int32_t>(q.integer(3)), error});
    }
    return events;
  }

 private:
  SqliteStore& store_;
};

void SqliteStore::land(detail::BatchPlan& plan) {
  auto& s = *statements_;
  // One number for every row this append writes: inside the write transaction, so numbers
  // grow in commit order and a follower past one has seen everything written before it.
  // A row whose write is not noticeable() (heartbeats only) keeps its number.
  const bool noticed = !plan.flag_others.empty() ||
                       std::any_of(plan.jobs.begin(), plan.jobs.end(), [](const auto& job) { return job.noticeable(); });
  if (noticed) change_ = s.next_change.reset().first_integer().value_or(0);
  for (auto& job : plan.jobs) {
    auto& row = *job.row;
    if (!job.changed()) continue;
    std::optional<std::int64_t> last_error = row.last_error_stored;
    for (std::size_t i = 0; i < job.pending.size(); ++i) {
      const auto& event = job.pending[i];
      std::int64_t error = 0;
      if (event.error) {
        s.insert_error.reset()
            .bind(1, event.error->error_class)
            .bind(2, event.error->message)
            .bind(3, event.error->backtrace)
            .run();
        error = db_->last_insert_rowid();
        if (row.last_error_pending == i) last_error = error;
      }
      s.insert_event.reset()
          .bind(1, row.id)
          .bind(2, std::int64_t{event.seq})
          .bind(3, static_cast<std::int64_t>(event.state))
          .bind(4, event.at - epoch_)
          .bind(5, std::int64_t{event.attempt})
          .bind(6, event.worker ? std::optional<std::int64_t>(event.worker) : std::nullopt)
          .bind(7, error ? std::optional<std::int64_t>(error) : std::nullopt)
          .run();
    }
    for (const auto& entity : job.entities) {
      s.tag_job.reset().bind(1, intern(entities_, *entity)).bind(2, row.id).run();
    }
    row.last_error_stored = last_error;
    row.last_error_pending.reset();
    if (row.correlation == 0) row.correlation = intern(correlations_, row.correlation_id);
    write_row(row, job.noticeable());
    row.stored = true;
    row.anomalies_stored = row.anomalies;
  }
  for (const auto& anomaly : plan.anomalies) {
    s.insert_anomaly.reset()
        .bind(1, anomaly.job)
        .bind(2, static_cast<std::int64_t>(anomaly.kind))
        .bind(3, anomaly.other_job ? std::optional<std::int64_t>(anomaly.other_job) : std::nullopt)
        .bind(4, anomaly.detail)
        .bind(5, anomaly.at - epoch_)
        .run();
  }
  change_tally(plan.tally);
  const auto bit = std::int64_t{detail::anomaly_bit(AnomalyKind::duplicate_idempotency_key)};
  for (auto other : plan.flag_others) {
    s.flag_job.reset().bind(1, other).bind(2, bit).bind(3, change_).run();
    for (auto& [id, cached] : jobs_) {
      if (cached.id == other) cached.anomalies = cached.anomalies_stored = cached.anomalies | bit;
    }
  }
}

void SqliteStore::change_tally(const std::vector<detail::TallyChange>& changes) {
  auto& s = *statements_;
  for (const auto& change : changes) {
    const Micros bucket = change.bucket - epoch_;
    const auto state = static_cast<std::int64_t>(change.state);
    s.add_to_tally.reset().bind(1, bucket).bind(2, change.job).bind(3, state).bind(4, change.delta).run();
    if (change.delta < 0) s.drop_empty_tally.reset().bind(1, bucket).bind(2, change.job).bind(3, state).run();
  }
}

void SqliteStore::write_row(const detail::JobRow& row, bool noticeable) {
  auto& s = *statements_;
  auto& q = row.stored ? s.update_job : s.insert_job;
  const auto& life = row.life;
  // Times other than the first are stored relative to it: small numbers, 2 to 4 bytes.
  auto stored = [&](std::optional<Micros> value) {
    return value ? std::optional<std::int64_t>(*value - life.first_event_at) : std::nullopt;
  };
  auto id_or_null = [](std::int64_t id) { return id ? std::optional<std::int64_t>(id) : std::nullopt; };
  q.reset()
      .bind(1, row.id)
      .bind(2, id_or_null(row.job))
      .bind(3, id_or_null(row.queue))
      .bind(4, id_or_null(row.correlation))
      .bind(5, std::nullopt)
      .bind(6, row.idempotency_key)
      .bind(7, static_cast<std::int64_t>(life.state))
      .bind(8, stored(life.enqueued_at))
      .bind(9, stored(life.started_at))
      .bind(10, stored(life.finished_at))
      .bind(11, stored(life.heartbeat_at))
      .bind(12, life.first_event_at - epoch_)
      .bind(13, life.last_event_at - life.first_event_at)
      .bind(14, std::int64_t{life.attempts})
      .bind(15, std::int64_t{life.event_count})
      .bind(16, std::int64_t{life.successes})
      .bind(17, id_or_null(row.worker))
      .bind(18, row.last_error_stored)
      .bind(19, std::int64_t{life.tail.state})
      .bind(20, std::int64_t{life.tail.attempt})
      .bind(21, life.tail.at == life.last_event_at ? std::nullopt
                                                   : std::optional<std::int64_t>(life.tail.at - life.first_event_at))
      .bind(22, std::int64_t{row.anomalies})
      .bind(24, noticeable ? std::optional<std::int64_t>(change_) : std::nullopt);
  bind_id(q, 5, row.parent_job_id);
  if (!row.stored) bind_id(q, 23, row.job_id);
  q.run();
}

AppendResult SqliteStore::append(const std::vector<Event>& events) { return append_checked(CheckedEvents(events)); }

AppendResult SqliteStore::append_checked(const CheckedEvents& batch) {
  if (options_.read_only) throw StoreError(StoreError::Kind::read_only, "the store was opened read-only");
  if (batch.events().empty()) return {};
  try {
    sqlite::WriteTransaction transaction(*db_);
    sync_cache_with_database();
    History history(*this);
    auto plan = detail::plan_batch(batch.events(), history);
    land(plan);
    transaction.commit();
    return std::move(plan.result);
  } catch (...) {
    // The transaction rolled back: the cache may describe rows that were never written.
    forget_cache();
    throw;
  }
}

std::vector<JobRecord> SqliteStore::read_jobs(Statement& q, std::vector<std::int64_t>* extra) {
  std::vector<JobRecord> jobs;
  while (q.step()) {
    JobRecord& job = jobs.emplace_back(detail::read_job_record(Row{q, epoch_}));
    // In order of their bytes, as every store lists them.
    for (std::string_view tags = q.text_view(entities_column); !tags.empty();) {
      const std::size_t end = std::min(tags.find('\0'), tags.size());
      job.entities.emplace_back(tags.substr(0, end));
      tags.remove_prefix(std::min(end + 1, tags.size()));
    }
    std::sort(job.entities.begin(), job.entities.end());
    if (extra != nullptr) extra->push_back(q.integer(entities_column + 1));
  }
  return jobs;
}

std::optional<JobRecord> SqliteStore::find_job(const std::string& job_id) {
  Statement q(db_->handle(), "SELECT " + std::string(job_columns) + " WHERE j.job_id = ?1");
  bind_id(q, 1, job_id);
  auto jobs = read_jobs(q);
  if (jobs.empty()) return std::nullopt;
  return std::move(jobs.front());
}

std::vector<EventRecord> SqliteStore::events_of(const std::string& job_id) {
  Statement q(db_->handle(), R"SQL(
    SELECT ev.state, ev.attempt, ev.at, w.text, e.class, e.message, e.backtrace
    FROM event ev
    LEFT JOIN label w ON w.id = ev.worker
    LEFT JOIN error e ON e.id = ev.error
    WHERE ev.job = (SELECT id FROM job WHERE job_id = ?1))SQL");
  bind_id(q, 1, job_id);
  auto events = decode_rows(q, epoch_, detail::read_event_record<Row>);
  detail::sort_in_lifecycle_order(events);
  return events;
}

std::vector<JobRecord> SqliteStore::jobs_in_trace(const std::string& correlation_id) {
  Statement q(db_->handle(), "SELECT " + std::string(job_columns) +
                                 " WHERE j.correlation = (SELECT id FROM correlation WHERE text = ?1)"
                                 " ORDER BY j.first_at, j.id");
  bind_id(q, 1, correlation_id);
  return read_jobs(q);
}

// Parameters by number, shared by every query built from filter_sql: ?1 entity, ?3 job class,
// ?4 queue, ?5 since, ?6 until, ?8 and ?9 the page position; ?7 and ?10 are the caller's.
std::string SqliteStore::filter_sql(const JobFilter& filter, std::optional<State> state, bool with_after) {
  // Only fixed SQL text is concatenated; every caller value is a bound parameter.
  std::string sql = " FROM job j";
  if (!filter.entity.empty()) {
    sql += " JOIN job_entity je ON je.job = j.id AND je.entity = (SELECT id FROM entity WHERE name = ?1)";
  }
  static const detail::FilterPlaceholders at{"?3", "?4", "?5", "?6", "?8", "?9"};
  const auto conditions = detail::job_filter_conditions(filter, at, state, with_after);
  for (std::size_t i = 0; i < conditions.size(); ++i) sql += (i == 0 ? " WHERE " : " AND ") + conditions[i];
  return sql;
}

void SqliteStore::bind_filter(Statement& q, const JobFilter& filter) const {
  if (!filter.entity.empty()) q.bind(1, filter.entity);
  if (!filter.job.empty()) q.bind(3, filter.job);
  if (!filter.queue.empty()) q.bind(4, filter.queue);
  if (filter.since) q.bind(5, *filter.since - epoch_);
  if (filter.until) q.bind(6, *filter.until - epoch_);
  if (filter.after) {
    q.bind(8, filter.after->first_event_at - epoch_);
    q.bind(9, filter.after->row);
  }
}

std::vector<JobRecord> SqliteStore::list_jobs(const JobFilter& filter) {
  const auto states = detail::states_to_scan(filter);
  std::string sql = "SELECT " + std::string(job_columns);
  constexpr std::string_view order = " ORDER BY j.first_at DESC, j.id DESC LIMIT ?7";
  if (states.size() == 1) {
    // job_columns ends in the joins "FROM job j ...": the filter only adds its conditions.
    sql = "SELECT " + std::string(job_columns) + " WHERE j.id IN (SELECT j.id" + filter_sql(filter, states.front(), true) +
          std::string(order) + ")" + std::string(order);
  } else {
    // One index range per state, each already in list order and cut at the limit; merging
    // them here beats one range over several states, which SQLite would have to sort whole.
    std::string branches;
    for (const auto& state : states) {
      if (!branches.empty()) branches += " UNION ALL ";
      branches += "SELECT id FROM (SELECT j.id" + filter_sql(filter, state, true) + std::string(order) + ")";
    }
    sql += " WHERE j.id IN (" + branches + ")" + std::string(order);
  }
  Statement q(db_->handle(), sql);
  bind_filter(q, filter);
  q.bind(7, static_cast<std::int64_t>(filter.limit));
  return read_jobs(q);
}

std::int64_t SqliteStore::count_jobs(const JobFilter& filter, std::int64_t at_most) {
  std::int64_t total = 0;
  for (const auto& state : detail::states_to_scan(filter)) {
    Statement q(db_->handle(), "SELECT count(*) FROM (SELECT 1" + filter_sql(filter, state, true) + " LIMIT ?7)");
    bind_filter(q, filter);
    q.bind(7, at_most - total);
    q.step();
    total += q.integer(0);
    if (total >= at_most) break;
  }
  return total;
}

ChangePosition SqliteStore::last_change() {
  if (const int version = schema_version(); version < 4) throw detail::no_change_order(location(), version);
  // Each append takes its number inside its write transaction: every row with a number up to
  // this one is committed, and no later commit takes a number below it.
  Statement q(db_->handle(), "SELECT value FROM meta WHERE key = 'change_seq'");
  return {q.first_integer().value_or(0), std::numeric_limits<std::int64_t>::max()};
}

ChangedJobs SqliteStore::changed_jobs(const JobFilter& filter, const ChangePosition& after) {
  // The horizon first, then only rows up to it: what is written meanwhile waits for the next
  // call, so `next` covers exactly what this one looked at.
  const ChangePosition horizon = last_change();
  if (after >= horizon) return {{}, after};
  JobFilter unpaged = filter;
  unpaged.after.reset();
  const std::string states = detail::state_numbers(filter.states);
  // A range of job_by_change from `after` (the first term alone bounds it), the filter tested
  // on the rows of that range. INDEXED BY: left to choose, SQLite takes job_by_class for --job
  // or job_entity for --entity (a walk of every job of the class, each poll), as seen with
  // EXPLAIN QUERY PLAN on a store without statistics.
  std::string sql = filter_sql(unpaged, std::nullopt, false);
  sql = "SELECT j.id FROM job j INDEXED BY job_by_change" + sql.substr(std::string_view(" FROM job j").size());
  sql += (sql.find(" WHERE ") == std::string::npos ? " WHERE " : " AND ") +
         std::string("j.changed >= ?10 AND (j.changed > ?10 OR j.id > ?11) AND j.changed <= ?12");
  if (!states.empty()) sql += " AND j.state IN (" + states + ")";
  Statement q(db_->handle(), "SELECT " + std::string(job_select) + ", j.changed" + std::string(job_from) +
                                 " WHERE j.id IN (" + sql + " ORDER BY j.changed, j.id LIMIT ?7) ORDER BY j.changed, j.id");
  bind_filter(q, unpaged);
  q.bind(7, static_cast<std::int64_t>(filter.limit));
  q.bind(10, after.change);
  q.bind(11, after.row);
  q.bind(12, horizon.change);
  std::vector<std::int64_t> changes;
  ChangedJobs changed{read_jobs(q, &changes), horizon};
  // A full answer may leave rows up to the horizon: the next call starts after its last job.
  if (changed.jobs.size() == filter.limit) changed.next = {changes.back(), changed.jobs.back().row};
  return changed;
}

std::vector<JobStats> SqliteStore::stats(const StatsFilter& filter) {
  // Only fixed SQL text is concatenated; every caller value is a bound parameter. With a class,
  // job_by_class (job, first_at) holds the whole range; else job_by_first_at does.
  const bool by_queue = filter.by == StatsGroup::queue;
  std::string sql = std::string("SELECT ") + (by_queue ? "q.text" : "c.text") + R"SQL(,
           j.state, j.started_at - j.enqueued_at, j.finished_at - j.started_at
    FROM job j LEFT JOIN label c ON c.id = j.job LEFT JOIN label q ON q.id = j.queue
    WHERE j.first_at >= ?1 AND j.first_at < ?2)SQL";
  if (!filter.job.empty()) sql += " AND j.job = (SELECT id FROM label WHERE text = ?3)";
  Statement q(db_->handle(), sql);
  q.bind(1, filter.since ? *filter.since - epoch_ : std::numeric_limits<std::int64_t>::min());
  q.bind(2, filter.until ? *filter.until - epoch_ : std::numeric_limits<std::int64_t>::max());
  if (!filter.job.empty()) q.bind(3, filter.job);
  detail::JobStatsBuilder builder;
  while (q.step()) {
    builder.add(q.text(0), static_cast<State>(q.integer(1)), q.optional_integer(2), q.optional_integer(3));
  }
  auto result = builder.finish();
  if (by_queue) {
    for (auto& stats : result) stats.queue = std::move(stats.job), stats.job.clear();
  }
  return result;
}

std::vector<JobTally> SqliteStore::tally(const std::vector<Micros>& bounds) {
  detail::check_tally_bounds(bounds);
  if (const int version = schema_version(); version < 5) {
    throw detail::older_schema(location(), version, 5, "the job counts per class and time (job_tally)");
  }
  // The kept counts of the buckets in range (job_tally's key starts with the bucket), each
  // bucket summed into the slice it falls in: a few hundred rows for a day, whatever the store.
  Statement q(db_->handle(), R"SQL(
    SELECT coalesce(l.text, ''), t.bucket, t.state, t.jobs FROM job_tally t LEFT JOIN label l ON l.id = t.job
    WHERE t.bucket >= ?1 AND t.bucket < ?2)SQL");
  q.bind(1, bounds.front() - epoch_).bind(2, bounds.back() - epoch_);
  detail::TallyBuilder builder;
  while (q.step()) {
    const Micros bucket = q.integer(1) + epoch_;
    const auto slice = static_cast<std::size_t>(std::upper_bound(bounds.begin(), bounds.end(), bucket) - bounds.begin()) - 1;
    builder.add(q.text(0), slice, static_cast<State>(q.integer(2)), q.integer(3));
  }
  return builder.finish();
}

std::vector<AnomalyRecord> SqliteStore::anomalies(const std::string& job_id, std::size_t limit) {
  constexpr std::string_view columns = R"SQL(
    SELECT j.job_id, a.kind, o.job_id, a.detail, a.at, a.id
    FROM anomaly a JOIN job j ON j.id = a.job LEFT JOIN job o ON o.id = a.other_job)SQL";
  std::string sql(columns);
  if (!job_id.empty()) {
    // The job's own flags, and those of later jobs that succeeded under its idempotency key
    // (flagged on them, naming this job): found through job_by_idempotency_key, then
    // anomaly_by_job, so both halves stay index look-ups.
    sql += " WHERE a.job = (SELECT id FROM job WHERE job_id = ?1) UNION ALL ";
    sql += columns;
    sql += R"SQL( JOIN job me ON me.job_id = ?1 AND me.idempotency_key IS NOT NULL
      WHERE j.idempotency_key = me.idempotency_key AND j.idempotency_key IS NOT NULL AND j.id != me.id
        AND a.other_job = me.id)SQL";
  }
  sql += " ORDER BY 5 DESC, 6 DESC LIMIT ?2";
  Statement q(db_->handle(), sql);
  if (!job_id.empty()) bind_id(q, 1, job_id);
  q.bind(2, static_cast<std::int64_t>(limit));
  return decode_rows(q, epoch_, detail::read_anomaly_record<Row>);
}

ImpactReport SqliteStore::impact(const ImpactFilter& filter) {
  // The jobs come from one index range: job_by_class with a class, job_by_state (partial,
  // hence "state != 4" word for word) with states that exclude succeeded, else
  // job_by_first_at; their tags from job_entity_by_job. States are numbers of the State enum,
  // never caller text; every caller value is a bound parameter. With max_jobs, the newest
  // that many (each of those indexes is in first_at order), their tags joined after the limit.
  // Each of those indexes holds the row's id and first_at: the jobs are read from the index
  // alone, and only the IDs the report lists are looked up in the table.
  std::string jobs = "SELECT j.id, j.first_at FROM job j WHERE j.first_at >= ?1 AND j.first_at < ?2";
  if (!filter.job.empty()) jobs += " AND j.job = (SELECT id FROM label WHERE text = ?3)";
  if (!filter.states.empty()) {
    jobs += " AND j.state IN (" + detail::state_numbers(filter.states) + ")";
    if (std::find(filter.states.begin(), filter.states.end(), State::succeeded) == filter.states.end()) {
      jobs += " AND j.state != 4";
    }
  }
  if (filter.max_jobs != 0) jobs += " ORDER BY j.first_at DESC, j.id DESC LIMIT ?4";
  sqlite::ReadTransaction snapshot(*db_);
  Statement q(db_->handle(), "SELECT e.name, j.id, j.first_at FROM (" + jobs + R"SQL() j
    LEFT JOIN job_entity je ON je.job = j.id LEFT JOIN entity e ON e.id = je.entity)SQL");
  q.bind(1, filter.since ? *filter.since - epoch_ : std::numeric_limits<std::int64_t>::min());
  q.bind(2, filter.until ? *filter.until - epoch_ : std::numeric_limits<std::int64_t>::max());
  if (!filter.job.empty()) q.bind(3, filter.job);
  if (filter.max_jobs != 0) q.bind(4, static_cast<std::int64_t>(std::min<std::size_t>(filter.max_jobs, INT64_MAX)));
  detail::ImpactBuilder builder(filter);
  while (q.step()) {
    builder.add(q.is_null(0) ? std::string_view() : q.text_view(0), q.integer(1), q.integer(2) + epoch_);
  }
  Statement id_of(db_->handle(), "SELECT job_id FROM job WHERE id = ?1");
  const auto name = [&](const std::vector<std::int64_t>& rows) {
    std::vector<std::string> ids;
    for (const std::int64_t row : rows) {
      id_of.reset().bind(1, row);
      ids.push_back(id_of.step() ? read_id(id_of, 0) : std::string());
    }
    return ids;
  };
  // The count and the names in the same snapshot as the read.
  return detail::finish_impact(*this, filter, builder, name);
}

namespace {

/// The smallest byte string greater than every string that starts with `bytes`; nothing when
/// there is none (all bytes 0xff).
std::optional<std::string> prefix_end(std::string bytes) {
  while (!bytes.empty() && static_cast<unsigned char>(bytes.back()) == 0xff) bytes.pop_back();
  if (bytes.empty()) return std::nullopt;
  bytes.back() = static_cast<char>(static_cast<unsigned char>(bytes.back()) + 1);
  return bytes;
}

int hex_value(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

bool is_lower_hex(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

std::vector<std::string> SqliteStore::job_ids_with_prefix(const std::string& prefix, std::size_t limit) {
  if (prefix.empty()) return {};
  std::vector<std::string> ids;
  sqlite::ReadTransaction snapshot(*db_);
  // Text IDs: a range of the job_id index. Every text sorts before every blob, so an empty
  // blob bounds the range when no byte string does.
  {
    Statement q(db_->handle(), "SELECT job_id FROM job WHERE job_id >= ?1 AND job_id < ?2 ORDER BY job_id LIMIT ?3");
    q.bind(1, prefix);
    if (auto end = prefix_end(prefix)) q.bind(2, *end); else q.bind_blob(2, "");
    q.bind(3, static_cast<std::int64_t>(limit));
    while (q.step()) ids.push_back(q.text(0));
  }
  // Hex IDs are blobs (see is_compact_hex): a hex prefix is a range of their bytes, an odd
  // last digit the high half of a byte.
  if (is_lower_hex(prefix)) {
    std::string low;
    for (std::size_t i = 0; i + 1 < prefix.size(); i += 2) {
      low += static_cast<char>(hex_value(prefix[i]) << 4 | hex_value(prefix[i + 1]));
    }
    std::optional<std::string> high;
    if (prefix.size() % 2 == 1) {
      const int nibble = hex_value(prefix.back());
      high = nibble < 15 ? std::optional<std::string>(low + static_cast<char>((nibble + 1) << 4)) : prefix_end(low);
      low += static_cast<char>(nibble << 4);
    } else {
      high = prefix_end(low);
    }
    Statement q(db_->handle(), high ? "SELECT job_id FROM job WHERE job_id >= ?1 AND job_id < ?2 ORDER BY job_id LIMIT ?3"
                                    : "SELECT job_id FROM job WHERE job_id >= ?1 ORDER BY job_id LIMIT ?3");
    q.bind_blob(1, low);
    if (high) q.bind_blob(2, *high);
    q.bind(3, static_cast<std::int64_t>(limit));
    while (q.step()) ids.push_back(read_id(q, 0));
  }
  std::sort(ids.begin(), ids.end());
  if (ids.size() > limit) ids.resize(limit);
  return ids;
}

std::vector<std::string> SqliteStore::job_ids_near(const std::string& job_id, std::size_t limit) {
  if (job_id.empty()) return {};
  std::vector<std::string> ids;
  sqlite::ReadTransaction snapshot(*db_);
  for (const char* sql : {"SELECT job_id FROM job WHERE job_id < ?1 ORDER BY job_id DESC LIMIT ?2",
                          "SELECT job_id FROM job WHERE job_id > ?1 ORDER BY job_id LIMIT ?2"}) {
    Statement q(db_->handle(), sql);
    bind_id(q, 1, job_id);
    q.bind(2, static_cast<std::int64_t>(limit));
    while (q.step()) ids.push_back(read_id(q, 0));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

namespace {
std::string fmt_free_note(std::int64_t bytes) {
  return "the store is busy, so " + std::to_string(bytes) +
         " bytes of free pages stay inside the file (new events reuse them); prune again when it is quiet";
}

// What prune deletes, written once for prune and prunable (?1: the cutoff, relative to the
// epoch). first_at <= last_at, so the first_at index narrows the candidate jobs.
constexpr std::string_view prunable_jobs = "first_at < ?1 AND first_at + last_at < ?1 AND state NOT IN (1, 2)";
constexpr std::string_view prunable_check_results = R"SQL(
      r.started_at < ?1
      AND r.run < (SELECT max(n.run) FROM check_result n WHERE n.check_name = r.check_name)
      AND NOT (r.status = 0 AND r.run = (SELECT max(p.run) FROM check_result p
                                         WHERE p.check_name = r.check_name AND p.status = 0)))SQL";
}  // namespace

PruneResult SqliteStore::prunable(Micros cutoff) {
  sqlite::ReadTransaction snapshot(*db_);
  PruneResult result;
  Statement jobs(db_->handle(), "SELECT count(*), coalesce(sum(events), 0) FROM job WHERE " + std::string(prunable_jobs));
  jobs.bind(1, cutoff - epoch_);
  if (jobs.step()) {
    result.jobs = jobs.integer(0);
    result.events = jobs.integer(1);
  }
  Statement checks(db_->handle(), "SELECT count(*) FROM check_result AS r WHERE " + std::string(prunable_check_results));
  checks.bind(1, cutoff - epoch_);
  result.check_results = checks.first_integer().value_or(0);
  return result;
}

SpaceReport SqliteStore::reclaim_space() {
  if (options_.read_only) throw StoreError(StoreError::Kind::read_only, "the store was opened read-only");
  namespace fs = std::filesystem;
  // What the file system holds: the database and its write-ahead log.
  auto bytes_on_disk = [this]() {
    std::int64_t total = 0;
    for (const char* suffix : {"", "-wal"}) {
      std::error_code ignored;
      const auto size = fs::file_size(path_ + suffix, ignored);
      if (!ignored) total += static_cast<std::int64_t>(size);
    }
    return total;
  };
  SpaceReport report;
  report.bytes_before = report.bytes_after = bytes_on_disk();
  const std::int64_t page_size = db_->query_integer("PRAGMA page_size");
  const std::int64_t free_pages = db_->query_integer("PRAGMA freelist_count");
  if (free_pages == 0) {
    report.note = "no free pages in the file: nothing to give back";
    return report;
  }
  try {
    if (db_->query_integer("PRAGMA auto_vacuum") == 2) {
      // Incremental: free pages go back in steps of 1,000 (4 MB), each a short write
      // transaction, so recording workers wait for a step, never for the whole file.
      for (std::int64_t left = free_pages; left > 0;) {
        db_->execute("PRAGMA incremental_vacuum(1000)");
        const std::int64_t now_free = db_->query_integer("PRAGMA freelist_count");
        if (now_free >= left) break;  // nothing more it can give back
        left = now_free;
      }
      report.note = "gave the free pages back in steps (incremental vacuum)";
    } else {
      // A store made before incremental vacuum: one VACUUM rewrites the file without the free
      // pages and switches it over, so later prunes give space back in small steps.
      db_->execute("PRAGMA auto_vacuum = INCREMENTAL");
      db_->execute("VACUUM");
      report.note = "rewrote the file without its free pages (VACUUM; later prunes give space back in steps)";
    }
    // The log holds copies of the pages just written: fold it in and shorten it.
    db_->execute("PRAGMA wal_checkpoint(TRUNCATE)");
  } catch (const StoreError& error) {
    if (!error.transient()) throw;
    report.note = fmt_free_note(free_pages * page_size);
  }
  report.bytes_after = bytes_on_disk();
  return report;
}

PruneResult SqliteStore::prune(Micros cutoff) {
  if (options_.read_only) throw StoreError(StoreError::Kind::read_only, "the store was opened read-only");
  PruneResult result;
  // Chunks keep each write lock short, so workers recording meanwhile are not held up.
  constexpr std::int64_t chunk = 5000;
  const std::int64_t stored_cutoff = cutoff - epoch_;
  try {
    for (;;) {
      sqlite::WriteTransaction transaction(*db_);
      db_->execute("CREATE TEMP TABLE IF NOT EXISTS prune_batch (id INTEGER PRIMARY KEY)");
      db_->execute("DELETE FROM prune_batch");
      Statement pick(db_->handle(), "INSERT INTO prune_batch (id) SELECT id FROM job WHERE " +
                                        std::string(prunable_jobs) + " LIMIT ?2");
      pick.bind(1, stored_cutoff).bind(2, chunk).run();
      auto picked = db_->changes();
      if (picked == 0) break;
      db_->execute(R"SQL(
        DELETE FROM error WHERE id IN (
          SELECT ev.error FROM event ev JOIN prune_batch p ON ev.job = p.id WHERE ev.error IS NOT NULL))SQL");
      db_->execute("DELETE FROM event WHERE job IN (SELECT id FROM prune_batch)");
      result.events += db_->changes();
      db_->execute("DELETE FROM job_entity WHERE job IN (SELECT id FROM prune_batch)");
      db_->execute("DELETE FROM anomaly WHERE job IN (SELECT id FROM prune_batch)");
      change_tally(sqlite::tally_of(*db_, epoch_, "SELECT j.job, j.first_at, j.state FROM job j JOIN prune_batch p ON p.id = j.id", -1));
      db_->execute("DELETE FROM job WHERE id IN (SELECT id FROM prune_batch)");
      result.jobs += db_->changes();
      transaction.commit();
      if (picked < chunk) break;
    }
    sqlite::WriteTransaction transaction(*db_);
    result.check_results = prune_check_history(stored_cutoff);
    db_->execute("DELETE FROM entity WHERE id NOT IN (SELECT entity FROM job_entity)");
    db_->execute("DELETE FROM correlation WHERE id NOT IN (SELECT correlation FROM job WHERE correlation IS NOT NULL)");
    transaction.commit();
  } catch (...) {
    forget_cache();
    throw;
  }
  forget_cache();
  return result;
}

std::int64_t SqliteStore::prune_check_history(Micros stored_cutoff) {
  Statement results(db_->handle(), "DELETE FROM check_result AS r WHERE " + std::string(prunable_check_results));
  results.bind(1, stored_cutoff).run();
  const auto deleted = db_->changes();
  db_->execute(R"SQL(
    DELETE FROM check_violation WHERE NOT EXISTS (
      SELECT 1 FROM check_result r WHERE r.check_name = check_violation.check_name AND r.run = check_violation.run))SQL");
  db_->execute("DELETE FROM check_run WHERE id NOT IN (SELECT run FROM check_result)");
  return deleted;
}

void SqliteStore::register_schedule(const Schedule& schedule) {
  if (options_.read_only) throw StoreError(StoreError::Kind::read_only, "the store was opened read-only");
  detail::check_schedule(schedule);
  try {
    sqlite::WriteTransaction transaction(*db_);
    sync_cache_with_database();
    Statement upsert(db_->handle(), R"SQL(
      INSERT INTO schedule (job, every_us, grace_us, updated_at) VALUES (?1, ?2, ?3, ?4)
      ON CONFLICT (job) DO UPDATE SET every_us = excluded.every_us, grace_us = excluded.grace_us,
                                      updated_at = excluded.updated_at)SQL");
    upsert.bind(1, intern(labels_, schedule.job))
        .bind(2, schedule.every)
        .bind(3, schedule.grace)
        .bind(4, (schedule.updated_at ? schedule.updated_at : now_micros()) - epoch_)
        .run();
    transaction.commit();
  } catch (...) {
    forget_cache();
    throw;
  }
}

std::vector<Schedule> SqliteStore::schedules() {
  // The newest job of a class is the last entry of its range in job_by_class.
  Statement q(db_->handle(), R"SQL(
    SELECT l.text, s.every_us, s.grace_us, s.updated_at,
           (SELECT max(j.first_at) FROM job j WHERE j.job = s.job)
    FROM schedule s JOIN label l ON l.id = s.job ORDER BY l.text)SQL");
  return decode_rows(q, epoch_, detail::read_schedule<Row>);
}

std::vector<ActiveJobs> SqliteStore::active_jobs() {
  // Two ranges of the partial index job_by_state, one per state, so the cost stays independent
  // of how many succeeded jobs the store holds. SQLite uses a partial index only when the query
  // repeats its term word for word, hence "state != 4" (EXPLAIN QUERY PLAN: SEARCH job USING
  // INDEX job_by_state). Times are relative to first_at (see the schema).
  Statement q(db_->handle(), R"SQL(
    SELECT c.text, qu.text, a.state, a.n, a.oldest, a.silent FROM (
      SELECT job, queue, 1 AS state, count(*) AS n, min(first_at + coalesce(enqueued_at, 0)) AS oldest,
             NULL AS silent
      FROM job WHERE state = 1 AND state != 4 GROUP BY job, queue
      UNION ALL
      SELECT job, queue, 2 AS state, count(*) AS n, min(first_at + coalesce(started_at, 0)) AS oldest,
             min(first_at + max(coalesce(started_at, 0), coalesce(heartbeat_at, 0))) AS silent
      FROM job WHERE state = 2 AND state != 4 GROUP BY job, queue) a
    LEFT JOIN label c ON c.id = a.job LEFT JOIN label qu ON qu.id = a.queue
    ORDER BY 1, 2)SQL");
  detail::ActiveJobsBuilder result;
  while (q.step()) {
    auto silent = q.optional_integer(5);
    result.add(q.is_null(0) ? std::string() : q.text(0), q.is_null(1) ? std::string() : q.text(1),
               static_cast<State>(q.integer(2)), q.integer(3), q.integer(4) + epoch_,
               silent ? std::optional<Micros>(*silent + epoch_) : std::nullopt);
  }
  return result.finish();
}

// ---- Built-in checks over the job history -------------------------------------------------
// Each selects row ids through one index range (sqlite_check_queries.h), then reads full
// records only for the jobs it returns.

JobFindings SqliteStore::read_findings(detail::FindingsBuilder& found) {
  Statement q(db_->handle(), "SELECT " + std::string(job_columns) + " WHERE j.id = ?1");
  return found.finish([&](std::int64_t id) -> std::optional<JobRecord> {
    q.reset().bind(1, id);
    auto jobs = read_jobs(q);
    if (jobs.empty()) return std::nullopt;
    return std::move(jobs.front());
  });
}

JobFindings SqliteStore::jobs_past_deadline(Statement& candidates, const JobDeadlines& deadlines, Micros now,
                                            std::size_t limit) {
  detail::FindingsBuilder found(limit);
  while (candidates.step()) {
    found.add_if_past(candidates.integer(0), candidates.text(1), candidates.integer(2) + epoch_, deadlines, now);
  }
  candidates.reset();
  return read_findings(found);
}

JobFindings SqliteStore::stuck_jobs(const JobDeadlines& deadlines, Micros now, std::size_t limit) {
  sqlite::ReadTransaction snapshot(*db_);
  Statement q(db_->handle(), sqlite::check_queries::stuck);
  q.bind(1, now - deadlines.shortest() - epoch_);
  return jobs_past_deadline(q, deadlines, now, limit);
}

JobFindings SqliteStore::lost_jobs(const JobDeadlines& deadlines, Micros now, std::size_t limit) {
  sqlite::ReadTransaction snapshot(*db_);
  Statement q(db_->handle(), sqlite::check_queries::lost);
  q.bind(1, now - deadlines.shortest() - epoch_);
  return jobs_past_deadline(q, deadlines, now, limit);
}

JobFindings SqliteStore::duplicate_executions(Micros since, std::size_t limit) {
  sqlite::ReadTransaction snapshot(*db_);
  Statement q(db_->handle(), sqlite::check_queries::duplicates);
  q.bind(1, since - epoch_);
  detail::FindingsBuilder found(limit);
  while (q.step()) found.add_anomalies(q.integer(0), static_cast<std::uint32_t>(q.integer(1)));
  q.reset();
  return read_findings(found);
}

JobFindings SqliteStore::dead_jobs(Micros since, std::size_t limit) {
  sqlite::ReadTransaction snapshot(*db_);
  Statement q(db_->handle(), sqlite::check_queries::dead);
  q.bind(1, since - epoch_);
  detail::FindingsBuilder found(limit);
  while (q.step()) found.add(q.integer(0));
  q.reset();
  return read_findings(found);
}

// ---- The check history -------------------------------------------------------------------

std::int64_t SqliteStore::record_check_run(const CheckRunRecord& run) {
  if (options_.read_only) throw StoreError(StoreError::Kind::read_only, "the store was opened read-only");
  sqlite::WriteTransaction transaction(*db_);
  Statement insert_run(db_->handle(), "INSERT INTO check_run (started_at, finished_at, config) VALUES (?1, ?2, ?3)");
  insert_run.bind(1, run.started_at - epoch_).bind(2, run.finished_at - epoch_).bind(3, run.config).run();
  const std::int64_t run_id = db_->last_insert_rowid();
  Statement insert_result(db_->handle(), R"SQL(
    INSERT INTO check_result (check_name, run, status, severity, violations, new_violations, resolved,
                              complete, started_at, duration_us, error)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11))SQL");
  Statement insert_violation(db_->handle(), R"SQL(
    INSERT OR IGNORE INTO check_violation (check_name, run, fingerprint, first_seen_at, sample, entity)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6))SQL");
  Statement trim_violations(db_->handle(), R"SQL(
    DELETE FROM check_violation WHERE check_name = ?1 AND run < (
      SELECT min(run) FROM (SELECT run FROM check_result WHERE check_name = ?1 ORDER BY run DESC LIMIT ?2)))SQL");
  for (const auto& result : run.results) {
    insert_result.reset()
        .bind(1, result.check)
        .bind(2, run_id)
        .bind(3, static_cast<std::int64_t>(result.status))
        .bind(4, result.severity.empty() ? std::string_view("error") : std::string_view(result.severity))
        .bind(5, result.violations)
        .bind(6, result.new_violations)
        .bind(7, result.resolved)
        .bind(8, std::int64_t{result.fingerprints_complete ? 1 : 0})
        .bind(9, result.started_at - epoch_)
        .bind(10, result.duration)
        .bind(11, result.error)
        .run();
    for (const auto& violation : result.failing) {
      insert_violation.reset()
          .bind(1, result.check)
          .bind(2, run_id)
          .bind(3, violation.fingerprint)
          .bind(4, violation.first_seen_at - epoch_)
          .bind(5, violation.sample)
          .bind(6, violation.entity)
          .run();
    }
    trim_violations.reset().bind(1, result.check).bind(2, std::int64_t{detail::kept_violation_runs}).run();
  }
  transaction.commit();
  return run_id;
}

std::vector<CheckViolation> SqliteStore::check_violations(const std::string& check, std::int64_t run) {
  Statement q(db_->handle(), detail::check_violation_columns(schema_version()) + "WHERE check_name = ?1 AND run = ?2");
  q.bind(1, check).bind(2, run);
  return decode_rows(q, epoch_, detail::read_check_violation<Row>);
}

std::vector<CheckResultRecord> SqliteStore::check_history(const std::string& check, std::size_t limit) {
  Statement q(db_->handle(), std::string(detail::check_result_columns) + "WHERE check_name = ?1 ORDER BY run DESC LIMIT ?2");
  q.bind(1, check).bind(2, static_cast<std::int64_t>(limit));
  return decode_rows(q, epoch_, detail::read_check_result<Row>);
}

std::vector<std::string> SqliteStore::check_names() {
  // check_result's primary key starts with check_name: one walk of that index, no sort.
  Statement q(db_->handle(), "SELECT DISTINCT check_name FROM check_result ORDER BY check_name");
  std::vector<std::string> names;
  while (q.step()) names.push_back(q.text(0));
  return names;
}

std::optional<Micros> SqliteStore::last_check_success(const std::string& check) {
  // The newest entry of check_result_passed; status inlined so the partial index applies.
  Statement q(db_->handle(),
              "SELECT started_at FROM check_result WHERE check_name = ?1 AND status = 0 ORDER BY run DESC LIMIT 1");
  q.bind(1, check);
  auto at = q.first_integer();
  return at ? std::optional<Micros>(*at + epoch_) : std::nullopt;
}

}  // namespace jobtrail
