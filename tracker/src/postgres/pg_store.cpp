#include "postgres/pg_store.h"

#include <algorithm>
#include <limits>
#include <map>
#include <unordered_map>

#include "entity_impact.h"
#include "job_stats.h"
#include "postgres/pg_check_queries.h"
#include "postgres/pg_schema.h"
#include "record_columns.h"
#include "store_rules.h"

namespace jobtrail {

using pg::ArrayLiteral;
using pg::Params;

namespace {

// How often an append starts over when another writer created one of its new jobs at the same
// moment (each retry finds the job and locks it, so one retry nearly always settles it).
constexpr int max_create_conflicts = 5;

/// A result row as the decoders of record_columns.h read it: IDs are text, times absolute.
struct Row {
  const pg::Result& rows;
  int r;
  std::string text(int column) const { return rows.string(r, column); }
  std::string id(int column) const { return rows.string(r, column); }
  std::int64_t integer(int column) const { return rows.integer(r, column); }
  std::optional<std::int64_t> optional_integer(int column) const { return rows.optional_integer(r, column); }
  Micros time(int column) const { return rows.integer(r, column); }
  std::optional<Micros> optional_time(int column) const { return rows.optional_integer(r, column); }
  bool boolean(int column) const { return rows.text(r, column) == "t"; }
};

/// Every row of `rows`, decoded.
template <typename Decode>
auto decode_rows(const pg::Result& rows, Decode decode) {
  std::vector<decltype(decode(Row{rows, 0}))> records;
  records.reserve(static_cast<std::size_t>(rows.rows()));
  for (int r = 0; r < rows.rows(); ++r) records.push_back(decode(Row{rows, r}));
  return records;
}

// The columns every job query returns, in the order of detail::read_job_record, then the job's
// entity tags (column 21), and their tables. Names and tags come from scalar subqueries rather
// than joins: planning a join of five tables took 8 ms on every look-up, more than running it
// (0.1 ms); this plans in 0.3 ms. The tags in the same statement save a look-up a round trip.
constexpr int entities_column = 21;
constexpr std::string_view job_select = R"SQL(
  j.job_id, (SELECT text FROM label WHERE id = j.job), (SELECT text FROM label WHERE id = j.queue),
  j.correlation_id, j.parent_job_id, j.idempotency_key, j.state,
  j.enqueued_at, j.started_at, j.finished_at, j.heartbeat_at, j.first_at, j.last_at,
  j.attempts, j.events, (SELECT text FROM label WHERE id = j.worker),
  e.error_class, e.error_message, e.error_backtrace, j.anomalies, j.id,
  (SELECT array_agg(t.entity ORDER BY t.entity COLLATE "C") FROM job_entity t WHERE t.job = j.id))SQL";
constexpr std::string_view error_join = " LEFT JOIN event e ON e.job = j.id AND e.seq = j.last_error_seq ";
const std::string job_from = " FROM job j" + std::string(error_join);
const std::string job_columns = std::string(job_select) + job_from;

}  // namespace

/// One append's working set: the rows it touches, locked, and what the planner may ask.
struct PostgresStore::Batch {
  std::unordered_map<std::string, detail::JobRow> rows;  ///< by job ID
  std::vector<detail::JobRow*> order;                    ///< in order of first appearance
  /// Stored jobs that already succeeded, by idempotency key (read under the key lock).
  std::unordered_map<std::string, std::vector<std::int64_t>> stored_successes_by_key;
  std::unordered_map<std::string, std::int64_t> new_labels;  ///< committed with the batch
};

/// The store's answers to the planner, from the rows and successes loaded for the batch and
/// from the event table.
class PostgresStore::History final : public detail::BatchHistory {
 public:
  History(PostgresStore& store, pg::Connection& db, Batch& batch) : store_(store), db_(db), batch_(batch) {}

  detail::JobRow& row(const std::string& job_id) override { return batch_.rows.at(job_id); }
  std::int64_t label_id(const std::string& text) override { return store_.label_id(batch_, text); }

  bool has_event(const detail::JobRow& row, State state, std::optional<std::int32_t> attempt, Micros at) override {
    if (!attempt) {
      return db_.exec("SELECT 1 FROM event WHERE job = $1 AND state = $2 AND at = $3",
                      Params().add(row.id).add(std::int64_t{static_cast<int>(state)}).add(at))
                 .rows() > 0;
    }
    return db_.exec("SELECT 1 FROM event WHERE job = $1 AND state = $2 AND attempt = $3 AND at = $4",
                    Params().add(row.id).add(std::int64_t{static_cast<int>(state)}).add(std::int64_t{*attempt}).add(at))
               .rows() > 0;
  }

  std::int64_t success_under_key(const std::string& key, std::int64_t except_id) override {
    if (auto stored = batch_.stored_successes_by_key.find(key); stored != batch_.stored_successes_by_key.end()) {
      for (auto id : stored->second) {
        if (id != except_id) return id;
      }
    }
    return 0;
  }

  std::vector<detail::StoredEvent> stored_events(const detail::JobRow& row) override {
    auto stored = db_.exec(
        "SELECT seq, state, attempt, at, num_nonnulls(error_class, error_message, error_backtrace) > 0 "
        "FROM event WHERE job = $1",
        Params().add(row.id));
    std::vector<detail::StoredEvent> events;
    for (int r = 0; r < stored.rows(); ++r) {
      const auto seq = static_cast<std::int32_t>(stored.integer(r, 0));
      events.push_back({static_cast<State>(stored.integer(r, 1)), static_cast<std::int32_t>(stored.integer(r, 2)),
                        stored.integer(r, 3), seq,
                        stored.text(r, 4) == "t" ? std::optional<std::int64_t>(seq) : std::nullopt});
    }
    return events;
  }

 private:
  PostgresStore& store_;
  pg::Connection& db_;
  Batch& batch_;
};

PostgresStore::PostgresStore(const std::string& url, const OpenOptions& options, EventInsert method)
    : url_(url), where_(pg::redact(url)), options_(options), method_(method) {
  try {
    connection();
  } catch (const StoreError& error) {
    if (options.wait_for_server && error.transient()) return;  // a later call connects
    if (error.kind() == StoreError::Kind::not_a_store || error.kind() == StoreError::Kind::schema_too_new ||
        error.kind() == StoreError::Kind::not_found) {
      throw;
    }
    const std::string message = error.what();
    if (message.find(where_) != std::string::npos) throw;  // it names the store already
    throw StoreError(error.kind(), where_ + ": " + message);
  }
}

PostgresStore::~PostgresStore() = default;

std::string PostgresStore::location() const { return where_; }

