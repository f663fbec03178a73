#!/usr/bin/env bash
# Real workers, plain and tracked: RQ, Celery (bench/workers/python_bench.py) and Sidekiq
# (bench/workers/sidekiq_bench.rb, if present) drain the same N trivial jobs from one
# redis-server, reporting to one `jobtrail serve`, both on loopback ports the kernel picks.
# Prints each bench's JSON line, then one table. Aims (issue 10): tracked/plain >= 0.9,
# <= 50 µs added to an enqueue at p50.
#   usage: bench/workers_bench.sh JOBTRAIL_BINARY [JOBS]     (JOBS default 2000)
set -euo pipefail

jobtrail=$(realpath "${1:?usage: workers_bench.sh JOBTRAIL_BINARY [JOBS]}")
export JOBTRAIL_BENCH_JOBS=${2:-2000}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$root/tests/server/e2e_workers_lib.sh"
need redis-server redis-cli "$python"

start_redis
start_serve
export PYTHONPATH="$root/contrib/python:$here/workers" BENCH_LOG_DIR="$work"
results="$work/results.jsonl"
: >"$results"

for kind in rq celery; do
  "$python" "$here/workers/python_bench.py" "$kind" | tee -a "$results" || fail "the $kind bench failed"
done
if [ -f "$here/workers/sidekiq_bench.rb" ]; then
  need ruby
  JOBTRAIL_BENCH_SERVE_PID=$serve_pid ruby "$here/workers/sidekiq_bench.rb" | tail -n 1 | tee -a "$results" || fail "the sidekiq bench failed"
else
  echo "workers_bench: bench/workers/sidekiq_bench.rb is not there: Sidekiq skipped"
fi

"$python" - "$results" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip().startswith("{")]
print()
print("%-8s %6s %12s %12s %8s %14s %14s" % ("worker", "jobs", "plain/s", "tracked/s", "ratio", "enq +µs p50", "enq +µs p99"))
for r in rows:
    ratio = r["tracked_jobs_per_s"] / r["plain_jobs_per_s"] if r["plain_jobs_per_s"] else float("nan")
    print("%-8s %6d %12.1f %12.1f %8.2f %14.1f %14.1f" % (r["worker"], r["jobs"], r["plain_jobs_per_s"],
          r["tracked_jobs_per_s"], ratio, r["enqueue_added_us_p50"], r["enqueue_added_us_p99"]))
print("aims: ratio >= 0.90, enqueue added p50 <= 50 µs")
PY
