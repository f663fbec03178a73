#!/usr/bin/env bash
# Replays the seed stories into an embedded SQLite store, then answers the on-call questions
# with the jobtrail CLI. Usage: examples/run_demo.sh [BUILD_DIR]   (default: build)
set -euo pipefail

build=${1:-build}
jobtrail="$build/cli/jobtrail"
demo_worker="$build/examples/demo_worker"
for program in "$jobtrail" "$demo_worker"; do
  if [ ! -x "$program" ]; then
    echo "run_demo.sh: $program is missing; build first: cmake -S . -B $build && cmake --build $build -j2" >&2
    exit 2
  fi
done

# JOBTRAIL_DEMO_DIR: where the store and the shop's database go (the console's browser test
# keeps them); a fresh temporary directory otherwise.
demo_dir=${JOBTRAIL_DEMO_DIR:-$(mktemp -d)}
mkdir -p "$demo_dir"
store=$demo_dir/jobtrail-demo.db
export JOBTRAIL_DB="sqlite:$store"
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

"$demo_worker" "$JOBTRAIL_DB"
step "Every job of the last 9 hours, newest first (the report started 8 hours ago and never finished)" \
  "$jobtrail" ls --since 9h --limit 30
step "What did the month-close request cause? (its traceparent's trace ID is the correlation ID)" \
  "$jobtrail" trace 4bf92f3577b34da6a3ce929d0e0e4736
step "Why was customer 2 charged twice? The timeline of the payment that failed and was retried" \
  "$jobtrail" show payment-2017-08-2
step "Everything that touched user 42 — signed up, never validated: the email job was never started" \
  "$jobtrail" ls --entity user:42
step "Impossible sequences, kept and flagged" "$jobtrail" ls --anomalies
step "Per job class: outcomes, failure rate, wait and run times" "$jobtrail" stats

# The nightly sanity check: the shop's own database (what the jobs were supposed to produce)
# checked against the job history, the way cron runs it.
cp "$(dirname "$0")/checks.yaml" "$demo_dir/checks.yaml"
sqlite3 "$demo_dir/shop.db" <<'SQL'
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, validated INTEGER NOT NULL, signed_up_at TEXT);
INSERT INTO users VALUES (41, 'user41@example.com', 1, '2017-08-30 09:12'), (42, 'user42@example.com', 0, '2017-08-30 09:13'),
  (43, 'user43@example.com', 1, '2017-08-30 09:14'), (44, 'user44@example.com', 1, '2017-08-30 09:15'),
  (45, 'user45@example.invalid', 0, '2017-08-30 09:16');
CREATE TABLE payments (id INTEGER PRIMARY KEY, invoice TEXT NOT NULL, customer_id INTEGER NOT NULL,
  amount_cents INTEGER NOT NULL, job_id TEXT);
INSERT INTO payments (invoice, customer_id, amount_cents, job_id) VALUES
  ('2017-08-1', 1, 12000, 'payment-2017-08-1'), ('2017-08-2', 2, 8000, 'payment-2017-08-2'),
  ('2017-08-2', 2, 8000, 'payment-2017-08-2-rerun'), ('2017-08-3', 3, 4500, 'payment-2017-08-3');
CREATE TABLE orders (id INTEGER PRIMARY KEY, invoice TEXT, created_at TEXT);
INSERT INTO orders (invoice, created_at) VALUES ('2017-08-1', '2017-08-31'), ('2017-08-2', '2017-08-31'),
  ('2017-08-3', '2017-08-31');
SQL
metrics_dir="$demo_dir/textfile"
mkdir -p "$metrics_dir"
check_step() { step "$@" || printf '(exit code %s: 0 pass, 1 warnings, 2 failures, 3 could not run)\n' "$?"; }
check_step "The nightly sanity check: bad rows in the shop's database, each linked to its jobs" \
  "$jobtrail" check --config "$demo_dir/checks.yaml" --textfile-dir "$metrics_dir"
step "The metrics it left for node_exporter's textfile collector (status: 0 pass, 1 warn, 2 fail, 3 error)" \
  grep -E '^jobtrail_check_status' "$metrics_dir/jobtrail_check_checks.prom"
sqlite3 "$demo_dir/shop.db" "UPDATE users SET validated = 1 WHERE id = 42"
check_step "User 42 validated by hand; the next run tells resolved rows from those still failing" \
  "$jobtrail" check --config "$demo_dir/checks.yaml" --only unvalidated_users_without_welcome_email --only double_charges
step "The history of one check" "$jobtrail" check --history unvalidated_users_without_welcome_email

printf '\nThe store is %s; try: JOBTRAIL_DB=%s %s show welcome-email-43\n' "$store" "$JOBTRAIL_DB" "$jobtrail"
printf 'Walk the same stories in the web console: %s serve --db %s\n' "$jobtrail" "$JOBTRAIL_DB"
printf '  then open http://127.0.0.1:8089/ui/ (the failing checks link to their jobs, the jobs to their traces)\n'
