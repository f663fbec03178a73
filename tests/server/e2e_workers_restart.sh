#!/usr/bin/env bash
# `jobtrail serve` killed (SIGKILL) and restarted while a web process enqueues and real RQ and
# Celery workers run: every event the clients accepted is stored exactly once (the clients
# keep their batches and resend them; the store recognises a redelivery by its `at`), and
# none was dropped (the buffers never filled). Events are sent durably ($JOBTRAIL_DURABLE=1):
# without ?wait=commit a SIGKILL also loses what serve had taken and not yet committed. Then
# RQ jobs whose events are too big for the work horse's pipe fail while serve is down: those
# events reach the store once, through the Redis spool the horses hand them to their worker by.
#   usage: e2e_workers_restart.sh JOBTRAIL_BINARY
set -euo pipefail

jobtrail=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/e2e_workers_lib.sh"
need redis-server redis-cli "$python"

start_redis
start_serve
listen=${JOBTRAIL_URL#http://}
export PYTHONPATH="$root/contrib/python:$here/e2e"
export JOBTRAIL_DURABLE=1 JOBTRAIL_EXIT_FLUSH_TIMEOUT=30 JOBTRAIL_HORSE_FLUSH_TIMEOUT=0.5
jobs=150  # per worker

(cd "$work" && exec "$python" "$here/e2e/rq_main.py" worker "$REDIS_URL") >"$work/rq.log" 2>&1 &
pids+=($!)
(cd "$work" && exec "$python" -m celery -A celery_tasks worker --pool prefork -c 2 --loglevel WARNING) \
  >"$work/celery.log" 2>&1 &
pids+=($!)

# The web process: 2 x $jobs enqueues over about 3 s, then its counts.
WORK="$work" "$python" - "$jobs" >"$work/producer.json" 2>"$work/producer.log" <<'PY' &
import json, os, sys, time
import redis, celery_tasks, rq_tasks, jobtrail_rq, jobtrail_client
queue = jobtrail_rq.TrackedQueue("default", connection=redis.Redis.from_url(os.environ["REDIS_URL"]))
open(os.environ["WORK"] + "/producing", "w").close()
for i in range(int(sys.argv[1])):
    queue.enqueue(rq_tasks.noop, i, job_id="burst-rq-%d" % i)
    if i % 5 == 0:  # events too big for the horse's pipe: sent by the horse, or spooled
        queue.enqueue(rq_tasks.fails_long, i, job_id="long-rq-%d" % i)
    celery_tasks.noop.apply_async((i,), task_id="burst-celery-%d" % i)
    time.sleep(0.02)
jobtrail_client.flush(60)
print(json.dumps(jobtrail_client.stats().as_dict()))
PY
producer=$!
pids+=($producer)

producing() { [ -e "$work/producing" ]; }
wait_for 60 producing || fail "the web process did not start"
sleep 0.5
kill -KILL "$serve_pid"
wait "$serve_pid" 2>/dev/null || true
date +%s%6N >"$work/down_at"
sleep 1.5  # serve is down: the clients keep their events and retry
date +%s%6N >"$work/up_at"
start_serve "$listen"
[ "$JOBTRAIL_URL" = "http://$listen" ] || fail "serve came back on $JOBTRAIL_URL, not http://$listen"
wait "$producer" || fail "the web process failed"
echo "e2e_workers_restart: the web process's client: $(cat "$work/producer.json")"

count_done() {
  "$python" - "$db" "$jobs" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
done, = db.execute("SELECT count(*) FROM jobs WHERE job_id LIKE 'burst-%' AND state = 'succeeded'").fetchone()
sys.exit(0 if done == 2 * int(sys.argv[2]) else 1)
PY
}
wait_for 60 count_done || fail "not every job was recorded as succeeded within 60 s"

"$python" - "$db" "$jobs" "$work/producer.json" <<'PY' || fail "events were lost or stored twice"
import json, sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
jobs = int(sys.argv[2])
stats = json.load(open(sys.argv[3]))
assert stats["dropped"] == 0 and stats["pending"] == 0 and stats["rejected"] == 0, stats
assert stats["retried"] > 0, "serve was never down for the web process: %s" % stats
rows = db.execute("""SELECT j.job_id, e.state, count(*) FROM event e JOIN job j ON j.id = e.job
                     WHERE j.job_id LIKE 'burst-%' GROUP BY j.job_id, e.state""").fetchall()
counts = {}
for job_id, state, n in rows:
    counts.setdefault(job_id, {})[state] = n
# States as stored: 1 enqueued, 2 started, 4 succeeded (tracker/src/event.cpp).
want = {1: 1, 2: 1, 4: 1}
bad = {job: c for job, c in counts.items() if c != want}
assert len(counts) == 2 * jobs, "%d jobs stored, not %d" % (len(counts), 2 * jobs)
assert not bad, "%d jobs with missing or doubled events, e.g. %s" % (len(bad), sorted(bad.items())[:5])
print("e2e_workers_restart: %d jobs, each event stored exactly once across the restart" % len(counts))
PY

# The failing RQ jobs: their events (over PIPE_BUF) went through the horse's own sender; a
# horse that could not reach serve within $JOBTRAIL_HORSE_FLUSH_TIMEOUT spooled them in Redis
# and told its worker, which sent them. Each stored exactly once, none left in the spool.
count_long() {
  "$python" - "$db" "$jobs" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
dead, = db.execute("SELECT count(*) FROM jobs WHERE job_id LIKE 'long-rq-%' AND state = 'dead'").fetchone()
sys.exit(0 if dead == len(range(0, int(sys.argv[2]), 5)) else 1)
PY
}
wait_for 60 count_long || fail "not every failing RQ job was recorded as dead within 60 s"
left=$(redis-cli -u "$REDIS_URL" --scan --pattern 'jobtrail:spool:*' | wc -l)
[ "$left" = 0 ] || fail "$left spool lists left in Redis"
"$python" - "$db" "$jobs" "$(cat "$work/down_at")" "$(cat "$work/up_at")" <<'PY' || fail "failing jobs' events were lost or stored twice"
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
want_jobs = len(range(0, int(sys.argv[2]), 5))
down_at, up_at = int(sys.argv[3]), int(sys.argv[4])
rows = db.execute("""SELECT j.job_id, e.state, count(*), max(e.at) + (SELECT value FROM meta WHERE key = 'epoch_us'), max(length(er.message)) FROM event e
                     JOIN job j ON j.id = e.job LEFT JOIN error er ON er.id = e.error
                     WHERE j.job_id LIKE 'long-rq-%' GROUP BY j.job_id, e.state""").fetchall()
counts, while_down = {}, 0
for job_id, state, n, at_us, message_length in rows:
    counts.setdefault(job_id, {})[state] = n
    if state == 5:
        assert message_length > 6000, (job_id, message_length)
        while_down += down_at <= at_us <= up_at
# 1 enqueued, 2 started, 5 failed, 6 dead.
bad = {job: c for job, c in counts.items() if c != {1: 1, 2: 1, 5: 1, 6: 1}}
assert len(counts) == want_jobs, "%d failing jobs stored, not %d" % (len(counts), want_jobs)
assert not bad, "failing jobs with missing or doubled events: %s" % sorted(bad.items())[:5]
print("e2e_workers_restart: %d failing jobs, %d of them while serve was down, each event stored once" % (
    len(counts), while_down))
PY

# And for certain: failing RQ jobs run to their end while serve is down. Their horses wait
# $JOBTRAIL_HORSE_FLUSH_TIMEOUT, spool the events too big for the pipe and leave; only their
# worker, through the spool, can deliver those events once serve is back.
failed_before=$(redis-cli -u "$REDIS_URL" zcard rq:failed:default)
kill -KILL "$serve_pid"
wait "$serve_pid" 2>/dev/null || true
# The enqueuer's own events wait in its client until serve is back (its exit flush: 30 s).
"$python" - >"$work/down_enqueue.log" 2>&1 <<'PY' &
import os, redis, rq_tasks, jobtrail_rq
queue = jobtrail_rq.TrackedQueue("default", connection=redis.Redis.from_url(os.environ["REDIS_URL"]))
for i in range(3):
    queue.enqueue(rq_tasks.fails_long, 1000 + i, job_id="down-rq-%d" % i)
PY
enqueuer=$!
pids+=($enqueuer)
three_failed() { [ "$(redis-cli -u "$REDIS_URL" zcard rq:failed:default)" -ge $((failed_before + 3)) ]; }
wait_for 60 three_failed || fail "the 3 failing RQ jobs did not run while serve was down"
sleep 1.5  # the last horse's flush timeout (0.5 s), its spool, and the worker's read of it
start_serve "$listen"
wait "$enqueuer" || fail "the enqueuer failed: $(cat "$work/down_enqueue.log")"
count_down() {
  "$python" - "$db" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
dead, = db.execute("SELECT count(*) FROM jobs WHERE job_id LIKE 'down-rq-%' AND state = 'dead'").fetchone()
sys.exit(0 if dead == 3 else 1)
PY
}
wait_for 60 count_down || fail "the events of RQ jobs that failed while serve was down did not arrive through the spool"
"$python" - "$db" <<'PY' || fail "the spooled events were lost or stored twice"
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
rows = db.execute("""SELECT j.job_id, e.state, count(*), max(length(er.message)) FROM event e
                     JOIN job j ON j.id = e.job LEFT JOIN error er ON er.id = e.error
                     WHERE j.job_id LIKE 'down-rq-%' GROUP BY j.job_id, e.state""").fetchall()
counts = {}
for job_id, state, n, message_length in rows:
    counts.setdefault(job_id, {})[state] = n
    assert state != 5 or message_length > 6000, (job_id, message_length)
assert counts == {"down-rq-%d" % i: {1: 1, 2: 1, 5: 1, 6: 1} for i in range(3)}, counts
print("e2e_workers_restart: 3 RQ jobs failed while serve was down; their events came through the spool, once each")
PY
left=$(redis-cli -u "$REDIS_URL" --scan --pattern 'jobtrail:spool:*' | wc -l)
[ "$left" = 0 ] || fail "$left spool lists left in Redis"
echo "e2e_workers_restart: PASS"