pg::Connection& PostgresStore::connection() {
  if (db_ && db_->ok()) return *db_;
  db_.reset();
  std::unique_ptr<pg::Connection> fresh;
  try {
    fresh = std::make_unique<pg::Connection>(url_);
  } catch (const StoreError& error) {
    // Once the store has worked, any failure to reconnect (a password being rotated, a
    // pg_hba.conf reload) is worth retrying: the tracker keeps its queue meanwhile.
    if (prepared_ && error.kind() != StoreError::Kind::io) throw StoreError(StoreError::Kind::io, error.what());
    throw;
  }
  // Unqualified names are the store's; a read-only store cannot write even by mistake.
  fresh->execute("SET search_path = jobtrail, pg_catalog");
  if (options_.read_only) fresh->execute("SET default_transaction_read_only = on");
  if (!prepared_) {
    // Once per store, on its first connection: a read-only or must-exist store is never
    // created; any other is created or upgraded.
    if (options_.read_only || !options_.create) pg::read_schema_version(*fresh, where_);
    if (!options_.read_only) pg::migrate(*fresh, where_);
    prepared_ = true;
  }
  // A writer waiting on a lock longer than the busy timeout gives up and retries later.
  fresh->exec("SELECT set_config('lock_timeout', $1, false)",
              Params().add(std::to_string(options_.busy_timeout_ms) + "ms"));
  db_ = std::move(fresh);
  return *db_;
}

template <typename Work>
auto PostgresStore::guarded(Work&& work) -> decltype(work(std::declval<pg::Connection&>())) {
  try {
    return work(connection());
  } catch (const StoreError& error) {
    // A lost connection is closed here; the next call opens a new one.
    if (db_ && !db_->ok()) db_.reset();
    if (error.kind() == StoreError::Kind::read_only && !options_.read_only) {
      // A store we write to refusing writes: a failover landed us on a standby, or the server
      // was made read-only for a while. Worth retrying, on a new connection.
      db_.reset();
      throw StoreError(StoreError::Kind::io, where_ + " refuses writes for now: " + error.what());
    }
    throw;
  }
}

void PostgresStore::require_writable() const {
  if (options_.read_only) throw StoreError(StoreError::Kind::read_only, "the store was opened read-only");
}

int PostgresStore::schema_version() {
  return guarded([&](pg::Connection& db) { return pg::read_schema_version(db, where_); });
}

// ---- Writing -----------------------------------------------------------------------------

AppendResult PostgresStore::append(const std::vector<Event>& events) { return append_checked(CheckedEvents(events)); }

AppendResult PostgresStore::append_checked(const CheckedEvents& batch) {
  require_writable();
  const std::vector<Event>* input = &batch.events();
  if (input->empty()) return {};
  for (int attempt = 0;; ++attempt) {
    bool conflict = false;
    auto result = guarded([&](pg::Connection& db) { return append_once(db, *input, conflict); });
    if (!conflict) return result;
    if (attempt == max_create_conflicts) {
      throw StoreError(StoreError::Kind::busy, "other writers kept creating the same jobs at the same time");
    }
  }
}

AppendResult PostgresStore::append_once(pg::Connection& db, const std::vector<Event>& events, bool& conflict) {
  pg::Transaction transaction(db);
  Batch batch;
  // Two hosts finishing jobs under one idempotency key at the same moment must not both miss
  // the other's success: batches that record a success of a job with a key take turns. The key
  // may have come with an earlier event, stored: once a batch finds such a success without the
  // lock, it starts over with it, and this store takes it from then on.
  const bool keyed = lock_keyed_successes_ || std::any_of(events.begin(), events.end(), [](const Event& e) {
                       return e.state == State::succeeded && !e.idempotency_key.empty();
                     });
  if (keyed) db.exec("SELECT pg_advisory_xact_lock($1, 1)", Params().add(std::int64_t{pg::lock_space}));
  // Labels before rows: a new label's INSERT may wait for another writer's, and holding no row
  // locks yet keeps that wait free of deadlocks.
  intern_labels(db, events, batch);
  load_rows(db, events, batch);
  const auto keys = keys_of_successes(events, batch);
  if (!keys.empty() && !keyed) {
    lock_keyed_successes_ = true;
    conflict = true;
    return {};  // the transaction rolls back; append() starts over, taking the lock
  }
  load_stored_successes(db, keys, batch);

  History history(*this, db, batch);
  auto plan = detail::plan_batch(events, history);
  if (!write_batch(db, plan)) {
    conflict = true;
    return {};  // the transaction rolls back; append() starts over
  }
  transaction.commit();
  labels_.insert(batch.new_labels.begin(), batch.new_labels.end());
  return std::move(plan.result);
}

void PostgresStore::intern_labels(pg::Connection& db, const std::vector<Event>& events, Batch& batch) {
  std::vector<std::string> unknown;
  for (const auto& event : events) {
    for (const std::string* text : {&event.job, &event.queue, &event.worker}) {
      if (!text->empty() && !labels_.count(*text)) unknown.push_back(*text);
    }
  }
  if (unknown.empty()) return;
  std::sort(unknown.begin(), unknown.end());
  unknown.erase(std::unique(unknown.begin(), unknown.end()), unknown.end());
  // Sorted, so two writers adding the same new labels wait for each other in one order. Labels
  // that exist are read, not upserted: an upsert would lock them until this batch commits.
  auto inserted = db.exec(R"SQL(
    INSERT INTO label (text) SELECT t FROM unnest($1::text[]) AS t ORDER BY t
    ON CONFLICT (text) DO NOTHING RETURNING id, text)SQL",
                          Params().add_array(unknown));
  for (int r = 0; r < inserted.rows(); ++r) batch.new_labels.emplace(inserted.string(r, 1), inserted.integer(r, 0));
  if (static_cast<std::size_t>(inserted.rows()) == unknown.size()) return;
  auto existing = db.exec("SELECT id, text FROM label WHERE text = ANY($1::text[])", Params().add_array(unknown));
  for (int r = 0; r < existing.rows(); ++r) batch.new_labels.emplace(existing.string(r, 1), existing.integer(r, 0));
}

std::int64_t PostgresStore::label_id(const Batch& batch, const std::string& text) const {
  if (text.empty()) return 0;
  if (auto it = labels_.find(text); it != labels_.end()) return it->second;
  return batch.new_labels.at(text);
}

void PostgresStore::load_rows(pg::Connection& db, const std::vector<Event>& events, Batch& batch) {
  std::vector<std::string> job_ids;
  for (const auto& event : events) {
    auto [it, fresh] = batch.rows.try_emplace(event.job_id);
    if (!fresh) continue;
    it->second.job_id = event.job_id;
    batch.order.push_back(&it->second);
    job_ids.push_back(event.job_id);
  }
  // Locked in id order, the same in every writer, so two batches never wait on each other in a
  // circle. Other writers' changes to these jobs are committed before we read them.
  // detail::read_job_row's columns, then the job and correlation IDs.
  auto rows = db.exec(R"SQL(
    SELECT id, job, queue, parent_job_id, idempotency_key, state, enqueued_at, started_at,
           finished_at, heartbeat_at, first_at, last_at, attempts, events, successes, worker,
           last_error_seq, tail_state, tail_attempt, tail_at, anomalies, job_id, correlation_id
    FROM job WHERE job_id = ANY($1::text[]) ORDER BY id FOR UPDATE)SQL",
                      Params().add_array(job_ids));
  for (int r = 0; r < rows.rows(); ++r) {
    auto& row = batch.rows.at(rows.string(r, 21));
    detail::read_job_row(Row{rows, r}, row);
    row.correlation_id = rows.string(r, 22);
  }
  const auto missing = static_cast<std::int64_t>(job_ids.size()) - rows.rows();
  if (missing == 0) return;
  auto ids = db.exec("SELECT nextval('job_id_seq') FROM generate_series(1, $1)", Params().add(missing));
  int next = 0;
  for (auto* row : batch.order) {
    if (!row->stored) row->id = ids.integer(next++, 0);
  }
}

