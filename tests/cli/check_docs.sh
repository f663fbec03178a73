#!/usr/bin/env bash
# The man page and the completions the build wrote, read by the real tools. What they must
# offer is taken from the binary itself (--help, and the errors that name the valid values),
# never from a list kept here.
# Usage: check_docs.sh man|bash|zsh JOBTRAIL DOCS_DIR
set -euo pipefail
mode=$1
jobtrail=$2
docs=$3
here=$(cd "$(dirname "$0")" && pwd)
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "check_docs: $1 is missing (scripts/install-deps.sh --test installs it)" >&2; exit 1; }
}

# The entries --help lists under a heading ("Subcommands:", "Options:"), first word each.
listed() {
  awk -v heading="$1" '$0 == heading { inside = 1; next } inside && $0 == "" { exit }
    inside && /^  [^ ]/ { print $1 }'
}
subcommands=$("$jobtrail" --help | listed "Subcommands:")
[ "$(echo "$subcommands" | wc -l)" -ge 10 ] || { echo "check_docs: cannot read the subcommands of --help" >&2; exit 1; }
# The options of a subcommand and the global ones after it, as names, sorted.
options_of() {
  { "$jobtrail" "$1" --help | listed "Options:"; "$jobtrail" --help | listed "Options:" | grep -v -e '^-h,--help$'; } |
    tr ',' '\n' | sort -u
}
# What a bad value's error names as the valid ones: "not in {a,b}" or "(valid: a, b; ...)".
valid_values() {
  sed -n -e 's/.* not in {\([^}]*\)}.*/\1/p' -e 's/.*(valid: \([^;)]*\).*/\1/p' | tr -d ' ' | tr ',' '\n' | sort
}
# (Those commands fail, as they should: their status is not the point.)
format_values=$({ "$jobtrail" --format no-such-format ls 2>&1 || true; } | valid_values)
state_values=$({ "$jobtrail" --db /nonexistent/store.db ls --state no-such-state 2>&1 || true; } | valid_values)
[ -n "$format_values" ] && [ -n "$state_values" ] || { echo "check_docs: cannot read the valid values" >&2; exit 1; }

# expect NAME EXPECTED ACTUAL: both lists compared sorted.
expect() {
  if [ "$(echo "$2" | sort)" != "$(echo "$3" | sort)" ]; then
    fail "$1: expected [$(echo "$2" | tr '\n' ' ')] got [$(echo "$3" | tr '\n' ' ')]"
  fi
}

case $mode in
  man)
    need groff
    need mandoc
    need man
    page=$docs/jobtrail.1
    [ -s "$page" ] || { echo "check_docs: no man page at $page" >&2; exit 1; }
    # -ww: every warning, -z: no output; a warning is a failure.
    warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || fail "groff failed"
    [ -z "$warnings" ] || fail "groff warns: $warnings"
    lint=$(mandoc -Tlint -W warning "$page" 2>&1) || fail "mandoc -Tlint: $lint"
    [ -z "$lint" ] || fail "mandoc warns: $lint"
    rendered=$(MANWIDTH=80 man -l "$page" 2>/dev/null | col -bx) || fail "man -l failed"
    for section in NAME SYNOPSIS DESCRIPTION OPTIONS COMMANDS "EXIT STATUS" ENVIRONMENT "SEE ALSO"; do
      grep -qx "$section" <<<"$rendered" || fail "no $section section"
    done
    # Each subcommand is a subsection, nothing else is.
    expect "man page subsections" "$subcommands" "$(echo "$rendered" | sed -n 's/^   \([^ ].*\)$/\1/p')"
    version=$("$jobtrail" --version)
    grep -q "^$version " <<<"$(tail -n 1 <<<"$rendered")" || fail "the footer does not name '$version'"
    grep -q "Exit codes: 0 ok" <<<"$rendered" || fail "EXIT STATUS does not quote the exit codes"
    grep -q "^       JOBTRAIL_DB$" <<<"$rendered" || fail "ENVIRONMENT does not list JOBTRAIL_DB"
    ;;
  bash)
    script=$docs/completion/jobtrail.bash
    [ -s "$script" ] || { echo "check_docs: no bash completion at $script" >&2; exit 1; }
    complete() { bash "$here/bash_complete.sh" "$script" jobtrail "$@"; }
    expect "jobtrail l<Tab>" "$(echo "$subcommands" | grep '^l')" "$(complete l)"
    expect "jobtrail ls --st<Tab>" "$(options_of ls | grep '^--st')" "$(complete ls --st)"
    expect "jobtrail ls --format <Tab>" "$format_values" "$(complete ls --format '')"
    expect "jobtrail ls --state <Tab>" "$state_values" "$(complete ls --state '')"
    expect "jobtrail ls --state failed,<Tab>" "$(echo "$state_values" | sed 's/^/failed,/')" "$(complete ls --state failed,)"
    expect "jobtrail ls --<Tab>" "$(options_of ls | grep '^--')" "$(complete ls --)"
    expect "jobtrail help <Tab>" "$subcommands" "$(complete help '')"
    expect "jobtrail --db=$docs/jobtrail.<Tab>" "$docs/jobtrail.1" "$(complete --db = "$docs/jobtrail.")"
    ;;
  zsh)
    need zsh
    script=$docs/completion/_jobtrail
    [ -s "$script" ] || { echo "check_docs: no zsh completion at $script" >&2; exit 1; }
    zsh -n "$script" || fail "zsh -n: not valid zsh"
    head -n 1 "$script" | grep -qx '#compdef jobtrail' || fail "the first line is not '#compdef jobtrail'"
    complete() { zsh "$here/zsh_complete.zsh" "$docs/completion" "$1"; }
    expect "jobtrail l<Tab>" "$(echo "$subcommands" | grep '^l')" "$(complete 'jobtrail l')"
    expect "jobtrail ls --st<Tab>" "$(options_of ls | grep '^--st')" "$(complete 'jobtrail ls --st')"
    expect "jobtrail ls --format <Tab>" "$format_values" "$(complete 'jobtrail ls --format ')"
    expect "jobtrail ls --state <Tab>" "$state_values" "$(complete 'jobtrail ls --state ')"
    expect "jobtrail <Tab>" "$subcommands" "$(complete 'jobtrail ')"
    ;;
  *)
    echo "usage: $0 man|bash|zsh JOBTRAIL DOCS_DIR" >&2
    exit 2
    ;;
esac

if [ "$failures" -ne 0 ]; then
  echo "check_docs $mode: $failures failed" >&2
  exit 1
fi
echo "check_docs $mode: ok"
