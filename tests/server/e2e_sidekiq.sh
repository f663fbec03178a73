#!/usr/bin/env bash
# The Sidekiq client end to end, against Debian's redis-server, real `sidekiq` workers and a
# real `jobtrail serve`, all on loopback ports the kernel picks:
#   1. one request's jobs (accepted as a W3C traceparent) give one trace: a child with its
#      parent, a retry (2 attempts), a dead job, a job scheduled with perform_in (still in the
#      trace), a job that tags entities;
#   2. a job running longer than the stuck deadline while heartbeating is not stuck (`jobtrail
#      check`'s built-in stuck_jobs, deadline 2 s, heartbeats every 0.5 s); one whose worker is
#      SIGKILLed mid-job stops heartbeating and is stuck;
#   3. the entities tagged in a job (declared from its arguments, and from inside it) link it to
#      an `entity: user` check's bad row;
#   4. `serve` SIGKILLed and restarted while a web process enqueues and the worker runs (durable
#      mode, ?wait=commit): every event is stored exactly once, none dropped, some retried;
#   5. a job killed at Sidekiq's shutdown is recorded as failed with that reason.
#   usage: e2e_sidekiq.sh JOBTRAIL_BINARY
set -euo pipefail

jobtrail=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/e2e_workers_lib.sh"
need redis-server redis-cli sidekiq ruby sqlite3

start_redis
start_serve

export JOBTRAIL_HEARTBEAT_INTERVAL=0.5 JOBTRAIL_EXIT_TIMEOUT=30
sql() { sqlite3 -readonly -cmd ".timeout 5000" "$db" "$@"; }
state_of() { "$jobtrail" ls --db "$db" --job "$1" --limit 1 --format json 2>/dev/null | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p'; }
# wait_for runs its command again each try: a "$(...)" in its arguments would be read once, when
# wait_for is called, so the conditions that read the store are functions.
is_started() { test "$(state_of "$1")" = started; }
long_jobs_started() { test "$(sql "SELECT count(*) FROM jobs WHERE job = 'LongJob' AND state = 'started'")" = "$1"; }
correlation_id=$(ruby -rsecurerandom -e 'puts SecureRandom.hex(16)')

# Two workers: the main one (durable, so that serve killed mid-run loses nothing it had
# answered), and one for HungJob alone, to be killed mid-job.
(cd "$work" && JOBTRAIL_DURABLE=1 JOBTRAIL_STATS_FILE="$work/worker.stats" exec sidekiq -r "$here/e2e/sidekiq_jobs.rb" \
  -q default -c 5 -t 1) >"$work/sidekiq.log" 2>&1 &
worker_pid=$!
pids+=($worker_pid)
(cd "$work" && exec sidekiq -r "$here/e2e/sidekiq_jobs.rb" -q hung -c 1) >"$work/sidekiq_hung.log" 2>&1 &
hung_pid=$!
pids+=($hung_pid)

ruby "$here/e2e/sidekiq_enqueue.rb" "$correlation_id" hung || fail "the hung enqueue failed"
E2E_LONG_JOB_S=5 ruby "$here/e2e/sidekiq_enqueue.rb" "$correlation_id" lifecycle || fail "the enqueue failed"

# --- 2. stuck: the hung job's worker dies; the long job keeps beating.
wait_for 30 is_started HungJob || fail "HungJob never started: $("$jobtrail" ls --db "$db" 2>&1)"
kill -KILL "$hung_pid"
wait_for 30 is_started LongJob || fail "LongJob never started"
sleep 2.5  # past the 2 s deadline for both; only LongJob has beaten since

cat >"$work/app.sql" <<'SQL'
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, invoiced INTEGER);
INSERT INTO users VALUES (7, 'seven@example.com', 0), (8, 'eight@example.com', 1);
SQL
sqlite3 "$work/app.db" <"$work/app.sql"
cat >"$work/checks.yaml" <<YAML
databases:
  app: $work/app.db
checks:
  - name: uninvoiced_users
    description: Users whose invoice never went out
    database: app
    entity: user
    query: SELECT id, email FROM users WHERE invoiced = 0
builtin:
  stuck_jobs: {deadline: 2s}
  lost_jobs: false
  dead_jobs: false
  duplicate_executions: false
  missed_cron_runs: false
YAML
status=0
"$jobtrail" check --config "$work/checks.yaml" --db "$db" --no-record --format json >"$work/check.json" \
  2>"$work/check.log" || status=$?
[ "$status" -eq 2 ] || fail "jobtrail check exited $status, not 2 (failures): $(cat "$work/check.json" "$work/check.log")"
[ "$(state_of LongJob)" = started ] || fail "LongJob ended before the check; the check proved nothing"