std::vector<std::string> PostgresStore::keys_of_successes(const std::vector<Event>& events, const Batch& batch) {
  // A job's key is its stored one, else the first its events in this batch carry.
  std::unordered_map<std::string, std::string> key_of;
  for (const auto& event : events) {
    if (event.idempotency_key.empty()) continue;
    const auto& row = batch.rows.at(event.job_id);
    key_of.try_emplace(event.job_id, row.idempotency_key.empty() ? event.idempotency_key : row.idempotency_key);
  }
  std::vector<std::string> keys;
  for (const auto& event : events) {
    if (event.state != State::succeeded) continue;
    const auto& row = batch.rows.at(event.job_id);
    if (!row.idempotency_key.empty()) {
      keys.push_back(row.idempotency_key);
    } else if (auto it = key_of.find(event.job_id); it != key_of.end()) {
      keys.push_back(it->second);
    }
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

void PostgresStore::load_stored_successes(pg::Connection& db, const std::vector<std::string>& keys, Batch& batch) {
  if (keys.empty()) return;
  auto rows = db.exec(
      "SELECT idempotency_key, id FROM job WHERE idempotency_key = ANY($1::text[]) AND successes > 0 ORDER BY id",
      Params().add_array(keys));
  for (int r = 0; r < rows.rows(); ++r) batch.stored_successes_by_key[rows.string(r, 0)].push_back(rows.integer(r, 1));
}

bool PostgresStore::write_batch(pg::Connection& db, const detail::BatchPlan& plan) {
  // New jobs go in with COPY, the fastest way in. A job ID another writer created since
  // load_rows() makes it fail on job_job_id_key: the append then starts over and finds the job.
  // Changed jobs are updated in place, each column travelling as one array.
  pg::CopyBuffer fresh;
  constexpr int row_columns = 21;  // the job table's columns after id and job_id
  ArrayLiteral changed_ids, changed[row_columns], noticed;
  bool any_changed = false;
  pg::CopyBuffer fresh_tags;
  ArrayLiteral tag_entities, tag_jobs;  // tags of stored jobs, which may have them already
  bool any_stored_tag = false;
  for (const auto& job : plan.jobs) {
    if (!job.changed()) continue;  // only redeliveries
    const detail::JobRow* row = job.row;
    const auto& life = row->life;
    // The last error is an event's seq: a pending event's, or a stored one's.
    const auto last_error_seq = row->last_error_pending
                                    ? std::optional<std::int64_t>(job.pending[*row->last_error_pending].seq)
                                    : row->last_error_stored;
    auto id_or_null = [](std::int64_t id) { return id ? std::optional<std::int64_t>(id) : std::nullopt; };
    const std::optional<std::int64_t> values[] = {
        id_or_null(row->job), id_or_null(row->queue), std::nullopt, std::nullopt, std::nullopt,
        std::int64_t{static_cast<int>(life.state)}, life.enqueued_at, life.started_at, life.finished_at,
        life.heartbeat_at, life.first_event_at, life.last_event_at, std::int64_t{life.attempts},
        std::int64_t{life.event_count}, std::int64_t{life.successes}, id_or_null(row->worker),
        last_error_seq,
        std::int64_t{life.tail.state}, std::int64_t{life.tail.attempt}, life.tail.at, std::int64_t{row->anomalies}};
    const std::string* texts[] = {&row->correlation_id, &row->parent_job_id, &row->idempotency_key};
    // Columns 2..4 (correlation_id, parent_job_id, idempotency_key) are text; the rest numbers.
    auto put = [&](auto& out, int column) {
      if (column >= 2 && column <= 4) {
        out.add_text_or_null(*texts[column - 2]);
      } else {
        out.add(values[column]);
      }
    };
    if (!row->stored) {
      fresh.add(row->id).add_text(row->job_id);
      for (int column = 0; column < row_columns; ++column) put(fresh, column);
      fresh.end_row();
      for (const auto* entity : job.entities) {
        fresh_tags.add_text(*entity).add(row->id);
        fresh_tags.end_row();
      }
      continue;
    }
    any_changed = true;
    changed_ids.add(row->id);
    noticed.add(std::int64_t{job.noticeable() ? 1 : 0});
    for (int column = 0; column < row_columns; ++column) put(changed[column], column);
    for (const auto* entity : job.entities) {
      tag_entities.add(std::string_view(*entity));
      tag_jobs.add(row->id);
      any_stored_tag = true;
    }
  }
  if (!fresh.empty()) {
    try {
      db.copy_in(R"SQL(COPY job (id, job_id, job, queue, correlation_id, parent_job_id, idempotency_key, state,
        enqueued_at, started_at, finished_at, heartbeat_at, first_at, last_at, attempts, events, successes,
        worker, last_error_seq, tail_state, tail_attempt, tail_at, anomalies) FROM STDIN)SQL",
                 fresh.data());
    } catch (const StoreError&) {
      if (db.last_sqlstate() == "23505") return false;  // unique violation: created meanwhile
      throw;
    }
  }
  if (any_changed) {
    Params params;
    params.add(changed_ids);
    for (int column = 0; column < row_columns; ++column) params.add(changed[column]);
    params.add(noticed);
    // anomalies: OR-ed, so a flag another batch set on this job since we read it stays.
    // changed: this transaction's ID (as the column's default gives new rows), unless the
    // write only adds heartbeats (JobPlan::noticeable).
    db.exec(R"SQL(
      UPDATE job j SET job = u.job, queue = u.queue, correlation_id = u.correlation_id,
             parent_job_id = u.parent_job_id, idempotency_key = u.idempotency_key, state = u.state,
             enqueued_at = u.enqueued_at, started_at = u.started_at, finished_at = u.finished_at,
             heartbeat_at = u.heartbeat_at, first_at = u.first_at, last_at = u.last_at,
             attempts = u.attempts, events = u.events, successes = u.successes, worker = u.worker,
             last_error_seq = u.last_error_seq, tail_state = u.tail_state, tail_attempt = u.tail_attempt,
             tail_at = u.tail_at, anomalies = j.anomalies | u.anomalies,
             changed = CASE WHEN u.noticed = 1 THEN pg_current_xact_id()::text::bigint ELSE j.changed END
      FROM unnest($1::bigint[], $2::integer[], $3::integer[], $4::text[], $5::text[], $6::text[],
                  $7::smallint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[],
                  $13::bigint[], $14::integer[], $15::integer[], $16::integer[], $17::integer[],
                  $18::integer[], $19::smallint[], $20::integer[], $21::bigint[], $22::integer[],
                  $23::integer[])
        AS u (id, job, queue, correlation_id, parent_job_id, idempotency_key, state, enqueued_at,
              started_at, finished_at, heartbeat_at, first_at, last_at, attempts, events, successes,
              worker, last_error_seq, tail_state, tail_attempt, tail_at, anomalies, noticed)
      WHERE j.id = u.id)SQL",
            params);
  }
  if (!plan.flag_others.empty()) {
    db.exec("UPDATE job SET anomalies = anomalies | $2, changed = pg_current_xact_id()::text::bigint "
            "WHERE id = ANY($1::bigint[])",
            Params()
                .add_array(plan.flag_others)
                .add(std::int64_t{detail::anomaly_bit(AnomalyKind::duplicate_idempotency_key)}));
  }
  write_events(db, plan);
  // A new job's tags are new; a stored job may carry some of them already.
  if (!fresh_tags.empty()) db.copy_in("COPY job_entity (entity, job) FROM STDIN", fresh_tags.data());
  if (any_stored_tag) {
    db.exec("INSERT INTO job_entity (entity, job) SELECT * FROM unnest($1::text[], $2::bigint[]) ON CONFLICT DO NOTHING",
            Params().add(tag_entities).add(tag_jobs));
  }
  if (!plan.anomalies.empty()) {
    ArrayLiteral jobs, kinds, others, details, times;
    for (const auto& anomaly : plan.anomalies) {
      jobs.add(anomaly.job);
      kinds.add(std::int64_t{static_cast<int>(anomaly.kind)});
      others.add(anomaly.other_job ? std::optional<std::int64_t>(anomaly.other_job) : std::nullopt);
      details.add(std::string_view(anomaly.detail));
      times.add(anomaly.at);
    }
    db.exec(R"SQL(
      INSERT INTO anomaly (job, kind, other_job, detail, at)
      SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::bigint[], $4::text[], $5::bigint[]))SQL",
            Params().add(jobs).add(kinds).add(others).add(details).add(times));
  }
  return true;
}

