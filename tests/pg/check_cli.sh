#!/usr/bin/env bash
# Every command of the CLI against a PostgreSQL store, with JOBTRAIL_DB=postgresql://...:
# emit, show, trace, ls, stats, impact, exec, serve (ingest, read API, metrics), check (a SQL check on
# an application table in the same database joined with jobtrail.jobs, and a built-in check),
# check --history, prune.
# Usage: check_cli.sh JOBTRAIL_BINARY   (env: JOBTRAIL_TEST_PG, a server where it may create a database)
set -euo pipefail
jobtrail=$1
server_url=${JOBTRAIL_TEST_PG:?JOBTRAIL_TEST_PG is not set: run this test through ctest}

database="jt_cli_$$_$RANDOM"
psql -X -q "$server_url" -c "CREATE DATABASE $database"
work=$(mktemp -d)
serve_pid=
cleanup() {
  if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
  psql -X -q "$server_url" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" || true
  rm -rf "$work"
}
trap cleanup EXIT
# postgresql:///postgres?host=... -> postgresql:///<database>?host=...
export JOBTRAIL_DB="${server_url/\/postgres\?//$database?}"
[ "$JOBTRAIL_DB" != "$server_url" ] || { echo "check_cli.sh: cannot put a database into $server_url" >&2; exit 1; }

fail() { echo "check_cli.sh: $*" >&2; exit 1; }
expect() {  # expect PATTERN TEXT WHAT
  grep -Eq -- "$1" <<<"$2" || { echo "$2"; fail "missing: $3 (/$1/)"; }
}

# emit: a welcome email that failed once and was retried, another never started.
"$jobtrail" emit --job-id welcome-42 --job WelcomeEmailJob --queue mailers --state enqueued \
  --correlation-id req-signup-42 --entity user:42 --at 2026-11-20T10:00:00Z >/dev/null
"$jobtrail" emit --job-id welcome-42 --job WelcomeEmailJob --state started --attempt 1 --at 2026-11-20T10:00:01Z >/dev/null
"$jobtrail" emit --job-id welcome-42 --job WelcomeEmailJob --state failed --attempt 1 \
  --error "Net::ReadTimeout: smtp timed out" --at 2026-11-20T10:00:02Z >/dev/null
"$jobtrail" emit --job-id welcome-42 --job WelcomeEmailJob --state started --attempt 2 --at 2026-11-20T10:00:05Z >/dev/null
"$jobtrail" emit --job-id welcome-42 --job WelcomeEmailJob --state succeeded --attempt 2 --at 2026-11-20T10:00:06Z >/dev/null
"$jobtrail" emit --job-id welcome-43 --job WelcomeEmailJob --queue mailers --state enqueued \
  --correlation-id req-signup-43 --entity user:43 --parent-id signup-43 --at 2026-11-20T10:00:07Z >/dev/null
"$jobtrail" emit --job-id report-1 --job NightlyReport --state started --at 2026-11-20T10:00:00Z >/dev/null

out=$("$jobtrail" show welcome-42)
expect 'state +succeeded' "$out" "show: the final state"
expect 'attempts +2' "$out" "show: both attempts"
expect 'failed +1 .*Net::ReadTimeout' "$out" "show: the failed attempt's error in the timeline"
expect 'entities +user:42' "$out" "show: the entity tag"

out=$("$jobtrail" trace req-signup-43)
expect 'welcome-43' "$out" "trace: the job of the request"

out=$("$jobtrail" --format json ls --entity user:42)
expect '"job_id": ?"welcome-42"' "$out" "ls --entity in JSON"
out=$("$jobtrail" ls --state enqueued)
expect 'welcome-43 +WelcomeEmailJob +mailers +enqueued' "$out" "ls --state"
[ "$("$jobtrail" ls --state enqueued | grep -c welcome-42 || true)" = 0 ] || fail "ls --state enqueued lists a succeeded job"

out=$("$jobtrail" stats)
expect 'WelcomeEmailJob +2 ' "$out" "stats: both jobs of the class"

# impact: the entities the jobs touched, from the entity index of the PostgreSQL store (recent
# jobs: prune below must leave them).
"$jobtrail" emit --job-id pay-7 --job PaymentJob --state dead --entity customer:7 --entity invoice:70 --at 20m >/dev/null
"$jobtrail" emit --job-id pay-8 --job PaymentJob --state failed --entity customer:7 --at 10m >/dev/null
out=$("$jobtrail" impact --job PaymentJob --state failed,dead --since 1h)
expect '^2 jobs matched, 2 tagged with entities, 2 distinct entities \(customer: 1, invoice: 1\)$' "$out" "impact: the counts"
expect '^customer:7 +2 +[0-9-]+ [0-9:.]+Z +[0-9-]+ [0-9:.]+Z +pay-8, pay-7$' "$out" "impact: the entity and its jobs"
out=$("$jobtrail" --format json impact --since 1h --type customer)
expect '"entity_count": ?1,' "$out" "impact --type in JSON: customer:7 and no other type"
out=$("$jobtrail" --format json impact --since 2026-11-01 --limit 1)
expect '"entity_count": ?4,' "$out" "impact in JSON: user:42, user:43, customer:7, invoice:70"
expect '"shown": ?1,' "$out" "impact --limit in JSON"

