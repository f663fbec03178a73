#include "sqlite/sqlite_schema.h"

#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace jobtrail::sqlite {

namespace {

// Hex IDs are stored as blobs (see sqlite_store.cpp); the views turn them back into text.
std::string id_text(const std::string& column) {
  return "CASE WHEN typeof(" + column + ") = 'blob' THEN lower(hex(" + column + ")) ELSE " + column + " END";
}

// A job's first time is microseconds since the store's epoch (meta.epoch_us), its other times
// microseconds since its first; the views add them up so that SQL checks and people read
// absolute microseconds since the Unix epoch.
std::string schema_v1(Micros epoch) {
  const std::string e = std::to_string(epoch);
  return R"SQL(
CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('epoch_us', )SQL" + e + R"SQL();

-- Low-cardinality names (job classes, queues, workers), stored once and referred to by id.
CREATE TABLE label (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);

-- Correlation IDs, stored once per request: a trace is one look-up of an integer.
CREATE TABLE correlation (id INTEGER PRIMARY KEY, text NOT NULL UNIQUE);  -- text or blob

-- One row per job, derived from its events.
CREATE TABLE job (
  id INTEGER PRIMARY KEY,
  job_id NOT NULL UNIQUE,  -- text, or a blob for hex IDs
  job INTEGER,
  queue INTEGER,
  correlation INTEGER,
  parent_job_id,  -- text, or a blob for hex IDs
  idempotency_key TEXT,
  state INTEGER NOT NULL,
  enqueued_at INTEGER,  -- this and the other times: microseconds after first_at
  started_at INTEGER,
  finished_at INTEGER,
  heartbeat_at INTEGER,
  first_at INTEGER NOT NULL,
  last_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  events INTEGER NOT NULL,
  successes INTEGER NOT NULL,
  worker INTEGER,
  last_error INTEGER,
  tail_state INTEGER NOT NULL,
  tail_attempt INTEGER NOT NULL,
  tail_at INTEGER,  -- NULL when equal to last_at, the common case
  anomalies INTEGER NOT NULL
);
CREATE INDEX job_by_correlation ON job (correlation) WHERE correlation IS NOT NULL;
CREATE INDEX job_by_first_at ON job (first_at);
-- Succeeded jobs are the bulk and are found through job_by_first_at; the index keeps the rest.
CREATE INDEX job_by_state ON job (state, first_at) WHERE state != 4;
CREATE INDEX job_by_class ON job (job, first_at);
CREATE INDEX job_by_idempotency_key ON job (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX job_with_anomalies ON job (first_at) WHERE anomalies != 0;

-- The append-only history, clustered by job so a job's timeline is one range read.
CREATE TABLE event (
  job INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  state INTEGER NOT NULL,
  at INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  worker INTEGER,
  error INTEGER,
  PRIMARY KEY (job, seq)
) WITHOUT ROWID;

CREATE TABLE error (id INTEGER PRIMARY KEY, class TEXT, message TEXT, backtrace TEXT);

CREATE TABLE entity (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE job_entity (
  entity INTEGER NOT NULL,
  job INTEGER NOT NULL,
  PRIMARY KEY (entity, job)
) WITHOUT ROWID;
CREATE INDEX job_entity_by_job ON job_entity (job);

CREATE TABLE anomaly (
  id INTEGER PRIMARY KEY,
  job INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  other_job INTEGER,
  detail TEXT,
  at INTEGER NOT NULL
);
CREATE INDEX anomaly_by_job ON anomaly (job);

-- Readable views for SQL checks and ad-hoc queries: names instead of ids, absolute times.
CREATE VIEW jobs AS
SELECT )SQL" + id_text("j.job_id") + R"SQL( AS job_id, c.text AS job, q.text AS queue,
       )SQL" + id_text("co.text") + R"SQL( AS correlation_id,
       )SQL" + id_text("j.parent_job_id") + R"SQL( AS parent_job_id,
       j.idempotency_key,
       CASE j.state WHEN 1 THEN 'enqueued' WHEN 2 THEN 'started' WHEN 4 THEN 'succeeded'
                    WHEN 5 THEN 'failed' WHEN 6 THEN 'dead' WHEN 7 THEN 'cancelled' END AS state,
       )SQL" + e + R"SQL( + j.first_at + j.enqueued_at AS enqueued_at,
       )SQL" + e + R"SQL( + j.first_at + j.started_at AS started_at,
       )SQL" + e + R"SQL( + j.first_at + j.finished_at AS finished_at,
       )SQL" + e + R"SQL( + j.first_at + j.heartbeat_at AS heartbeat_at,
       )SQL" + e + R"SQL( + j.first_at AS first_event_at,
       )SQL" + e + R"SQL( + j.first_at + j.last_at AS last_event_at,
       j.attempts, j.successes, w.text AS worker, err.class AS error_class,
       err.message AS error_message, j.anomalies != 0 AS flagged
FROM job j
LEFT JOIN label c ON c.id = j.job
LEFT JOIN label q ON q.id = j.queue
LEFT JOIN label w ON w.id = j.worker
LEFT JOIN correlation co ON co.id = j.correlation
LEFT JOIN error err ON err.id = j.last_error;

CREATE VIEW job_entities AS
SELECT )SQL" + id_text("j.job_id") + R"SQL( AS job_id, e.name AS entity,
       substr(e.name, 1, instr(e.name, ':') - 1) AS entity_type,
       substr(e.name, instr(e.name, ':') + 1) AS entity_id
FROM job_entity je JOIN entity e ON e.id = je.entity JOIN job j ON j.id = je.job;
)SQL";
}

// Version 2: the expected schedules of cron-like jobs (jobtrail exec --every), so that the
// checker can tell a run that never happened.
constexpr const char* schema_v2 = R"SQL(
CREATE TABLE schedule (
  job INTEGER PRIMARY KEY,  -- label id of the job class
  every_us INTEGER NOT NULL,
  grace_us INTEGER NOT NULL,
  updated_at INTEGER NOT NULL  -- microseconds since the store's epoch
);
CREATE VIEW schedules AS
SELECT l.text AS job, s.every_us, s.grace_us,
       s.updated_at + (SELECT value FROM meta WHERE key = 'epoch_us') AS updated_at
FROM schedule s JOIN label l ON l.id = s.job;
)SQL";

// Version 3: the checker's history (runs, per-check results, failing-row fingerprints) and
// indexes that let the built-in checks read only the jobs they flag.
constexpr const char* schema_v3 = R"SQL(
CREATE TABLE check_run (
  id INTEGER PRIMARY KEY,
  started_at INTEGER NOT NULL,  -- this and the other check times: microseconds since the epoch
  finished_at INTEGER NOT NULL,
  config TEXT
);
CREATE TABLE check_result (
  check_name TEXT NOT NULL,
  run INTEGER NOT NULL,
  status INTEGER NOT NULL,  -- 0 pass, 1 warn, 2 fail, 3 error
  severity TEXT NOT NULL,
  violations INTEGER NOT NULL,
  new_violations INTEGER NOT NULL,
  resolved INTEGER NOT NULL,
  complete INTEGER NOT NULL,  -- every failing row was fingerprinted
  started_at INTEGER NOT NULL,
  duration_us INTEGER NOT NULL,
  error TEXT,
  PRIMARY KEY (check_name, run)
) WITHOUT ROWID;
-- "When did this check last pass?" for the last-success metric: the newest entry of a range.
CREATE INDEX check_result_passed ON check_result (check_name, run) WHERE status = 0;
CREATE TABLE check_violation (
  check_name TEXT NOT NULL,
  run INTEGER NOT NULL,
  fingerprint TEXT NOT NULL,
  first_seen_at INTEGER NOT NULL,
  sample TEXT,  -- JSON of the row, for the first rows of a run only
  PRIMARY KEY (check_name, run, fingerprint)
) WITHOUT ROWID;
CREATE VIEW check_results AS
SELECT r.check_name, r.run,
       CASE r.status WHEN 0 THEN 'pass' WHEN 1 THEN 'warn' WHEN 2 THEN 'fail' ELSE 'error' END AS status,
       r.severity, r.violations, r.new_violations, r.resolved,
       r.started_at + (SELECT value FROM meta WHERE key = 'epoch_us') AS started_at,
       r.duration_us, r.error
FROM check_result r;

-- A started job's last sign of life is its start or its latest heartbeat, whichever is later
-- (times are relative to first_at). Indexed by that, the stuck check reads only stuck jobs,
-- however many long-running jobs are still healthy.
CREATE INDEX job_started_by_activity
  ON job (first_at + max(coalesce(started_at, 0), coalesce(heartbeat_at, 0))) WHERE state = 2;
-- Dead jobs by the time they died, for "dead in the last 24 hours".
CREATE INDEX job_dead_by_last_at ON job (first_at + last_at) WHERE state = 6;
)SQL";