void PostgresStore::write_events(pg::Connection& db, const detail::BatchPlan& plan) {
  // PostgreSQL keeps text only as UTF-8; a program may write its errors in anything.
  auto error_text = [](const detail::PendingEvent& event, const std::string ErrorInfo::*part) {
    return event.error ? to_utf8_text(event.error->*part) : std::string();
  };
  if (method_ == EventInsert::copy) {
    pg::CopyBuffer rows;
    for (const auto& job : plan.jobs) {
      for (const auto& event : job.pending) {
        rows.add(job.row->id).add(std::int64_t{event.seq}).add(std::int64_t{static_cast<int>(event.state)});
        rows.add(event.at).add(std::int64_t{event.attempt});
        rows.add(event.worker ? std::optional<std::int64_t>(event.worker) : std::nullopt);
        rows.add_text_or_null(error_text(event, &ErrorInfo::error_class));
        rows.add_text_or_null(error_text(event, &ErrorInfo::message));
        rows.add_text_or_null(error_text(event, &ErrorInfo::backtrace));
        rows.end_row();
      }
    }
    if (!rows.empty()) {
      db.copy_in("COPY event (job, seq, state, at, attempt, worker, error_class, error_message, error_backtrace) "
                 "FROM STDIN",
                 rows.data());
    }
    return;
  }
  ArrayLiteral columns[9];
  bool any = false;
  for (const auto& job : plan.jobs) {
    for (const auto& event : job.pending) {
      any = true;
      columns[0].add(job.row->id);
      columns[1].add(std::int64_t{event.seq});
      columns[2].add(std::int64_t{static_cast<int>(event.state)});
      columns[3].add(event.at);
      columns[4].add(std::int64_t{event.attempt});
      columns[5].add(event.worker ? std::optional<std::int64_t>(event.worker) : std::nullopt);
      columns[6].add_text_or_null(error_text(event, &ErrorInfo::error_class));
      columns[7].add_text_or_null(error_text(event, &ErrorInfo::message));
      columns[8].add_text_or_null(error_text(event, &ErrorInfo::backtrace));
    }
  }
  if (!any) return;
  Params params;
  for (auto& column : columns) params.add(column);
  db.exec(R"SQL(
    INSERT INTO event (job, seq, state, at, attempt, worker, error_class, error_message, error_backtrace)
    SELECT * FROM unnest($1::bigint[], $2::integer[], $3::smallint[], $4::bigint[], $5::integer[],
                         $6::integer[], $7::text[], $8::text[], $9::text[]))SQL",
          params);
}

// ---- Reading -----------------------------------------------------------------------------

std::vector<JobRecord> PostgresStore::read_jobs(const pg::Result& rows) {
  return decode_rows(rows, [](const Row& row) {
    JobRecord job = detail::read_job_record(row);
    job.entities = row.rows.text_array(row.r, entities_column);
    return job;
  });
}

std::optional<JobRecord> PostgresStore::find_job(const std::string& job_id) {
  return guarded([&](pg::Connection& db) -> std::optional<JobRecord> {
    auto jobs = read_jobs(db.exec("SELECT " + job_columns + " WHERE j.job_id = $1", Params().add(job_id)));
    if (jobs.empty()) return std::nullopt;
    return std::move(jobs.front());
  });
}

std::vector<EventRecord> PostgresStore::events_of(const std::string& job_id) {
  return guarded([&](pg::Connection& db) {
    auto rows = db.exec(R"SQL(
      SELECT ev.state, ev.attempt, ev.at, w.text, ev.error_class, ev.error_message, ev.error_backtrace
      FROM event ev LEFT JOIN label w ON w.id = ev.worker
      WHERE ev.job = (SELECT id FROM job WHERE job_id = $1) ORDER BY ev.seq)SQL",
                        Params().add(job_id));
    auto events = decode_rows(rows, detail::read_event_record<Row>);
    detail::sort_in_lifecycle_order(events);
    return events;
  });
}

std::vector<JobRecord> PostgresStore::jobs_in_trace(const std::string& correlation_id) {
  return guarded([&](pg::Connection& db) {
    return read_jobs(db.exec("SELECT " + job_columns + " WHERE j.correlation_id = $1 ORDER BY j.first_at, j.id",
                             Params().add(correlation_id)));
  });
}

namespace {

/// A filter's values as bound parameters, added once and referred to by number ("$3") from
/// every branch of a query.
struct FilterParams : detail::FilterPlaceholders {
  std::string entity;
};

FilterParams add_filter_params(const JobFilter& filter, Params& params) {
  FilterParams names;
  const auto add = [&](auto value) {
    params.add(value);
    return "$" + std::to_string(params.size());
  };
  if (!filter.entity.empty()) names.entity = add(std::string_view(filter.entity));
  if (!filter.job.empty()) names.job = add(std::string_view(filter.job));
  if (!filter.queue.empty()) names.queue = add(std::string_view(filter.queue));
  if (filter.since) names.since = add(std::int64_t{*filter.since});
  if (filter.until) names.until = add(std::int64_t{*filter.until});
  if (filter.after) {
    names.after_first = add(std::int64_t{filter.after->first_event_at});
    names.after_row = add(std::int64_t{filter.after->row});
  }
  return names;
}

/// The entity's jobs first, always: without statistics (a store not yet analyzed) the planner
/// would rather walk every job newest first and probe each for the tag.
std::string tagged_prefix(const FilterParams& names) {
  if (names.entity.empty()) return "";
  return "WITH tagged AS MATERIALIZED (SELECT job FROM job_entity WHERE entity = " + names.entity + ") ";
}

/// " FROM job j WHERE ..." for the filter and one of its states (or any state).
std::string filter_sql(const JobFilter& filter, const FilterParams& names, std::optional<State> state, bool with_after) {
  // Only fixed SQL text is concatenated; every caller value is a bound parameter.
  std::string sql = names.entity.empty() ? " FROM job j" : " FROM tagged JOIN job j ON j.id = tagged.job";
  const auto conditions = detail::job_filter_conditions(filter, names, state, with_after);
  for (std::size_t i = 0; i < conditions.size(); ++i) sql += (i == 0 ? " WHERE " : " AND ") + conditions[i];
  return sql;
}

}  // namespace

