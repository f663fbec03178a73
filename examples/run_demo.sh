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

store=$(mktemp -d)/jobtrail-demo.db
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
printf '\nThe store is %s; try: JOBTRAIL_DB=%s %s show welcome-email-43\n' "$store" "$JOBTRAIL_DB" "$jobtrail"
