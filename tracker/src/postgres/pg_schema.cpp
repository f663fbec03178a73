#include "postgres/pg_schema.h"


namespace jobtrail::pg {

namespace {

// Times are bigint microseconds since the Unix epoch. IDs and names compare byte by byte
// (COLLATE "C"): an index on them then costs the same whatever locale the database has, and
// sorts the way the SQLite store does. Unlike the SQLite schema, rows keep
// absolute times and IDs as text: PostgreSQL has no variable-length integers to save on, and
// plain columns keep the views and ad-hoc queries simple. The views have the same names and
// columns as SQLite's, so SQL checks read the same on both stores.
constexpr const char* schema_v1 = R"SQL(
CREATE TABLE jobtrail.meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO jobtrail.meta (key, value) VALUES ('application', 'jobtrail');

-- Low-cardinality names (job classes, queues, workers), stored once and referred to by id.
-- Never deleted, so writers may cache their ids.
CREATE TABLE jobtrail.label (id serial PRIMARY KEY, text text COLLATE "C" NOT NULL UNIQUE);

-- One row per job, derived from its events.
CREATE TABLE jobtrail.job (
  id bigint PRIMARY KEY,  -- from job_id_seq, taken by the writer before it writes events
  job_id text COLLATE "C" NOT NULL UNIQUE,
  job integer,
  queue integer,
  correlation_id text COLLATE "C",
  parent_job_id text COLLATE "C",
  idempotency_key text COLLATE "C",
  state smallint NOT NULL,
  enqueued_at bigint,
  started_at bigint,
  finished_at bigint,
  heartbeat_at bigint,
  first_at bigint NOT NULL,
  last_at bigint NOT NULL,
  attempts integer NOT NULL,
  events integer NOT NULL,
  successes integer NOT NULL,
  worker integer,
  last_error_seq integer,  -- the event that carries the latest error
  tail_state smallint NOT NULL,
  tail_attempt integer NOT NULL,
  tail_at bigint NOT NULL,
  anomalies integer NOT NULL
);
CREATE SEQUENCE jobtrail.job_id_seq AS bigint OWNED BY jobtrail.job.id;
CREATE INDEX job_by_correlation ON jobtrail.job (correlation_id) WHERE correlation_id IS NOT NULL;
CREATE INDEX job_by_first_at ON jobtrail.job (first_at);
-- Succeeded jobs are the bulk and are found through job_by_first_at; the index keeps the rest.
CREATE INDEX job_by_state ON jobtrail.job (state, first_at) WHERE state <> 4;
CREATE INDEX job_by_class ON jobtrail.job (job, first_at);
CREATE INDEX job_by_idempotency_key ON jobtrail.job (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX job_with_anomalies ON jobtrail.job (first_at) WHERE anomalies <> 0;

-- The append-only history; a job's timeline is one range of the primary key. Errors are rare:
-- their columns are NULL (free) on every other event.
CREATE TABLE jobtrail.event (
  job bigint NOT NULL,
  seq integer NOT NULL,
  state smallint NOT NULL,
  at bigint NOT NULL,
  attempt integer NOT NULL,
  worker integer,
  error_class text,
  error_message text,
  error_backtrace text,
  PRIMARY KEY (job, seq)
);

CREATE TABLE jobtrail.job_entity (
  entity text COLLATE "C" NOT NULL,  -- "type:id"
  job bigint NOT NULL,
  PRIMARY KEY (entity, job)
);
CREATE INDEX job_entity_by_job ON jobtrail.job_entity (job);

CREATE TABLE jobtrail.anomaly (
  id bigserial PRIMARY KEY,
  job bigint NOT NULL,
  kind smallint NOT NULL,
  other_job bigint,
  detail text,
  at bigint NOT NULL
);
CREATE INDEX anomaly_by_job ON jobtrail.anomaly (job);
CREATE INDEX anomaly_by_at ON jobtrail.anomaly (at);

-- Readable views for SQL checks and ad-hoc queries: names instead of ids.
CREATE VIEW jobtrail.jobs AS
SELECT j.job_id, c.text AS job, q.text AS queue, j.correlation_id, j.parent_job_id, j.idempotency_key,
       CASE j.state WHEN 1 THEN 'enqueued' WHEN 2 THEN 'started' WHEN 4 THEN 'succeeded'
                    WHEN 5 THEN 'failed' WHEN 6 THEN 'dead' WHEN 7 THEN 'cancelled' END AS state,
       j.enqueued_at, j.started_at, j.finished_at, j.heartbeat_at,
       j.first_at AS first_event_at, j.last_at AS last_event_at,
       j.attempts, j.successes, w.text AS worker, e.error_class, e.error_message,
       (j.anomalies <> 0)::integer AS flagged
FROM jobtrail.job j
LEFT JOIN jobtrail.label c ON c.id = j.job
LEFT JOIN jobtrail.label q ON q.id = j.queue
LEFT JOIN jobtrail.label w ON w.id = j.worker
LEFT JOIN jobtrail.event e ON e.job = j.id AND e.seq = j.last_error_seq;

CREATE VIEW jobtrail.job_entities AS
SELECT j.job_id, je.entity, split_part(je.entity, ':', 1) AS entity_type,
       substr(je.entity, strpos(je.entity, ':') + 1) AS entity_id
FROM jobtrail.job_entity je JOIN jobtrail.job j ON j.id = je.job;
)SQL";

// Version 2: the expected schedules of cron-like jobs (jobtrail exec --every).
constexpr const char* schema_v2 = R"SQL(
CREATE TABLE jobtrail.schedule (
  job integer PRIMARY KEY,  -- label id of the job class
  every_us bigint NOT NULL,
  grace_us bigint NOT NULL,
  updated_at bigint NOT NULL
);
CREATE VIEW jobtrail.schedules AS
SELECT l.text AS job, s.every_us, s.grace_us, s.updated_at
FROM jobtrail.schedule s JOIN jobtrail.label l ON l.id = s.job;
)SQL";

// Version 3: the checker's history, and indexes that let the built-in checks read only the jobs
// they flag.
constexpr const char* schema_v3 = R"SQL(
CREATE TABLE jobtrail.check_run (
  id bigserial PRIMARY KEY,
  started_at bigint NOT NULL,
  finished_at bigint NOT NULL,
  config text
);
CREATE TABLE jobtrail.check_result (
  check_name text NOT NULL,
  run bigint NOT NULL,
  status smallint NOT NULL,  -- 0 pass, 1 warn, 2 fail, 3 error
  severity text NOT NULL,
  violations bigint NOT NULL,
  new_violations bigint NOT NULL,
  resolved bigint NOT NULL,
  complete boolean NOT NULL,
  started_at bigint NOT NULL,
  duration_us bigint NOT NULL,
  error text,
  PRIMARY KEY (check_name, run)
);
CREATE INDEX check_result_passed ON jobtrail.check_result (check_name, run) WHERE status = 0;
CREATE TABLE jobtrail.check_violation (
  check_name text NOT NULL,
  run bigint NOT NULL,
  fingerprint text NOT NULL,
  first_seen_at bigint NOT NULL,
  sample text,
  PRIMARY KEY (check_name, run, fingerprint)
);
CREATE VIEW jobtrail.check_results AS
SELECT r.check_name, r.run,
       CASE r.status WHEN 0 THEN 'pass' WHEN 1 THEN 'warn' WHEN 2 THEN 'fail' ELSE 'error' END AS status,
       r.severity, r.violations, r.new_violations, r.resolved, r.started_at, r.duration_us, r.error
FROM jobtrail.check_result r;

-- A started job's last sign of life: its start or its latest heartbeat (greatest() skips NULLs).
CREATE INDEX job_started_by_activity ON jobtrail.job (greatest(started_at, heartbeat_at, first_at))
  WHERE state = 2;
CREATE INDEX job_dead_by_last_at ON jobtrail.job (last_at) WHERE state = 6;
)SQL";