std::vector<JobRecord> PostgresStore::list_jobs(const JobFilter& filter) {
  Params params;
  const FilterParams names = add_filter_params(filter, params);
  params.add(static_cast<std::int64_t>(filter.limit));
  const std::string order = " ORDER BY j.first_at DESC, j.id DESC LIMIT $" + std::to_string(params.size());
  // One index range per state, each in list order and cut at the limit, merged here.
  std::string branches;
  for (const auto& state : detail::states_to_scan(filter)) {
    if (!branches.empty()) branches += " UNION ALL ";
    branches += "(SELECT j.id" + filter_sql(filter, names, state, true) + order + ")";
  }
  const std::string sql =
      tagged_prefix(names) + "SELECT " + job_columns + " WHERE j.id IN (" + branches + ")" + order;
  return guarded([&](pg::Connection& db) { return read_jobs(db.exec(sql, params)); });
}

std::int64_t PostgresStore::count_jobs(const JobFilter& filter, std::int64_t at_most) {
  Params params;
  const FilterParams names = add_filter_params(filter, params);
  params.add(at_most);
  const std::string limit = " LIMIT $" + std::to_string(params.size());
  // Each state counted up to at_most: the sum may pass it, which the caller only compares.
  std::string branches;
  for (const auto& state : detail::states_to_scan(filter)) {
    if (!branches.empty()) branches += " + ";
    branches += "(SELECT count(*) FROM (SELECT 1" + filter_sql(filter, names, state, true) + limit + ") c)";
  }
  const std::string sql = tagged_prefix(names) + "SELECT " + branches;
  return guarded([&](pg::Connection& db) { return std::min(at_most, db.exec(sql, params).integer(0, 0)); });
}

ChangePosition PostgresStore::last_change() {
  if (const int version = schema_version(); version < 4) throw detail::no_change_order(location(), version);
  // Every transaction below the oldest one still running has ended: its rows are visible to
  // a later statement, and no later commit can take a number below it.
  return guarded([&](pg::Connection& db) {
    return ChangePosition{db.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint").integer(0, 0) - 1,
                          std::numeric_limits<std::int64_t>::max()};
  });
}

ChangedJobs PostgresStore::changed_jobs(const JobFilter& filter, const ChangePosition& after) {
  JobFilter unpaged = filter;
  unpaged.after.reset();
  Params params;
  const FilterParams names = add_filter_params(unpaged, params);
  params.add(after.change);
  const std::string change = "$" + std::to_string(params.size());
  params.add(after.row);
  const std::string row = "$" + std::to_string(params.size());
  std::string sql = "SELECT j.id" + filter_sql(unpaged, names, std::nullopt, false);
  // Only writes of ended transactions (below the snapshot's xmin), from `after` on: a range of
  // job_by_change, (changed, id) in order. The horizon is this statement's own snapshot.
  sql += (sql.find(" WHERE ") == std::string::npos ? " WHERE " : " AND ") + std::string("(j.changed, j.id) > (") +
         change + ", " + row + ") AND j.changed < pg_snapshot_xmin(pg_current_snapshot())::text::bigint";
  const std::string states = detail::state_numbers(filter.states);
  if (!states.empty()) sql += " AND j.state IN (" + states + ")";
  params.add(static_cast<std::int64_t>(filter.limit));
  sql += " ORDER BY j.changed, j.id LIMIT $" + std::to_string(params.size());
  const std::string query = tagged_prefix(names) + "SELECT " + std::string(job_select) + ", j.changed, " +
                            "pg_snapshot_xmin(pg_current_snapshot())::text::bigint" + job_from + " WHERE j.id IN (" +
                            sql + ") ORDER BY j.changed, j.id";
  return guarded([&](pg::Connection& db) {
    // One snapshot for the horizon and the rows, so `next` covers exactly what was looked at.
    pg::Transaction snapshot(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const pg::Result rows = db.exec(query, params);
    ChangedJobs changed{read_jobs(rows), after};
    if (changed.jobs.size() == filter.limit) {
      changed.next = {rows.integer(rows.rows() - 1, entities_column + 1), changed.jobs.back().row};
    } else {
      // Everything below the horizon was looked at, matching or not.
      const std::int64_t horizon =
          rows.rows() > 0 ? rows.integer(0, entities_column + 2)
                          : db.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint").integer(0, 0);
      changed.next = std::max(after, ChangePosition{horizon - 1, std::numeric_limits<std::int64_t>::max()});
    }
    snapshot.commit();
    return changed;
  });
}

std::vector<JobStats> PostgresStore::stats(const StatsFilter& filter) {
  // One row per job; the counts and percentiles are JobStatsBuilder's, as on SQLite. Only
  // fixed SQL text is concatenated (the grouping column); every caller value is a bound parameter.
  const bool by_queue = filter.by == StatsGroup::queue;
  Params params;
  params.add(filter.since ? *filter.since : std::numeric_limits<std::int64_t>::min());
  params.add(filter.until ? *filter.until : std::numeric_limits<std::int64_t>::max());
  std::string only_class;
  if (!filter.job.empty()) {
    params.add(filter.job);
    only_class = " AND j.job = (SELECT id FROM label WHERE text = $3)";
  }
  return guarded([&](pg::Connection& db) {
    auto rows = db.exec(std::string("SELECT (SELECT text FROM label WHERE id = ") + (by_queue ? "j.queue" : "j.job") +
                            R"SQL(), j.state, j.started_at - j.enqueued_at, j.finished_at - j.started_at
      FROM job j WHERE j.first_at >= $1 AND j.first_at < $2)SQL" + only_class,
                        params);
    detail::JobStatsBuilder builder;
    for (int r = 0; r < rows.rows(); ++r) {
      builder.add(rows.string(r, 0), static_cast<State>(rows.integer(r, 1)), rows.optional_integer(r, 2),
                  rows.optional_integer(r, 3));
    }
    auto result = builder.finish();
    if (by_queue) {
      for (auto& stats : result) stats.queue = std::move(stats.job), stats.job.clear();
    }
    return result;
  });
}

