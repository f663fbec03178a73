#!/usr/bin/env bash
# Installs the build into a temporary prefix, builds tests/package against it with
# find_package(jobtrail), and runs it. Usage: check_install.sh BUILD_DIR SOURCE_DIR [CMAKE_ARG...]
# (the CMake arguments configure the consumer: the build's compiler, and its sanitizer if any)
set -euo pipefail
build=$1
source=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$source/tests/package" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" "$@" >/dev/null
cmake --build "$work/consumer" -j2 >/dev/null
"$work/consumer/consumer" "sqlite:$work/store.db"

# The man page and the completions land where man, bash-completion and zsh look (Debian's
# places), and are what the installed binary says of itself.
prefix=$work/prefix
if [ -x "$prefix/bin/jobtrail" ]; then
  page=$prefix/share/man/man1/jobtrail.1
  bash_completion=$prefix/share/bash-completion/completions/jobtrail
  zsh_completion=$prefix/share/zsh/vendor-completions/_jobtrail
  for file in "$page" "$bash_completion" "$zsh_completion"; do
    [ -s "$file" ] || { echo "check_install: $file was not installed" >&2; exit 1; }
  done
  date=$(sed -n 's/^\.TH JOBTRAIL 1 "\([^"]*\)".*/\1/p' "$page")
  cmp -s "$page" <("$prefix/bin/jobtrail" __generate man --date "$date") ||
    { echo "check_install: the installed man page is not the installed binary's" >&2; exit 1; }
  cmp -s "$bash_completion" <("$prefix/bin/jobtrail" __generate bash) ||
    { echo "check_install: the installed bash completion is not the installed binary's" >&2; exit 1; }
  cmp -s "$zsh_completion" <("$prefix/bin/jobtrail" __generate zsh) ||
    { echo "check_install: the installed zsh completion is not the installed binary's" >&2; exit 1; }
  # man finds the page through the prefix, as it would under /usr.
  MANPATH=$prefix/share/man man -w jobtrail | grep -qx "$page" ||
    { echo "check_install: man does not find the installed page" >&2; exit 1; }
fi