ruby -rjson - "$work/check.json" "$(sql "SELECT job_id FROM jobs WHERE job = 'InvoiceJob'")" <<'RUBY' || fail "the check's report is wrong: $(cat "$work/check.json")"
report = JSON.parse(File.read(ARGV[0]))
invoice_job = ARGV[1]
text = JSON.generate(report)
checks = report.fetch("checks")
stuck = checks.find { |check| check["name"] == "stuck_jobs" } or abort "no stuck_jobs check in the report"
stuck_text = JSON.generate(stuck)
abort "HungJob is not reported stuck: #{stuck_text}" unless stuck_text.include?("HungJob")
abort "LongJob is reported stuck, though it heartbeats: #{stuck_text}" if stuck_text.include?("LongJob")
entity = checks.find { |check| check["name"] == "uninvoiced_users" } or abort "no uninvoiced_users check"
entity_text = JSON.generate(entity)
abort "user 7's row does not list InvoiceJob #{invoice_job}: #{entity_text}" unless entity_text.include?(invoice_job)
puts "e2e_sidekiq: stuck_jobs flags HungJob and not the heartbeating LongJob; user:7 lists InvoiceJob"
RUBY

# --- 1. the request's trace.
finished() {
  local n
  n=$("$jobtrail" trace "$correlation_id" --db "$db" --format json 2>/dev/null | grep -cE '"state":"(succeeded|dead)"' || true)
  [ "$n" -ge 7 ]
}
wait_for 60 finished || fail "not all 7 finished jobs are in the trace within 60 s: $("$jobtrail" trace "$correlation_id" --db "$db")"
"$jobtrail" trace "$correlation_id" --db "$db"
"$jobtrail" trace "$correlation_id" --db "$db" --format json >"$work/trace.json"
"$jobtrail" show "$(sql "SELECT job_id FROM jobs WHERE job = 'InvoiceJob'")" --db "$db" --format json >"$work/invoice.json"
ruby -rjson - "$work/trace.json" "$work/invoice.json" <<'RUBY' || fail "the trace is not what the worker did"
jobs = File.readlines(ARGV[0]).map { |line| JSON.parse(line) }
by_class = jobs.group_by { |job| job["job"] }
one = lambda do |name|
  found = by_class.fetch(name, [])
  abort "#{name}: expected one job, found #{found.size}" unless found.size == 1
  found.first
end
expect = lambda do |name, state, attempts, depth: 0, parent: nil, error: nil|
  job = one.call(name)
  abort "#{name} is #{job['state']}, not #{state}" unless job["state"] == state
  abort "#{name} made #{job['attempts']} attempts, not #{attempts}" unless job["attempts"] == attempts
  abort "#{name} is at depth #{job['depth']}, not #{depth}" unless job["depth"] == depth
  abort "#{name}'s parent is #{job['parent_job_id']}" if parent && job["parent_job_id"] != one.call(parent)["job_id"]
  abort "#{name}: error #{job['last_error'].inspect}" if error && !(job["last_error"] || {}).fetch("message", "").include?(error)
end
expect.call("WelcomeJob", "succeeded", 1)
expect.call("AuditJob", "succeeded", 1, depth: 1, parent: "WelcomeJob")
expect.call("ChargeJob", "succeeded", 2, error: "payment gateway timed out")
expect.call("ExplodeJob", "dead", 1, error: "this job always fails")
expect.call("InvoiceJob", "succeeded", 1)
expect.call("ReminderJob", "succeeded", 1)
expect.call("LongJob", "succeeded", 1)
expect.call("HungJob", "started", 1)
abort "expected 8 jobs in the trace, found #{jobs.size}: #{by_class.keys.sort}" unless jobs.size == 8
invoice = JSON.parse(File.read(ARGV[1]))
tags = JSON.generate(invoice)
%w[user:7 invoice:2026-11].each { |tag| abort "InvoiceJob is not tagged #{tag}: #{tags}" unless tags.include?(tag) }
puts "e2e_sidekiq: the trace shows all 8 jobs with the right states, attempts and parents"
RUBY
# Heartbeats are folded into the job's heartbeat_at: the last one came near the job's end.
beat=$(sql "SELECT heartbeat_at - started_at FROM jobs WHERE job = 'LongJob' AND correlation_id = '$correlation_id'")
[ "${beat:-0}" -ge 4000000 ] || fail "LongJob's last heartbeat came ${beat:-never} µs after its start, not after 4 s"

