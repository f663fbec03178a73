#!/usr/bin/env bash
# End to end: Debian's real Prometheus scrapes a real `jobtrail serve` and a real Pushgateway
# fed by `jobtrail check`, with jobtrail's alert rules loaded, on loopback only.
#  1. problems planted (a job running for 2 hours, a failing sanity check): the Prometheus API
#     must show JobtrailJobStuck and JobtrailCheckFailing firing, within a bounded wait;
#  2. a healthy history and passing checks: after as many evaluations, nothing fires;
#  3. every metric named by the rules and the dashboard appears in the real output.
# The rules' `for:` durations are shortened to 2s in a copy: this test proves the wiring
# (names, labels, scraping, evaluation); rules_test.yml proves the thresholds and durations.
# Usage: e2e_alerts.sh JOBTRAIL RULES DASHBOARD
set -euo pipefail
jobtrail=$(realpath "$1")
rules=$(realpath "$2")
dashboard=$(realpath "$3")
here=$(cd "$(dirname "$0")" && pwd)
for program in prometheus prometheus-pushgateway python3; do
  command -v "$program" >/dev/null || { echo "e2e_alerts.sh: $program is missing (scripts/install-deps.sh --test)" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf 'e2e_alerts.sh: %s\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# http GET|POST URL [BODY_FILE]: prints the body; fails on a status >= 400.
http() {
  python3 - "$@" <<'PY'
import sys, urllib.request
method, url = sys.argv[1], sys.argv[2]
data = open(sys.argv[3], "rb").read() if len(sys.argv) > 3 else None
request = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/x-ndjson"} if data else {})
with urllib.request.urlopen(request, timeout=10) as response:
    sys.stdout.write(response.read().decode())
PY
}
wait_until_up() {  # URL: waits up to 30 s for an answer
  for _ in $(seq 1 150); do
    http GET "$1" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  say "nothing answers at $1"; exit 1
}

# A fast copy of the rules: `for: 15m` -> `for: 2s`.
sed -E 's/^( +for: ).*/\12s/' "$rules" > "$work/rules.yml"

# start_stack NAME: a store, serve, a Pushgateway and Prometheus for one scenario.
start_stack() {
  local name=$1 dir="$work/$1"
  mkdir -p "$dir/tsdb"
  local serve_port gateway_port prometheus_port
  serve_port=$(free_port); gateway_port=$(free_port); prometheus_port=$(free_port)
  "$jobtrail" serve --db "sqlite:$dir/jobs.db" --listen "127.0.0.1:$serve_port" >"$dir/serve.log" 2>&1 &
  pids+=($!)
  prometheus-pushgateway --web.listen-address="127.0.0.1:$gateway_port" >"$dir/gateway.log" 2>&1 &
  pids+=($!)
  cat >"$dir/prometheus.yml" <<YML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["$work/rules.yml"]
scrape_configs:
  - job_name: jobtrail
    static_configs: [{targets: ["127.0.0.1:$serve_port"]}]
  - job_name: pushgateway
    honor_labels: true
    static_configs: [{targets: ["127.0.0.1:$gateway_port"]}]
YML
  prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
    --web.listen-address="127.0.0.1:$prometheus_port" >"$dir/prometheus.log" 2>&1 &
  pids+=($!)
  wait_until_up "http://127.0.0.1:$serve_port/healthz"
  wait_until_up "http://127.0.0.1:$gateway_port/metrics"
  wait_until_up "http://127.0.0.1:$prometheus_port/-/ready"
  eval "${name}_serve=http://127.0.0.1:$serve_port ${name}_gateway=http://127.0.0.1:$gateway_port ${name}_prometheus=http://127.0.0.1:$prometheus_port"
}

# events FILE HEALTHY: NDJSON of one of every kind of event, and for the problem scenario a
# report started two hours ago, a welcome email waiting for 20 minutes and a double charge.
events() {
  python3 - "$1" "$2" <<'PY'
import json, sys, time
path, healthy = sys.argv[1], sys.argv[2] == "healthy"
now = int(time.time() * 1e6)
minute = 60 * 1000000
lines = []
def event(job_id, state, at, **fields):
    lines.append(dict(job_id=job_id, state=state, at=at, **fields))
for i in range(20):
    base = now - 30 * minute + i * minute
    fields = dict(job="InvoiceJob", queue="billing", correlation_id=f"req-{i}")
    event(f"invoice-{i}", "enqueued", base, **fields)
    event(f"invoice-{i}", "started", base + 200000, attempt=1, **fields)
    event(f"invoice-{i}", "heartbeat", base + 300000, attempt=1, **fields)
    event(f"invoice-{i}", "succeeded", base + 900000, attempt=1, **fields)
if not healthy:
    # One of each unhappy outcome, a stuck report, a waiting email, a double charge.
    event("payment-1", "started", now - 5 * minute, job="PaymentJob", queue="payments", attempt=1)
    event("payment-1", "failed", now - 4 * minute, job="PaymentJob", queue="payments", attempt=1,
          error={"class": "Stripe::APIConnectionError", "message": "timed out"})
    event("payment-1", "dead", now - 4 * minute + 1, job="PaymentJob", queue="payments", attempt=1)
    event("payment-2", "cancelled", now - 3 * minute, job="PaymentJob", queue="payments")
    event("report-1", "enqueued", now - 121 * minute, job="NightlyReportJob", queue="reports")
    event("report-1", "started", now - 120 * minute, job="NightlyReportJob", queue="reports", attempt=1)
    event("email-1", "enqueued", now - 20 * minute, job="WelcomeEmailJob", queue="mailers")
    for n, at in ((1, now - 2 * minute), (2, now - minute)):
        event(f"charge-{n}", "succeeded", at, job="ChargeJob", queue="payments", idempotency_key="invoice-7")
with open(path, "w") as out:
    out.write("\n".join(json.dumps(line) for line in lines) + "\n")
PY
}

# checks DIR HEALTHY: an app database and a checks file; the problem one has an unvalidated user.
checks() {
  python3 - "$1" "$2" <<'PY'
import sqlite3, sys
directory, healthy = sys.argv[1], sys.argv[2] == "healthy"
db = sqlite3.connect(f"{directory}/app.db")
db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, validated INTEGER NOT NULL)")
db.executemany("INSERT INTO users VALUES (?, ?)", [(1, 1), (2, 1)] + ([] if healthy else [(42, 0)]))
db.commit()
with open(f"{directory}/checks.yaml", "w") as out:
    out.write("""databases:
  app: app.db
checks:
  - name: unvalidated_users
    description: Users who never validated their email
    database: app
    query: SELECT id FROM users WHERE validated = 0
builtin:
  stuck_jobs: {deadline: 1h}
""")
PY
}

