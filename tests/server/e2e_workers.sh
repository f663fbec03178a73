#!/usr/bin/env bash
# End to end with real workers: Debian's redis-server, an RQ worker and a Sidekiq worker, both
# instrumented as contrib/ documents, report to `jobtrail serve`; a "web request" in each
# language enqueues jobs under one correlation ID; one job enqueues a child, one fails and is
# retried, one dies. Then `jobtrail trace` must show the whole tree with the right states.
# Everything runs on loopback and is stopped on exit.
#   usage: e2e_workers.sh JOBTRAIL_BINARY
set -euo pipefail

jobtrail=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python=/usr/bin/python3  # Debian's rq and redis modules belong to this interpreter
for tool in redis-server sidekiq ruby "$python"; do
  command -v "$tool" >/dev/null || { echo "e2e_workers: $tool is missing (scripts/install-deps.sh --test)"; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "e2e_workers: FAIL: $*"
  for log in "$work"/*.log; do echo "--- $log"; tail -n 30 "$log"; done
  exit 1
}

# A free loopback port for redis: the kernel picks one.
redis_port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$work" --save "" --appendonly no \
  --protected-mode yes >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$redis_port" ping >/dev/null 2>&1 || fail "redis-server did not start"

db="$work/jobs.db"
"$jobtrail" serve --db "$db" --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.log" &
serve_pid=$!
pids+=($serve_pid)
for _ in $(seq 100); do grep -q "listening on" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/serve.out")
[ -n "$url" ] || fail "jobtrail serve did not start"

export JOBTRAIL_URL="$url"
export REDIS_URL="redis://127.0.0.1:$redis_port/0"
export PYTHONPATH="$root/contrib/python:$here/e2e"
correlation_id=$("$python" -c 'import uuid; print(uuid.uuid4().hex)')

(cd "$work" && exec "$python" "$here/e2e/rq_main.py" worker "$REDIS_URL") >"$work/rq.log" 2>&1 &
pids+=($!)
(cd "$work" && exec sidekiq -r "$here/e2e/sidekiq_jobs.rb" -q default -c 2 -t 2) >"$work/sidekiq.log" 2>&1 &
pids+=($!)

"$python" "$here/e2e/rq_main.py" enqueue "$REDIS_URL" "$correlation_id" || fail "RQ enqueue failed"
ruby "$here/e2e/sidekiq_enqueue.rb" "$correlation_id" || fail "Sidekiq enqueue failed"

# Eight jobs, each finished: four per language (welcome, its child, charge, explode).
finished=0
for _ in $(seq 600); do
  finished=$("$jobtrail" trace "$correlation_id" --db "$db" --format json 2>/dev/null |
             grep -cE '"state":"(succeeded|dead)"' || true)
  [ "$finished" -ge 8 ] && break
  sleep 0.1
done
[ "$finished" -ge 8 ] || fail "only $finished of 8 jobs finished within 60 s"

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
    if parent:
        assert job["parent_job_id"] == one(parent)["job_id"], "%s's parent is %s" % (name, job["parent_job_id"])
    if error:
        assert error in (job["last_error"] or {}).get("message", ""), "%s: error %r" % (name, job["last_error"])
    return job

assert len(jobs) == 8, "expected 8 jobs in the trace, found %d: %s" % (len(jobs), sorted(by_class))
expect("rq_tasks.send_welcome", "succeeded", 1)
expect("rq_tasks.audit_signup", "succeeded", 1, depth=1, parent="rq_tasks.send_welcome")
expect("rq_tasks.charge", "succeeded", 2, error="payment gateway timed out")
expect("rq_tasks.explode", "dead", 1, error="this job always fails")
expect("WelcomeJob", "succeeded", 1)
expect("AuditJob", "succeeded", 1, depth=1, parent="WelcomeJob")
expect("ChargeJob", "succeeded", 2, error="payment gateway timed out")
expect("ExplodeJob", "dead", 1, error="this job always fails")
print("e2e_workers: the trace shows all 8 jobs with the right states, attempts and parents")
PY

# SIGTERM: serve commits what it accepted and exits 0.
kill -TERM "$serve_pid"
wait "$serve_pid" || fail "jobtrail serve exited with $? on SIGTERM"
echo "e2e_workers: PASS"
