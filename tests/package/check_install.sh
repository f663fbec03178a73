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
