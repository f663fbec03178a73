#!/usr/bin/env bash
# Heartbeats and entities with real RQ and Celery workers: a job that runs past the stuck
# deadline while heartbeating is not stuck, one whose process hangs (frozen: no heartbeat) is,
# as both `jobtrail check`'s built-in stuck_jobs check and an `entity:` check show; the
# entities a job tags from inside link it to the check's rows.
#   usage: e2e_workers_health.sh JOBTRAIL_BINARY
set -euo pipefail

jobtrail=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/e2e_workers_lib.sh"
need redis-server redis-cli "$python"

start_redis
start_serve
export PYTHONPATH="$root/contrib/python:$here/e2e"
export JOBTRAIL_HEARTBEAT_INTERVAL=0.5  # the stuck deadline below is 3 s

# Two RQ workers (one will hang) and a Celery worker with two children (one will hang).
for n in 1 2; do
  (cd "$work" && exec "$python" "$here/e2e/rq_main.py" worker "$REDIS_URL") >"$work/rq$n.log" 2>&1 &
  pids+=($!)
done
(cd "$work" && exec "$python" -m celery -A celery_tasks worker --pool prefork -c 2 --loglevel WARNING) \
  >"$work/celery.log" 2>&1 &
pids+=($!)

"$python" - <<'PY' || fail "enqueue failed"
import os, redis, celery_tasks, rq_tasks, jobtrail_rq
connection = redis.Redis.from_url(os.environ["REDIS_URL"])
queue = jobtrail_rq.TrackedQueue("default", connection=connection)
queue.enqueue(rq_tasks.long_healthy, 8, 7, job_id="rq-long", job_timeout=60)
queue.enqueue(rq_tasks.hangs, job_id="rq-hung", job_timeout=60)
celery_tasks.long_healthy.apply_async((8, 8), task_id="celery-long")
celery_tasks.hangs.apply_async(task_id="celery-hung")
jobtrail_rq.default_client().flush(5)
PY

# The hung processes are stopped, not gone: cleanup must end them too.
two_hung() { [ "$(redis-cli -u "$REDIS_URL" llen hung_pids)" -ge 2 ]; }
wait_for 30 two_hung || fail "the hanging jobs did not start"
for pid in $(redis-cli -u "$REDIS_URL" lrange hung_pids 0 -1); do pids+=("$pid"); done
started() {
  for job in rq-long rq-hung celery-long celery-hung; do
    grep -q '^started  *2' <<<"$("$jobtrail" show "$job" --db "$db" 2>/dev/null)" || return 1
  done
}
wait_for 30 started || fail "not all four jobs started"
sleep 4.5  # past the 3 s deadline for all four, the hung ones' last heartbeat included

cat >"$work/checks.yaml" <<'YAML'
checks:
  - name: flagged_users
    description: users with a bad row; the report lists the jobs that touched them
    database: jobtrail
    entity: user
    query: SELECT 7 AS id UNION ALL SELECT 8 AS id
builtin:
  stuck_jobs: {deadline: 3s}
  lost_jobs: false
  dead_jobs: false
  duplicate_executions: false
  missed_cron_runs: false
YAML
status=0
"$jobtrail" check --config "$work/checks.yaml" --db "$db" --no-record --format json >"$work/check.json" || status=$?
[ "$status" -eq 2 ] || fail "jobtrail check exited $status, not 2 (failed checks)"
"$jobtrail" check --config "$work/checks.yaml" --db "$db" --no-record || true
"$python" - "$work/check.json" <<'PY' || fail "the checks do not show what the workers did"
import json, sys
report = json.load(open(sys.argv[1]))
checks = {check["name"]: check for check in report["checks"]}
stuck = json.dumps(checks["stuck_jobs"]["samples"])
for job in ("rq-hung", "celery-hung"):
    assert job in stuck, "%s (no heartbeat) is not stuck: %s" % (job, stuck)
for job in ("rq-long", "celery-long"):
    assert job not in stuck, "%s heartbeats and yet is stuck: %s" % (job, stuck)
linked = {}
for sample in checks["flagged_users"]["samples"]:
    linked[str(sample["row"]["id"]) if "row" in sample else json.dumps(sample)] = [j["job_id"] for j in sample["jobs"]]
text = json.dumps(checks["flagged_users"]["samples"])
assert "rq-long" in text and "celery-long" in text, "tagged jobs not linked to the users: %s" % text
print("e2e_workers_health: hung jobs are stuck, heartbeating ones are not; tags link jobs to rows")
PY

# The long jobs end well, with a heartbeat about every 0.5 s on the way.
done_long() {
  grep -q '^state *succeeded' <<<"$("$jobtrail" show rq-long --db "$db")" &&
    grep -q '^state *succeeded' <<<"$("$jobtrail" show celery-long --db "$db")"
}
wait_for 30 done_long || fail "the long jobs did not succeed"
for job in rq-long celery-long; do
  beats=$("$jobtrail" show "$job" --db "$db" | grep -c ' heartbeat ' || true)
  [ "$beats" -ge 8 ] || fail "$job sent $beats heartbeats in 8 s, not at least 8"
done
echo "e2e_workers_health: PASS"
