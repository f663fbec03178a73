#!/usr/bin/env bash
# End to end with real workers: Debian's redis-server, an RQ worker (with RQ's scheduler), a
# Celery worker (prefork) and a Sidekiq worker, instrumented as contrib/ documents, report to
# `jobtrail serve`. A "web request" in Python (RQ and Celery) and one in Ruby (Sidekiq) enqueue
# jobs under one correlation ID: one job enqueues a child, one fails and is retried, one dies,
# one is delayed, one times out, one is cancelled (RQ) or revoked (Celery) before it runs. Then `jobtrail trace` must show the whole tree with the right
# states, attempts, parents and errors. Everything runs on loopback and is stopped on exit.
#   usage: e2e_workers.sh JOBTRAIL_BINARY
set -euo pipefail

jobtrail=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/e2e_workers_lib.sh"
need redis-server redis-cli rq sidekiq ruby "$python"
"$python" -c 'import rq, celery' 2>/dev/null || fail "python3-rq or python3-celery is missing (scripts/install-deps.sh --test)"

start_redis
start_serve
export PYTHONPATH="$root/contrib/python:$here/e2e"
correlation_id=$("$python" -c 'import uuid; print(uuid.uuid4().hex)')

# The RQ worker as contrib/python/README.md says to run it.
(cd "$work" && exec rq worker --url "$REDIS_URL" --worker-class jobtrail_rq.TrackedWorker \
   --queue-class jobtrail_rq.TrackedQueue --job-class jobtrail_rq.TrackedJob --with-scheduler default) \
  >"$work/rq.log" 2>&1 &
pids+=($!)
(cd "$work" && exec "$python" -m celery -A celery_tasks worker --pool prefork -c 2 --loglevel INFO) \
  >"$work/celery.log" 2>&1 &
pids+=($!)
# A revoke reaches only the workers listening at the time: wait until it is.
celery_ready() { grep -q ' ready\.' "$work/celery.log"; }
wait_for 60 celery_ready || fail "the Celery worker did not get ready"
(cd "$work" && exec sidekiq -r "$here/e2e/sidekiq_jobs.rb" -q default -c 2 -t 2) >"$work/sidekiq.log" 2>&1 &
pids+=($!)

"$python" "$here/e2e/rq_main.py" enqueue "$REDIS_URL" "$correlation_id" || fail "RQ enqueue failed"
"$python" "$here/e2e/celery_main.py" enqueue "$correlation_id" || fail "Celery enqueue failed"
ruby "$here/e2e/sidekiq_enqueue.rb" "$correlation_id" || fail "Sidekiq enqueue failed"

# Seventeen jobs, each finished: seven RQ, six Celery, four Sidekiq.
finished() {
  local n
  n=$("$jobtrail" trace "$correlation_id" --db "$db" --format json 2>/dev/null |
      grep -cE '"state":"(succeeded|dead|cancelled)"' || true)
  [ "$n" -ge 17 ]
}
wait_for 90 finished || fail "not all 17 jobs finished within 90 s"

"$jobtrail" trace "$correlation_id" --db "$db"
"$jobtrail" trace "$correlation_id" --db "$db" --format json >"$work/trace.json"
"$python" - "$work/trace.json" <<'PY' || fail "the trace is not what the workers did"
import json, sys

jobs = [json.loads(line) for line in open(sys.argv[1])]
by_class = {}
for job in jobs:
    by_class.setdefault(job["job"], []).append(job)

def one(name):
    found = by_class.get(name, [])
    assert len(found) == 1, "%s: expected one job, found %d" % (name, len(found))
    return found[0]

def expect(name, state, attempts, depth=0, parent=None, error=None):
    job = one(name)
    assert job["state"] == state, "%s is %s, not %s" % (name, job["state"], state)
    assert job["attempts"] == attempts, "%s made %s attempts, not %s" % (name, job["attempts"], attempts)
    assert job["depth"] == depth, "%s is at depth %s, not %s" % (name, job["depth"], depth)
    assert (job["parent_job_id"] or None) == (one(parent)["job_id"] if parent else None), \
        "%s's parent is %s" % (name, job["parent_job_id"])
    if error:
        assert error in (job["last_error"] or {}).get("message", ""), "%s: error %r" % (name, job["last_error"])
    return job

assert len(jobs) == 17, "expected 17 jobs in the trace, found %d: %s" % (len(jobs), sorted(by_class))
by_id = {job["job_id"]: job for job in jobs}
for job_id in ("rq-cancelled", "celery-revoked"):  # cancelled before they ran
    assert by_id[job_id]["state"] == "cancelled", "%s is %s" % (job_id, by_id[job_id]["state"])
    by_class[by_id[job_id]["job"]].remove(by_id[job_id])
expect("rq_tasks.send_welcome", "succeeded", 1)
expect("rq_tasks.audit_signup", "succeeded", 1, depth=1, parent="rq_tasks.send_welcome")
expect("rq_tasks.charge", "succeeded", 2, error="payment gateway timed out")
expect("rq_tasks.explode", "dead", 1, error="this job always fails")
expect("rq_tasks.remind", "succeeded", 1)  # enqueue_in, moved to the queue by RQ's scheduler
slow = expect("rq_tasks.slow", "dead", 1, error="maximum timeout")
assert slow["last_error"]["class"].endswith("JobTimeoutException"), slow["last_error"]
expect("celery_tasks.send_welcome", "succeeded", 1)
expect("celery_tasks.audit_signup", "succeeded", 1, depth=1, parent="celery_tasks.send_welcome")
expect("celery_tasks.charge", "succeeded", 2, error="payment gateway timed out")
expect("celery_tasks.explode", "dead", 1, error="this job always fails")
expect("celery_tasks.remind", "succeeded", 1)  # countdown=1
expect("WelcomeJob", "succeeded", 1)
expect("AuditJob", "succeeded", 1, depth=1, parent="WelcomeJob")
expect("ChargeJob", "succeeded", 2, error="payment gateway timed out")
expect("ExplodeJob", "dead", 1, error="this job always fails")
print("e2e_workers: the trace shows all 17 jobs with the right states, attempts, parents and errors")
PY

# The delayed RQ job was reported when scheduled and again when RQ's scheduler queued it; the
# entities a job function declares reach the store.
"$jobtrail" show rq-remind --db "$db" --format json >"$work/remind.json"
"$jobtrail" show rq-welcome --db "$db" --format json >"$work/welcome.json"
"$python" - "$work/remind.json" "$work/welcome.json" <<'PY' || fail "a delayed job's enqueues or a declared entity is missing"
import json, sys
remind, welcome = (json.load(open(path)) for path in sys.argv[1:3])
enqueues = [e for e in remind["events"] if e["state"] == "enqueued"]
assert len(enqueues) == 2, "rq-remind: %d enqueued events, not 2 (scheduled, then queued)" % len(enqueues)
assert "user:42" in welcome["entities"], welcome["entities"]
PY

# SIGTERM: serve commits what it accepted and exits 0.
kill -TERM "$serve_pid"
wait "$serve_pid" || fail "jobtrail serve exited with $? on SIGTERM"
echo "e2e_workers: PASS"
