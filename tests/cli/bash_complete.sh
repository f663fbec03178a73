#!/usr/bin/env bash
# Sources the bash completion SCRIPT and calls its function for the command line WORDS...,
# the last word being the one under the cursor (give '' for an empty one), as bash does on
# Tab; prints what it offered (COMPREPLY), one per line.
# Usage: bash_complete.sh SCRIPT WORD...
# -u too: the completion must work in a shell that has set it.
set -euo pipefail
script=$1
shift
# shellcheck source=/dev/null
source "$script"
function=$(complete -p "$1" | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
[ -n "$function" ] || { echo "bash_complete: $script registers no function for $1" >&2; exit 3; }
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
COMPREPLY=()
# Its status is not an error: bash ignores it.
"$function" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]:-}" || true
if ((${#COMPREPLY[@]})); then printf '%s\n' "${COMPREPLY[@]}"; fi
