#!/usr/bin/env bash
# Runs the demo as the README does and checks that each seed story is visible in its output.
# Usage: check_demo.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
output=$(bash "$here/../../examples/run_demo.sh" "$1" 2>&1) || {
  echo "$output"
  echo "check_demo.sh: the demo failed" >&2
  exit 1
}
echo "$output"
expect() {
  if ! grep -Eq "$1" <<<"$output"; then
    echo "check_demo.sh: missing from the demo's output: $2 (/$1/)" >&2
    exit 1
  fi
}
expect 'welcome-email-42 +WelcomeEmailJob +mailers +enqueued' "the lost welcome email, never started"
expect 'welcome-email-43 +WelcomeEmailJob +mailers +succeeded +(just now|[^ ]+ ago) +2 ' "the email that failed before the commit and was retried"
expect 'welcome-email-44 .*duplicate_success' "the email sent twice"
expect 'welcome-email-45 +WelcomeEmailJob +mailers +dead' "the email that gave up"
expect 'payment-2017-08-2-rerun .*duplicate_idempotency_key' "the double charge"
expect '│  ├─ payment-2017-08-2 ' "the payment under its invoice in the month-close trace"
expect 'failed +1 .*Stripe::APIConnectionError' "the failed payment attempt in its timeline"
expect 'nightly-report-2017-08-31 .*started .*8h0[0-9]m\+' "the report running for eight hours"
expect 'FAIL  unvalidated_users_without_welcome_email  2 rows' "the check finding the unvalidated users"
expect 'user:42: welcome-email-42  WelcomeEmailJob  enqueued' "the unvalidated user linked to its lost email job"
expect 'user:45: welcome-email-45  WelcomeEmailJob  dead .*InvalidRecipient' "the other one linked to its dead job"
expect 'FAIL  double_charges  1 row' "the check finding the double charge"
expect 'invoice:2017-08-2: payment-2017-08-2-rerun  PaymentJob  succeeded' "the double charge linked to its payment jobs"
expect 'FAIL  stuck_jobs  1 row' "the built-in check finding the stuck report"
expect '^jobtrail_check_status\{check="double_charges",config="checks"\} 2$' "the metrics for node_exporter"
expect 'FAIL  unvalidated_users_without_welcome_email  1 row: 1 still failing, 1 resolved since the last run' \
  "the second run telling resolved from still failing"
echo "check_demo.sh: every story is there"