// Version 4: the order in which job rows were written, for `ls --follow`: `changed` is the
// writing transaction's ID (a default for new rows, set by every update of a stored one), so
// a follower reads job_by_change from its last position. Writers commit concurrently, out of
// the order of their IDs: a follower reads only below the oldest transaction still running
// (pg_snapshot_xmin), where every writer has finished. The first ADD COLUMN with a constant
// rewrites nothing; rows written before version 4 keep 0, older than any follower.
constexpr const char* schema_v4 = R"SQL(
ALTER TABLE jobtrail.job ADD COLUMN changed bigint NOT NULL DEFAULT 0;
ALTER TABLE jobtrail.job ALTER COLUMN changed SET DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX job_by_change ON jobtrail.job (changed, id);
)SQL";

bool schema_exists(Connection& connection) {
  return connection.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'jobtrail'").rows() > 0;
}

// 0: the schema "jobtrail" is empty (a DBA may create it, own it and grant on it beforehand);
// -1: it holds something that is not a jobtrail store.
int version_in_schema(Connection& connection) {
  auto tables = connection.execute(
      "SELECT count(*), count(*) FILTER (WHERE c.relname = 'meta' AND c.relkind = 'r') "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'jobtrail'");
  if (tables.integer(0, 0) == 0) return 0;
  if (tables.integer(0, 1) == 0) return -1;
  auto rows = connection.execute(
      "SELECT (SELECT value FROM jobtrail.meta WHERE key = 'application'), "
      "(SELECT value FROM jobtrail.meta WHERE key = 'schema_version')");
  if (rows.string(0, 0) != "jobtrail") return -1;
  return static_cast<int>(rows.integer(0, 1));
}

}  // namespace