// Version 4: the order in which job rows were written, for `ls --follow`: a job that changes
// state moves to the end of job_by_change, so a follower reads only what was written since its
// last look, new jobs and changed ones alike. Each append takes the next number of
// meta.change_seq inside its write transaction; SQLite has one writer at a time, so the numbers
// grow in commit order. Rows written before version 4 keep 0, older than any follower.
constexpr const char* schema_v4 = R"SQL(
ALTER TABLE job ADD COLUMN changed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX job_by_change ON job (changed);
INSERT INTO meta (key, value) VALUES ('change_seq', 0);
)SQL";

// Version 5 also keeps the entity of a failing row of a check with `entity:`
// (check_violation.entity), so the console links the row to the jobs that touched it.
// Version 5: how many jobs of each class, first seen in each bucket of time
// (tally_bucket_length), are in each state, kept by every write that changes a job (the
// planner's BatchPlan::tally) and by prune, so that the console's throughput chart reads a few
// hundred rows rather than every job of its window. bucket: microseconds since the epoch;
// job: the class's label id, 0 for none. Filled for the jobs already stored by migrate().
constexpr const char* schema_v5 = R"SQL(
CREATE TABLE job_tally (
  bucket INTEGER NOT NULL,
  job INTEGER NOT NULL,
  state INTEGER NOT NULL,
  jobs INTEGER NOT NULL,
  PRIMARY KEY (bucket, job, state)
) WITHOUT ROWID;
ALTER TABLE check_violation ADD COLUMN entity TEXT;
)SQL";