std::vector<AnomalyRecord> PostgresStore::anomalies(const std::string& job_id, std::size_t limit) {
  Params params;
  constexpr std::string_view columns = R"SQL(
    SELECT j.job_id, a.kind, o.job_id, a.detail, a.at, a.id
    FROM anomaly a JOIN job j ON j.id = a.job LEFT JOIN job o ON o.id = a.other_job)SQL";
  std::string sql(columns);
  if (!job_id.empty()) {
    // The job's own flags, and those of later jobs that succeeded under its idempotency key
    // (flagged on them, naming this job): job_by_idempotency_key, then anomaly_by_job.
    params.add(job_id);
    sql += " WHERE a.job = (SELECT id FROM job WHERE job_id = $1) UNION ALL ";
    sql += columns;
    sql += R"SQL( JOIN job me ON me.job_id = $1 AND me.idempotency_key IS NOT NULL
      WHERE j.idempotency_key = me.idempotency_key AND j.id <> me.id AND a.other_job = me.id)SQL";
  }
  params.add(static_cast<std::int64_t>(limit));
  sql += " ORDER BY 5 DESC, 6 DESC LIMIT $" + std::to_string(params.size());
  return guarded([&](pg::Connection& db) { return decode_rows(db.exec(sql, params), detail::read_anomaly_record<Row>); });
}

std::vector<std::string> PostgresStore::job_ids_with_prefix(const std::string& prefix, std::size_t limit) {
  if (prefix.empty()) return {};
  // job_id is COLLATE "C", so a LIKE with a fixed start is a range of its unique index; the
  // caller's text is a bound parameter with LIKE's own characters escaped.
  std::string pattern;
  for (const char c : prefix) {
    if (c == '\\' || c == '%' || c == '_') pattern += '\\';
    pattern += c;
  }
  pattern += '%';
  return guarded([&](pg::Connection& db) {
    auto rows = db.exec("SELECT job_id FROM job WHERE job_id LIKE $1 ORDER BY job_id LIMIT $2",
                        Params().add(pattern).add(static_cast<std::int64_t>(limit)));
    std::vector<std::string> ids;
    for (int r = 0; r < rows.rows(); ++r) ids.push_back(rows.string(r, 0));
    return ids;
  });
}

std::vector<std::string> PostgresStore::job_ids_near(const std::string& job_id, std::size_t limit) {
  if (job_id.empty()) return {};
  return guarded([&](pg::Connection& db) {
    auto rows = db.exec(R"SQL(
      (SELECT job_id FROM job WHERE job_id < $1 ORDER BY job_id DESC LIMIT $2)
      UNION ALL (SELECT job_id FROM job WHERE job_id > $1 ORDER BY job_id LIMIT $2))SQL",
                        Params().add(job_id).add(static_cast<std::int64_t>(limit)));
    std::vector<std::string> ids;
    for (int r = 0; r < rows.rows(); ++r) ids.push_back(rows.string(r, 0));
    std::sort(ids.begin(), ids.end());
    return ids;
  });
}

ImpactReport PostgresStore::impact(const ImpactFilter& filter) {
  // The jobs from one index range (job_by_class, job_by_state or job_by_first_at), their tags
  // from job_entity_by_job. Only fixed SQL text is concatenated; caller values are parameters.
  // With max_jobs, the newest that many, their tags joined after the limit.
  Params params;
  params.add(filter.since ? *filter.since : std::numeric_limits<std::int64_t>::min());
  params.add(filter.until ? *filter.until : std::numeric_limits<std::int64_t>::max());
  // Only the IDs the report lists are looked up, afterwards.
  std::string jobs = "SELECT j.id, j.first_at FROM job j WHERE j.first_at >= $1 AND j.first_at < $2";
  if (!filter.job.empty()) {
    params.add(filter.job);
    jobs += " AND j.job = (SELECT id FROM label WHERE text = $3)";
  }
  if (!filter.states.empty()) {
    std::vector<std::int64_t> states;
    bool succeeded = false;
    for (const State state : filter.states) {
      states.push_back(static_cast<int>(state));
      succeeded = succeeded || state == State::succeeded;
    }
    params.add_array(states);
    jobs += " AND j.state = ANY($" + std::to_string(params.size()) + "::smallint[])";
    // Lets the planner use the partial index job_by_state (WHERE state <> 4).
    if (!succeeded) jobs += " AND j.state <> 4";
  }
  if (filter.max_jobs != 0) {
    params.add(static_cast<std::int64_t>(std::min<std::size_t>(filter.max_jobs, INT64_MAX)));
    jobs += " ORDER BY j.first_at DESC, j.id DESC LIMIT $" + std::to_string(params.size());
  }
  const std::string sql = "SELECT je.entity, j.id, j.first_at FROM (" + jobs +
                          ") j LEFT JOIN job_entity je ON je.job = j.id";
  detail::ImpactBuilder builder(filter);
  guarded([&](pg::Connection& db) {
    auto rows = db.exec(sql, params);
    for (int r = 0; r < rows.rows(); ++r) {
      builder.add(rows.string(r, 0), rows.integer(r, 1), rows.integer(r, 2));
    }
  });
  const auto name = [&](const std::vector<std::int64_t>& job_rows) {
    return guarded([&](pg::Connection& db) {
      auto named = db.exec("SELECT id, job_id FROM job WHERE id = ANY($1::bigint[])", Params().add_array(job_rows));
      std::unordered_map<std::int64_t, std::string> by_row;
      for (int r = 0; r < named.rows(); ++r) by_row.emplace(named.integer(r, 0), named.string(r, 1));
      std::vector<std::string> ids;
      for (const std::int64_t row : job_rows) ids.push_back(by_row[row]);
      return ids;
    });
  };
  // Outside `guarded`: the count and the names are store calls of their own.
  return detail::finish_impact(*this, filter, builder, name);
}

namespace {
// What prune deletes, written once for prune and prunable ($1: the cutoff).
constexpr std::string_view prunable_jobs = "first_at < $1 AND last_at < $1 AND state NOT IN (1, 2)";
constexpr std::string_view prunable_check_results = R"SQL(
      r.started_at < $1
      AND r.run < (SELECT max(n.run) FROM check_result n WHERE n.check_name = r.check_name)
      AND NOT (r.status = 0 AND r.run = (SELECT max(p.run) FROM check_result p
                                         WHERE p.check_name = r.check_name AND p.status = 0)))SQL";
}  // namespace

PruneResult PostgresStore::prunable(Micros cutoff) {
  return guarded([&](pg::Connection& db) {
    pg::Transaction snapshot(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    PruneResult result;
    auto jobs = db.exec("SELECT count(*), coalesce(sum(events), 0) FROM job WHERE " + std::string(prunable_jobs),
                        Params().add(cutoff));
    result.jobs = jobs.integer(0, 0);
    result.events = jobs.integer(0, 1);
    result.check_results =
        db.exec("SELECT count(*) FROM check_result r WHERE " + std::string(prunable_check_results), Params().add(cutoff))
            .integer(0, 0);
    snapshot.commit();
    return result;
  });
}

SpaceReport PostgresStore::reclaim_space() {
  require_writable();
  constexpr const char* size_sql = R"SQL(
    SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'jobtrail' AND c.relkind = 'r')SQL";
  return guarded([&](pg::Connection& db) {
    SpaceReport report;
    report.bytes_before = report.bytes_after = db.execute(size_sql).integer(0, 0);
    try {
      // Plain VACUUM takes no lock that stops writers: it makes the deleted rows' space
      // reusable and hands empty pages at the end of each table back to the file system.
      db.execute("VACUUM (ANALYZE) job, event, job_entity, anomaly, check_result, check_violation, check_run");
      report.note = "VACUUM made the freed space reusable and gave back empty pages at the ends of the tables; "
                    "VACUUM FULL (which locks the tables while it rewrites them) gives back the rest";
    } catch (const StoreError& error) {
      if (error.kind() != StoreError::Kind::other) throw;
      report.note = std::string("could not VACUUM (") + error.what() +
                    "); the space stays reusable by new events, and the table owner can run VACUUM";
    }
    report.bytes_after = db.execute(size_sql).integer(0, 0);
    return report;
  });
}