run_scenario() {  # NAME HEALTHY
  local name=$1 dir="$work/$1" serve gateway
  start_stack "$name"
  serve=$(eval echo "\$${name}_serve"); gateway=$(eval echo "\$${name}_gateway")
  events "$dir/events.ndjson" "$2"
  http POST "$serve/v1/events?wait=commit" "$dir/events.ndjson" >/dev/null
  checks "$dir" "$2"
  mkdir -p "$dir/textfile"
  local status=0
  "$jobtrail" check --config "$dir/checks.yaml" --db "sqlite:$dir/jobs.db" \
    --push-gateway "$gateway" --textfile-dir "$dir/textfile" >"$dir/check.log" 2>&1 || status=$?
  say "$name: jobtrail check exited $status"
  if [ "$2" = healthy ] && [ "$status" -ne 0 ]; then cat "$dir/check.log"; say "the healthy checks must pass"; exit 1; fi
  if [ "$2" != healthy ] && [ "$status" -ne 2 ]; then cat "$dir/check.log"; say "the planted problem must fail the check"; exit 1; fi
}

firing() {  # PROMETHEUS: "alertname{label=value,...}" per firing alert, sorted
  http GET "$1/api/v1/alerts" | python3 -c '
import json, sys
for alert in json.load(sys.stdin)["data"]["alerts"]:
    if alert["state"] == "firing":
        labels = alert["labels"]
        keys = ("check", "job_class")
        print(labels["alertname"] + "{" + ",".join(f"{k}={labels[k]}" for k in keys if k in labels) + "}")
' | sort -u
}

run_scenario problem problem
run_scenario healthy healthy

say "waiting (at most 90 s) for the planted problems to fire"
deadline=$((SECONDS + 90))
until firing "$problem_prometheus" | grep -qx 'JobtrailJobStuck{job_class=NightlyReportJob}' &&
      firing "$problem_prometheus" | grep -qx 'JobtrailCheckFailing{check=unvalidated_users}'; do
  if [ $SECONDS -ge $deadline ]; then
    say "not firing in time; firing now:"; firing "$problem_prometheus"
    tail -5 "$work/problem/prometheus.log"; exit 1
  fi
  sleep 1
done
say "firing in the problem scenario:"
firing "$problem_prometheus" | sed 's/^/  /'

# The healthy stack has been evaluated as long as the problem one took to fire, and more.
sleep 5
healthy_firing=$(firing "$healthy_prometheus")
if [ -n "$healthy_firing" ]; then
  say "a healthy history must fire nothing, but these fire:"; echo "$healthy_firing"; exit 1
fi
say "healthy scenario: nothing fires"

http GET "$problem_serve/metrics" >"$work/serve.prom"
python3 "$here/check_metric_names.py" "$rules" "$dashboard" "$work/serve.prom" "$work/problem/textfile/"*.prom