int read_schema_version(Connection& connection, const std::string& where) {
  if (!schema_exists(connection)) {
    throw StoreError(StoreError::Kind::not_found, "no jobtrail store in " + where);
  }
  int version = version_in_schema(connection);
  if (version == 0) throw StoreError(StoreError::Kind::not_found, "no jobtrail store in " + where + " yet");
  if (version < 0) {
    throw StoreError(StoreError::Kind::not_a_store,
                     where + " has a schema named jobtrail, but it is not a jobtrail store: point --db at "
                         "another database, or rename or drop that schema");
  }
  if (version > latest_schema_version()) {
    throw StoreError(StoreError::Kind::schema_too_new,
                     where + " has schema version " + std::to_string(version) +
                         ", newer than this jobtrail understands (" + std::to_string(latest_schema_version()) +
                         "); upgrade jobtrail to read it");
  }
  return version;
}

void migrate(Connection& connection, const std::string& where) {
  // Fast path: already at the latest version, no lock taken (every tracker start comes here).
  if (schema_exists(connection) && version_in_schema(connection) == latest_schema_version()) return;
  Transaction transaction(connection);
  // Processes starting together queue here; each finds the work done by the one before it.
  connection.exec("SELECT pg_advisory_xact_lock($1, 0)", Params().add(std::int64_t{lock_space}));
  int version = 0;
  // IDs and messages are UTF-8 text; a database in another encoding would change or refuse them.
  const auto encoding = connection.execute("SHOW server_encoding").string(0, 0);
  if (encoding != "UTF8" && encoding != "SQL_ASCII") {
    throw StoreError(StoreError::Kind::cannot_open,
                     where + " has the encoding " + encoding + "; jobtrail needs a UTF8 database "
                         "(CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0)");
  }
  if (!schema_exists(connection)) {
    connection.execute("CREATE SCHEMA jobtrail");
  } else if (version_in_schema(connection) != 0) {
    version = read_schema_version(connection, where);
  }
  if (version == latest_schema_version()) return;  // the destructor rolls back the empty transaction
  if (version < 1) connection.execute(schema_v1);
  if (version < 2) connection.execute(schema_v2);
  if (version < 3) connection.execute(schema_v3);
  if (version < 4) connection.execute(schema_v4);
  // Version 5: the entity of a failing check row, as in SQLite. Not the SQLite store's
  // job_tally: PostgreSQL counts jobs from job_by_first_at when asked (PostgresStore::tally),
  // as a kept count would be one row that every writer of a fleet finishing jobs of one class
  // updates, a lock each transaction would hold until its commit.
  if (version < 5) connection.execute("ALTER TABLE jobtrail.check_violation ADD COLUMN entity text");
  // Later migrations: if (version < 6) connection.execute(schema_v6); ...
  connection.exec(
      "INSERT INTO jobtrail.meta (key, value) VALUES ('schema_version', $1) "
      "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
      Params().add(std::to_string(latest_schema_version())));
  transaction.commit();
}

}  // namespace jobtrail::pg