PruneResult PostgresStore::prune(Micros cutoff) {
  require_writable();
  PruneResult result;
  // Chunks keep each transaction short. SKIP LOCKED: a job a writer is updating right now is not
  // waited for; it is recent anyway, or the next prune takes it. The jobs are locked first and
  // their rows deleted by separate statements, so each DELETE sees whatever a writer committed
  // to those jobs before the lock: nothing of a pruned job stays behind.
  constexpr std::int64_t chunk = 5000;
  for (;;) {
    const auto [jobs, events] = guarded([&](pg::Connection& db) {
      pg::Transaction transaction(db);
      auto picked = db.exec(R"SQL(
        SELECT coalesce(array_agg(id), '{}') FROM (
          SELECT id FROM job WHERE )SQL" + std::string(prunable_jobs) + R"SQL(
          LIMIT $2 FOR UPDATE SKIP LOCKED) p)SQL",
                            Params().add(cutoff).add(chunk));
      const std::string ids = picked.string(0, 0);
      Params batch;
      batch.add(std::string_view(ids));
      const auto events_deleted = db.exec("DELETE FROM event WHERE job = ANY($1::bigint[])", batch).affected();
      db.exec("DELETE FROM job_entity WHERE job = ANY($1::bigint[])", batch);
      db.exec("DELETE FROM anomaly WHERE job = ANY($1::bigint[])", batch);
      const auto deleted = db.exec("DELETE FROM job WHERE id = ANY($1::bigint[])", batch).affected();
      transaction.commit();
      return std::pair{deleted, events_deleted};
    });
    result.jobs += jobs;
    result.events += events;
    if (jobs < chunk) break;
  }
  // The check history: one row per check per run; each check's newest result (what the next
  // run compares with) and newest pass (when it last passed) stay whatever their age.
  result.check_results = guarded([&](pg::Connection& db) {
    pg::Transaction transaction(db);
    const auto deleted = db.exec("DELETE FROM check_result r WHERE " + std::string(prunable_check_results),
                                 Params().add(cutoff))
                             .affected();
    db.execute(R"SQL(
      DELETE FROM check_violation v WHERE NOT EXISTS (
        SELECT 1 FROM check_result r WHERE r.check_name = v.check_name AND r.run = v.run))SQL");
    db.execute("DELETE FROM check_run c WHERE NOT EXISTS (SELECT 1 FROM check_result r WHERE r.run = c.id)");
    transaction.commit();
    return deleted;
  });
  return result;
}

void PostgresStore::register_schedule(const Schedule& schedule) {
  require_writable();
  detail::check_schedule(schedule);
  guarded([&](pg::Connection& db) {
    db.exec(R"SQL(
      WITH l AS (INSERT INTO label (text) VALUES ($1) ON CONFLICT (text) DO UPDATE SET text = EXCLUDED.text
                 RETURNING id)
      INSERT INTO schedule (job, every_us, grace_us, updated_at) SELECT id, $2, $3, $4 FROM l
      ON CONFLICT (job) DO UPDATE SET every_us = EXCLUDED.every_us, grace_us = EXCLUDED.grace_us,
                                      updated_at = EXCLUDED.updated_at)SQL",
            Params()
                .add(schedule.job)
                .add(schedule.every)
                .add(schedule.grace)
                .add(schedule.updated_at ? schedule.updated_at : now_micros()));
    return 0;
  });
}

std::vector<Schedule> PostgresStore::schedules() {
  return guarded([&](pg::Connection& db) {
    // The newest job of a class is the last entry of its range in job_by_class.
    auto rows = db.execute(R"SQL(
      SELECT l.text, s.every_us, s.grace_us, s.updated_at,
             (SELECT max(j.first_at) FROM job j WHERE j.job = s.job)
      FROM schedule s JOIN label l ON l.id = s.job ORDER BY l.text COLLATE "C")SQL");
    return decode_rows(rows, detail::read_schedule<Row>);
  });
}

std::vector<JobTally> PostgresStore::tally(const std::vector<Micros>& bounds) {
  detail::check_tally_bounds(bounds);
  // One range of job_by_first_at, each job counted in its slice (width_bucket: 1 for the
  // first slice), grouped by the server.
  return guarded([&](pg::Connection& db) {
    auto rows = db.exec(R"SQL(
      SELECT coalesce(c.text, ''), t.slice, t.state, t.n FROM (
        SELECT job, width_bucket(first_at, $1::bigint[]) - 1 AS slice, state, count(*) AS n
        FROM job WHERE first_at >= $2 AND first_at < $3 GROUP BY 1, 2, 3) t
      LEFT JOIN label c ON c.id = t.job)SQL",
                        Params().add_array(bounds).add(bounds.front()).add(bounds.back()));
    detail::TallyBuilder builder;
    for (int r = 0; r < rows.rows(); ++r) {
      builder.add(rows.string(r, 0), static_cast<std::size_t>(rows.integer(r, 1)), static_cast<State>(rows.integer(r, 2)),
                  rows.integer(r, 3));
    }
    return builder.finish();
  });
}

std::vector<ActiveJobs> PostgresStore::active_jobs() {
  // Two ranges of the partial index job_by_state, one per state: the cost does not grow with
  // the succeeded jobs the store holds. greatest() skips NULLs.
  return guarded([&](pg::Connection& db) {
    auto rows = db.execute(R"SQL(
      SELECT c.text, qu.text, a.state, a.n, a.oldest, a.silent FROM (
        SELECT job, queue, 1 AS state, count(*) AS n, min(coalesce(enqueued_at, first_at)) AS oldest,
               NULL::bigint AS silent
        FROM job WHERE state = 1 GROUP BY job, queue
        UNION ALL
        SELECT job, queue, 2 AS state, count(*) AS n, min(coalesce(started_at, first_at)) AS oldest,
               min(greatest(started_at, heartbeat_at, first_at)) AS silent
        FROM job WHERE state = 2 GROUP BY job, queue) a
      LEFT JOIN label c ON c.id = a.job LEFT JOIN label qu ON qu.id = a.queue
      ORDER BY c.text COLLATE "C" NULLS FIRST, qu.text COLLATE "C" NULLS FIRST, a.state)SQL");
    detail::ActiveJobsBuilder result;
    for (int r = 0; r < rows.rows(); ++r) {
      result.add(rows.string(r, 0), rows.string(r, 1), static_cast<State>(rows.integer(r, 2)), rows.integer(r, 3),
                 rows.integer(r, 4), rows.optional_integer(r, 5));
    }
    return result.finish();
  });
}