# exec: a cron line as a tracked job; its exit code passes through.
set +e
"$jobtrail" exec --job InvoiceExport --every 24h -- sh -c 'exit 7' >/dev/null 2>&1
code=$?
set -e
[ "$code" = 7 ] || fail "exec passed exit code $code, not 7"
out=$("$jobtrail" ls --job InvoiceExport)
expect 'InvoiceExport .*(failed|dead)' "$out" "exec: the failed run"

# serve: ingest over HTTP into PostgreSQL, read it back, export metrics.
"$jobtrail" serve --listen 127.0.0.1:0 >"$work/serve.log" 2>&1 &
serve_pid=$!
port=
for _ in $(seq 1 100); do
  port=$(grep -Eo 'http://127\.0\.0\.1:[0-9]+' "$work/serve.log" | head -1 | sed 's/.*://') || true
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/serve.log"; fail "serve did not start"; }
out=$(curl -sf -X POST "http://127.0.0.1:$port/v1/events?wait=commit" \
  -d '{"job_id":"api-1","job":"ApiSyncJob","state":"enqueued","queue":"sync","entities":["account:9"]}')
expect '"accepted": ?1' "$out" "serve: the event accepted"
out=$(curl -sf "http://127.0.0.1:$port/v1/jobs/api-1")
expect '"state": ?"enqueued"' "$out" "serve: the read API"
out=$(curl -sf "http://127.0.0.1:$port/metrics")
expect '^jobtrail_jobs_waiting\{job_class="ApiSyncJob",queue="sync"\} 1$' "$out" "serve: the waiting gauge"
expect '^jobtrail_cron_expected_interval_seconds\{job_class="InvoiceExport"\} 86400$' "$out" "serve: the schedule"
kill "$serve_pid"
wait "$serve_pid" || fail "serve did not stop cleanly"
serve_pid=
"$jobtrail" show api-1 >/dev/null || fail "the ingested job is not in the store"

# check: an application table in the same database, joined with the store's views.
psql -X -q "$JOBTRAIL_DB" <<'SQL'
CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL, validated boolean NOT NULL);
INSERT INTO users VALUES (42, 'a@example.com', false), (43, 'b@example.com', false), (44, 'c@example.com', true);
SQL
cat >"$work/checks.yaml" <<YAML
databases:
  app: $JOBTRAIL_DB
checks:
  - name: unvalidated_users_without_welcome_email
    database: app
    entity: user
    query: |
      SELECT u.id, u.email FROM users u
      WHERE NOT u.validated AND NOT EXISTS (
        SELECT 1 FROM jobtrail.job_entities e JOIN jobtrail.jobs j ON j.job_id = e.job_id
        WHERE e.entity = 'user:' || u.id AND j.job = 'WelcomeEmailJob' AND j.state = 'succeeded')
      ORDER BY u.id
builtin:
  stuck_jobs:
    deadline: 1h
YAML
set +e
out=$("$jobtrail" check --config "$work/checks.yaml" 2>&1)
code=$?
set -e
[ "$code" = 2 ] || { echo "$out"; fail "check exited $code, not 2"; }
expect 'FAIL +unvalidated_users_without_welcome_email +1 row' "$out" "check: the user whose email never went out"
expect 'user:43: welcome-43 +WelcomeEmailJob +enqueued' "$out" "check: the row linked to its job"
expect 'FAIL +stuck_jobs +1 row' "$out" "check: the built-in check on the PostgreSQL store"
out=$("$jobtrail" check --config "$work/checks.yaml" --history unvalidated_users_without_welcome_email)
expect 'fail' "$out" "check --history: the recorded run"

# prune: old finished jobs go; running, waiting and recent ones stay.
out=$("$jobtrail" prune --older-than 1d)
expect 'deleted 1 job \(5 events\)' "$out" "prune: the old finished job, welcome-42, with its events"
"$jobtrail" show welcome-42 >/dev/null 2>&1 && fail "prune kept an old finished job"
grep -q InvoiceExport <<<"$("$jobtrail" ls --job InvoiceExport)" || fail "prune deleted a recent job"
"$jobtrail" show welcome-43 >/dev/null || fail "prune deleted a waiting job"
"$jobtrail" show report-1 >/dev/null || fail "prune deleted a running job"
echo "check_cli.sh: every command works on PostgreSQL"