# --- 4. serve killed and restarted while the worker runs and a web process enqueues.
listen=${JOBTRAIL_URL#http://}
jobs=150
JOBTRAIL_DURABLE=1 JOBTRAIL_STATS_FILE="$work/producer.json" \
  ruby "$here/e2e/sidekiq_enqueue.rb" "$correlation_id-burst" burst "$jobs" >"$work/producer.log" 2>&1 &
producer=$!
pids+=($producer)
long_runs() { grep -q -- "-burst\"" <<<"$("$jobtrail" ls --db "$db" --job LongJob --state started --format json 2>/dev/null)"; }
wait_for 30 long_runs || fail "the burst's LongJob never started"
sleep 0.5
kill -KILL "$serve_pid"
wait "$serve_pid" 2>/dev/null || true
sleep 1.5  # serve is down: the clients keep their events and retry
start_serve "$listen"
[ "$JOBTRAIL_URL" = "http://$listen" ] || fail "serve came back on $JOBTRAIL_URL, not http://$listen"
wait "$producer" || fail "the web process failed"
echo "e2e_sidekiq: the web process's client: $(cat "$work/producer.json")"
all_done() { [ "$(sql "SELECT count(*) FROM jobs WHERE job_id LIKE 'burst-%' AND state = 'succeeded'")" = "$jobs" ]; }
wait_for 60 all_done || fail "not every burst job was recorded as succeeded within 60 s"

# --- 5. a job killed at shutdown (-t 1), then the worker's own counts at exit.
ruby "$here/e2e/sidekiq_enqueue.rb" "$correlation_id-kill" >/dev/null  # a WelcomeJob etc., then:
ruby -e 'require_relative ARGV[0]; JobTrail.with_correlation(ARGV[1]) { LongJob.perform_async(60) }' \
  "$here/e2e/sidekiq_jobs.rb" "$correlation_id-kill"
wait_for 30 long_jobs_started 1 ||
  fail "the second LongJob never started"
kill -TERM "$worker_pid"
wait "$worker_pid" || fail "sidekiq exited with $? on SIGTERM"

ruby -rjson - "$work/producer.json" "$work/worker.stats" <<'RUBY' || fail "a client's counts are wrong"
producer = JSON.parse(File.read(ARGV[0]))
worker = JSON.parse(File.read(ARGV[1]))
[["web process", producer], ["worker", worker]].each do |who, stats|
  abort "#{who}: #{stats}" unless stats["dropped"].zero? && stats["rejected"].zero? && stats["buffered"].zero?
end
abort "serve was never down for the web process: #{producer}" unless producer["retried"].positive?
abort "serve was never down for the worker: #{worker}" unless worker["retried"].positive?
puts "e2e_sidekiq: nothing dropped; web process #{producer}, worker #{worker}"
RUBY

sql "SELECT j.job_id, e.state, count(*) FROM event e JOIN job j ON j.id = e.job
     WHERE j.job_id LIKE 'burst-%' GROUP BY j.job_id, e.state" >"$work/burst.txt"
ruby - "$work/burst.txt" "$jobs" <<'RUBY' || fail "events were lost or stored twice"
counts = Hash.new { |hash, key| hash[key] = {} }
File.readlines(ARGV[0]).each do |line|
  job, state, n = line.strip.split("|")
  counts[job][state.to_i] = n.to_i
end
# States as stored: 1 enqueued, 2 started, 3 heartbeat, 4 succeeded (tracker/src/event.cpp). A
# job in flight when the heartbeat ticks gets a heartbeat too: any number of those is right.
want = { 1 => 1, 2 => 1, 4 => 1 }
bad = counts.reject { |_job, by_state| by_state.reject { |state, _n| state == 3 } == want }
abort "#{counts.size} burst jobs stored, not #{ARGV[1]}" unless counts.size == Integer(ARGV[1])
abort "#{bad.size} jobs with missing or doubled events, e.g. #{bad.first(5)}" unless bad.empty?
puts "e2e_sidekiq: #{counts.size} jobs, each event stored exactly once across serve's restart"
RUBY

killed=$("$jobtrail" ls --db "$db" --job LongJob --state failed --format json |
         ruby -rjson -e 'STDIN.each_line { |line| job = JSON.parse(line); e = job["last_error"] || {}
                           puts "#{e["class"]}: #{e["message"]}" if job["correlation_id"] == ARGV[0] }' "$correlation_id-kill")
case "$killed" in
  Sidekiq::Shutdown:*"killed at shutdown"*) echo "e2e_sidekiq: the job killed at shutdown: $killed" ;;
  *) fail "the job killed at shutdown was recorded as '$killed'" ;;
esac

kill -TERM "$serve_pid"
wait "$serve_pid" || fail "jobtrail serve exited with $? on SIGTERM"
echo "e2e_sidekiq: PASS"