// ---- Built-in checks over the job history -------------------------------------------------
// Each selects candidate ids through one index range, then reads full records only for the
// jobs it returns.

JobFindings PostgresStore::run_check_query(std::string_view sql, Micros bound, const JobDeadlines* deadlines,
                                           Micros now, std::size_t limit) {
  return guarded([&](pg::Connection& db) {
    pg::Transaction snapshot(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    auto candidates = db.exec(std::string(sql), Params().add(bound));
    auto findings = findings_of(db, candidates, deadlines, now, limit);
    snapshot.commit();
    return findings;
  });
}

// candidates: (id, job class, time of interest[, anomaly bits]); with `deadlines`, a job is kept
// when its time is before now minus its class's deadline.
JobFindings PostgresStore::findings_of(pg::Connection& db, const pg::Result& candidates,
                                       const JobDeadlines* deadlines, Micros now, std::size_t limit) {
  detail::FindingsBuilder found(limit);
  for (int r = 0; r < candidates.rows(); ++r) {
    if (deadlines) {
      found.add_if_past(candidates.integer(r, 0), candidates.string(r, 1), candidates.integer(r, 2), *deadlines, now);
    } else if (candidates.columns() == 4) {
      found.add_anomalies(candidates.integer(r, 0), static_cast<std::uint32_t>(candidates.integer(r, 3)));
    } else {
      found.add(candidates.integer(r, 0));
    }
  }
  std::map<std::int64_t, JobRecord> records;
  if (!found.ids().empty()) {
    for (JobRecord& job : read_jobs(db.exec("SELECT " + job_columns + " WHERE j.id = ANY($1::bigint[])",
                                            Params().add_array(found.ids())))) {
      records.emplace(job.row, std::move(job));
    }
  }
  return found.finish([&](std::int64_t id) -> std::optional<JobRecord> {
    auto it = records.find(id);
    if (it == records.end()) return std::nullopt;
    return it->second;
  });
}

JobFindings PostgresStore::stuck_jobs(const JobDeadlines& deadlines, Micros now, std::size_t limit) {
  return run_check_query(pg::check_queries::stuck, now - deadlines.shortest(), &deadlines, now, limit);
}

JobFindings PostgresStore::lost_jobs(const JobDeadlines& deadlines, Micros now, std::size_t limit) {
  return run_check_query(pg::check_queries::lost, now - deadlines.shortest(), &deadlines, now, limit);
}

JobFindings PostgresStore::duplicate_executions(Micros since, std::size_t limit) {
  return run_check_query(pg::check_queries::duplicates, since, nullptr, 0, limit);
}

JobFindings PostgresStore::dead_jobs(Micros since, std::size_t limit) {
  return run_check_query(pg::check_queries::dead, since, nullptr, 0, limit);
}

// ---- The check history -------------------------------------------------------------------

std::int64_t PostgresStore::record_check_run(const CheckRunRecord& run) {
  require_writable();
  return guarded([&](pg::Connection& db) {
    pg::Transaction transaction(db);
    auto inserted = db.exec("INSERT INTO check_run (started_at, finished_at, config) VALUES ($1, $2, $3) RETURNING id",
                            Params().add(run.started_at).add(run.finished_at).add_text_or_null(to_utf8_text(run.config)));
    const std::int64_t run_id = inserted.integer(0, 0);
    for (const auto& result : run.results) {
      db.exec(R"SQL(
        INSERT INTO check_result (check_name, run, status, severity, violations, new_violations, resolved,
                                  complete, started_at, duration_us, error)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11))SQL",
              Params()
                  .add(result.check)
                  .add(run_id)
                  .add(std::int64_t{static_cast<int>(result.status)})
                  .add(result.severity.empty() ? std::string_view("error") : std::string_view(result.severity))
                  .add(result.violations)
                  .add(result.new_violations)
                  .add(result.resolved)
                  .add(result.fingerprints_complete ? "true" : "false")
                  .add(result.started_at)
                  .add(result.duration)
                  .add_text_or_null(to_utf8_text(result.error)));
      if (!result.failing.empty()) {
        ArrayLiteral fingerprints, first_seen, samples, entities;
        for (const auto& violation : result.failing) {
          fingerprints.add(std::string_view(violation.fingerprint));
          first_seen.add(violation.first_seen_at);
          samples.add_text_or_null(to_utf8_text(violation.sample));
          entities.add_text_or_null(to_utf8_text(violation.entity));
        }
        db.exec(R"SQL(
          INSERT INTO check_violation (check_name, run, fingerprint, first_seen_at, sample, entity)
          SELECT $1, $2, * FROM unnest($3::text[], $4::bigint[], $5::text[], $6::text[]) ON CONFLICT DO NOTHING)SQL",
                Params().add(result.check).add(run_id).add(fingerprints).add(first_seen).add(samples).add(entities));
      }
      db.exec(R"SQL(
        DELETE FROM check_violation WHERE check_name = $1 AND run < (
          SELECT min(run) FROM (SELECT run FROM check_result WHERE check_name = $1 ORDER BY run DESC LIMIT $2) s))SQL",
              Params().add(result.check).add(std::int64_t{detail::kept_violation_runs}));
    }
    transaction.commit();
    return run_id;
  });
}

std::vector<CheckViolation> PostgresStore::check_violations(const std::string& check, std::int64_t run) {
  const std::string sql = detail::check_violation_columns(schema_version()) + "WHERE check_name = $1 AND run = $2";
  return guarded([&](pg::Connection& db) {
    return decode_rows(db.exec(sql, Params().add(check).add(run)), detail::read_check_violation<Row>);
  });
}

std::vector<CheckResultRecord> PostgresStore::check_history(const std::string& check, std::size_t limit) {
  return guarded([&](pg::Connection& db) {
    return decode_rows(db.exec(std::string(detail::check_result_columns) + "WHERE check_name = $1 ORDER BY run DESC LIMIT $2",
                               Params().add(check).add(static_cast<std::int64_t>(limit))),
                       detail::read_check_result<Row>);
  });
}

std::vector<std::string> PostgresStore::check_names() {
  return guarded([&](pg::Connection& db) {
    auto rows = db.exec("SELECT DISTINCT check_name FROM check_result ORDER BY check_name", Params());
    std::vector<std::string> names;
    for (int r = 0; r < rows.rows(); ++r) names.push_back(rows.string(r, 0));
    return names;
  });
}

std::optional<Micros> PostgresStore::last_check_success(const std::string& check) {
  return guarded([&](pg::Connection& db) -> std::optional<Micros> {
    // The newest entry of check_result_passed.
    auto rows = db.exec(
        "SELECT started_at FROM check_result WHERE check_name = $1 AND status = 0 ORDER BY run DESC LIMIT 1",
        Params().add(check));
    if (rows.rows() == 0) return std::nullopt;
    return rows.integer(0, 0);
  });
}

}  // namespace jobtrail
