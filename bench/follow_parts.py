# Which part of `ls --follow`'s poll grows with the store: the poll as a follower meets it
# (another connection has just written 100 jobs, so the reader's page cache is gone), timed in
# variants of SqliteStore::changed_jobs' query (as of 0fd0868) that leave parts out, in turn.
# On stores that tracker_bench keeps:
#   build/bench/tracker_bench --lookups-only --small 100000 --large 10000000 --dir D --keep
#   python3 bench/follow_parts.py D/small.db 300; python3 bench/follow_parts.py D/large.db 300
# It writes to the store (the `changed` numbers of random jobs): use a copy you can lose.
import random, sqlite3, statistics, sys, time

def poll_sql(entities=True, correlation=True, labels=True, error=True):
    cols = ["j.job_id", "j.parent_job_id", "j.idempotency_key", "j.state", "j.first_at + j.enqueued_at",
            "j.first_at + j.started_at", "j.first_at + j.finished_at", "j.first_at + j.heartbeat_at", "j.first_at",
            "j.first_at + j.last_at", "j.attempts", "j.events", "j.anomalies", "j.id", "j.changed"]
    joins = ""
    if labels:
        cols += ["c.text", "q.text", "w.text"]
        joins += " LEFT JOIN label c ON c.id = j.job LEFT JOIN label q ON q.id = j.queue LEFT JOIN label w ON w.id = j.worker"
    if correlation:
        cols.append("co.text"); joins += " LEFT JOIN correlation co ON co.id = j.correlation"
    if error:
        cols += ["e.class", "e.message"]; joins += " LEFT JOIN error e ON e.id = j.last_error"
    if entities:
        cols.append("(SELECT group_concat(en.name, char(0)) FROM job_entity t JOIN entity en ON en.id = t.entity WHERE t.job = j.id)")
    return ("SELECT " + ", ".join(cols) + " FROM job j" + joins +
            " WHERE j.id IN (SELECT j.id FROM job j INDEXED BY job_by_change WHERE j.changed > ?1 ORDER BY j.changed, j.id LIMIT 1000)"
            " ORDER BY j.changed, j.id")

variants = {
    "full (as the store)": poll_sql(),
    "no entity tags": poll_sql(entities=False),
    "no tags, no correlation": poll_sql(entities=False, correlation=False),
    "job row only": poll_sql(entities=False, correlation=False, labels=False, error=False),
    "index range only": "SELECT j.id FROM job j INDEXED BY job_by_change WHERE j.changed > ?1 ORDER BY j.changed, j.id LIMIT 1000",
}

path = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 200
writer = sqlite3.connect(path, isolation_level=None)
reader = sqlite3.connect(path, isolation_level=None)
max_id = writer.execute("SELECT max(id) FROM job").fetchone()[0]
rng = random.Random(5)
times = {name: [] for name in variants}
for _ in range(rounds):
    for name, sql in variants.items():
        seen = writer.execute("SELECT value FROM meta WHERE key = 'change_seq'").fetchone()[0]
        ids = [rng.randint(1, max_id) for _ in range(100)]
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE meta SET value = value + 1 WHERE key = 'change_seq'")
        writer.execute("UPDATE job SET changed = ?1 WHERE id IN (%s)" % ",".join(map(str, ids)), (seen + 1,))
        writer.execute("COMMIT")
        start = time.perf_counter()
        rows = reader.execute(sql, (seen,)).fetchall()
        times[name].append((time.perf_counter() - start) * 1e6)
        assert len(rows) == len(set(ids)), (name, len(rows))
for name in variants:
    print(f"{name:28s} {statistics.median(times[name]):9.1f} us")