int read_user_version(Connection& connection) {
  return static_cast<int>(connection.query_integer("PRAGMA user_version"));
}

bool has_tables(Connection& connection) {
  return connection.query_integer("SELECT count(*) FROM sqlite_schema") > 0;
}

void check_identity_of(Connection& connection, const std::string& what) {
  auto app = connection.query_integer("PRAGMA application_id");
  if (app == 0 && has_tables(connection)) {
    // Right after another process created the store, a connection can see its tables while
    // PRAGMA application_id still reads 0 (seen with 8 threads creating one file). The store's
    // own mark, written in the same transaction, settles it.
    bool has_epoch = connection.query_integer(
                         "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'meta'") > 0 &&
                     connection.query_integer("SELECT count(*) FROM meta WHERE key = 'epoch_us'") > 0;
    if (!has_epoch) {
      throw StoreError(StoreError::Kind::not_a_store, what + " is a SQLite database, but not a jobtrail store");
    }
  } else if (app != application_id && app != 0) {
    throw StoreError(StoreError::Kind::not_a_store, what + " is a SQLite database, but not a jobtrail store");
  }
  int version = read_user_version(connection);
  if (version > latest_version()) {
    throw StoreError(StoreError::Kind::schema_too_new,
                     what + " has schema version " + std::to_string(version) +
                         ", newer than this jobtrail understands (" + std::to_string(latest_version()) +
                         "); upgrade jobtrail to read it");
  }
}

}  // namespace

int latest_version() noexcept { return 5; }

void migrate(Connection& connection, const std::string& path) {
  WriteTransaction transaction(connection);
  check_identity_of(connection, path);
  int version = read_user_version(connection);
  if (version == latest_version()) return;  // the destructor ends the empty transaction
  if (version < 1) {
    // Start the epoch at midnight UTC of the store's first day: round numbers read better.
    constexpr Micros day = 86400LL * 1000000;
    connection.execute(schema_v1(now_micros() / day * day));
  }
  if (version < 2) connection.execute(schema_v2);
  if (version < 3) connection.execute(schema_v3);
  if (version < 4) connection.execute(schema_v4);
  if (version < 5) {
    connection.execute(schema_v5);
    const Micros epoch = read_epoch(connection);
    Statement insert(connection.handle(), "INSERT INTO job_tally (bucket, job, state, jobs) VALUES (?1, ?2, ?3, ?4)");
    for (const auto& count : tally_of(connection, epoch, "SELECT job, first_at, state FROM job", 1)) {
      insert.reset()
          .bind(1, count.bucket - epoch)
          .bind(2, count.job)
          .bind(3, static_cast<std::int64_t>(count.state))
          .bind(4, count.delta)
          .run();
    }
  }
  // Later migrations: if (version < 6) connection.execute(schema_v6); ...
  connection.execute("PRAGMA application_id = " + std::to_string(application_id));
  connection.execute("PRAGMA user_version = " + std::to_string(latest_version()));
  transaction.commit();
}

std::vector<detail::TallyChange> tally_of(Connection& connection, Micros epoch, std::string_view jobs_sql, int sign) {
  std::map<std::tuple<Micros, std::int64_t, int>, std::int64_t> counts;  // ordered as BatchPlan::tally
  Statement jobs(connection.handle(), jobs_sql);
  while (jobs.step()) {
    const Micros bucket = tally_bucket_start(jobs.integer(1) + epoch);
    counts[{bucket, jobs.optional_integer(0).value_or(0), static_cast<int>(jobs.integer(2))}] += sign;
  }
  std::vector<detail::TallyChange> changes;
  for (const auto& [key, delta] : counts) {
    changes.push_back({std::get<1>(key), std::get<0>(key), static_cast<State>(std::get<2>(key)), delta});
  }
  return changes;
}

void check_identity(Connection& connection, const std::string& path) { check_identity_of(connection, path); }

void check_readable(Connection& connection, const std::string& path) {
  check_identity_of(connection, path);
  // Older schemas are read as they are: every query of a read-only command uses tables of
  // version 1. A read-only command never migrates; any recording command will.
  if (read_user_version(connection) == 0) {
    throw StoreError(StoreError::Kind::not_a_store, path + " is empty, not a jobtrail store yet");
  }
}

Micros read_epoch(Connection& connection) {
  return connection.query_integer("SELECT value FROM meta WHERE key = 'epoch_us'");
}

}  // namespace jobtrail::sqlite
