#!/usr/bin/env bash
# The lifecycles e2e_workers.sh does not reach, with real RQ and Celery workers on Debian's
# redis-server, reporting to a real `jobtrail serve`:
#   RQ: enqueue_many (both jobs in the trace), a depends_on job (enqueued once its dependency
#       ended, then run), a running job stopped with send_stop_job_command (cancelled);
#   Celery: a task run by the solo pool, a task no worker knows (task_unknown: dead), a soft
#       time limit (SoftTimeLimitExceeded: failed, then dead) and a hard one (the child killed).
#   usage: e2e_workers_lifecycle.sh JOBTRAIL_BINARY
set -euo pipefail

jobtrail=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/e2e_workers_lib.sh"
need redis-server redis-cli rq "$python"

start_redis
start_serve
export PYTHONPATH="$root/contrib/python:$here/e2e"
correlation_id=$("$python" -c 'import uuid; print(uuid.uuid4().hex)')

(cd "$work" && exec rq worker --url "$REDIS_URL" --worker-class jobtrail_rq.TrackedWorker \
   --queue-class jobtrail_rq.TrackedQueue --job-class jobtrail_rq.TrackedJob default) >"$work/rq.log" 2>&1 &
pids+=($!)
(cd "$work" && exec "$python" -m celery -A celery_tasks worker --pool solo -Q solo -n solo@%h --loglevel INFO) \
  >"$work/celery_solo.log" 2>&1 &
pids+=($!)
(cd "$work" && exec "$python" -m celery -A celery_tasks worker --pool prefork -c 1 -Q limits -n limits@%h \
   --loglevel INFO) >"$work/celery_limits.log" 2>&1 &
pids+=($!)
celery_ready() { grep -q ' ready\.' "$work/celery_solo.log" && grep -q ' ready\.' "$work/celery_limits.log"; }
wait_for 60 celery_ready || fail "the Celery workers did not get ready"

"$python" -c 'import sys, redis, rq_tasks; rq_tasks.lifecycle_request(redis.Redis.from_url(sys.argv[1]), sys.argv[2])' \
  "$REDIS_URL" "$correlation_id" || fail "the RQ enqueue failed"
"$python" -c 'import sys, celery_tasks; celery_tasks.lifecycle_request(sys.argv[1])' "$correlation_id" ||
  fail "the Celery publish failed"

state_of() {
  "$jobtrail" ls --db "$db" --format json 2>/dev/null |
    "$python" -c 'import json, sys; print(*[j["state"] for j in map(json.loads, sys.stdin) if j["job_id"] == sys.argv[1]])' "$1"
}
# A function, so that wait_for reads the state again on every try (an argument would be read once).
rq_stopped_started() { test "$(state_of rq-stopped)" = started; }
wait_for 30 rq_stopped_started || fail "rq-stopped never started: $("$jobtrail" ls --db "$db")"
"$python" -c 'import sys, redis, rq.command; rq.command.send_stop_job_command(redis.Redis.from_url(sys.argv[1]), "rq-stopped")' \
  "$REDIS_URL" || fail "send_stop_job_command failed"

finished() {
  local n
  n=$("$jobtrail" trace "$correlation_id" --db "$db" --format json 2>/dev/null |
      grep -cE '"state":"(succeeded|dead|cancelled)"' || true)
  [ "$n" -ge 9 ]
}
wait_for 60 finished || fail "not all 9 jobs ended within 60 s: $("$jobtrail" trace "$correlation_id" --db "$db")"
"$jobtrail" trace "$correlation_id" --db "$db"
"$jobtrail" trace "$correlation_id" --db "$db" --format json >"$work/trace.json"
for job in rq-dep-then celery-unknown celery-soft celery-hard; do
  "$jobtrail" show "$job" --db "$db" --format json >"$work/$job.json" || fail "no job $job"
done

"$python" - "$work" <<'PY' || fail "the trace is not what the workers did"
import json, os, sys
work = sys.argv[1]
jobs = {job["job_id"]: job for job in map(json.loads, open(os.path.join(work, "trace.json")))}

def expect(job_id, state, attempts=1, error=None, error_class=None):
    job = jobs.get(job_id)
    assert job, "%s is not in the trace: %s" % (job_id, sorted(jobs))
    assert job["state"] == state, "%s is %s, not %s (%s)" % (job_id, job["state"], state, job.get("last_error"))
    assert job["attempts"] == attempts, "%s made %s attempts, not %s" % (job_id, job["attempts"], attempts)
    last_error = job.get("last_error") or {}
    if error:
        assert error in last_error.get("message", ""), "%s: error %r" % (job_id, last_error)
    if error_class:
        assert last_error.get("class", "").endswith(error_class), "%s: error %r" % (job_id, last_error)

def states(job_id):
    return [event["state"] for event in json.load(open(os.path.join(work, job_id + ".json")))["events"]]

expect("rq-many-1", "succeeded")
expect("rq-many-2", "succeeded")
expect("rq-dep-first", "succeeded")
expect("rq-dep-then", "succeeded")
assert "enqueued" in states("rq-dep-then"), "rq-dep-then: %s" % states("rq-dep-then")
expect("rq-stopped", "cancelled", error="stopped")
expect("celery-solo", "succeeded")
expect("celery-unknown", "dead", error="no task named")
expect("celery-soft", "dead", error_class="SoftTimeLimitExceeded")
assert states("celery-soft")[-2:] == ["failed", "dead"], "celery-soft: %s" % states("celery-soft")
expect("celery-hard", "dead", error_class="TimeLimitExceeded")
assert len(jobs) == 9, "expected 9 jobs in the trace, found %d: %s" % (len(jobs), sorted(jobs))
print("e2e_workers_lifecycle: enqueue_many, depends_on, the stop command, the solo pool, task_unknown and both time limits")
PY

kill -TERM "$serve_pid"
wait "$serve_pid" || fail "jobtrail serve exited with $? on SIGTERM"
echo "e2e_workers_lifecycle: PASS"
