#!/usr/bin/env bash
# The builds CI runs after the README's test command (.ci/run), each in a directory of its own:
#   release     GCC, CMAKE_BUILD_TYPE=Release, -Werror: what a packager builds; built, and its
#               tests run except the PostgreSQL, end-to-end and slow ones (already run above)
#   asan        Clang 14, ASan + UBSan, -Werror: the whole test suite, stopping at the first report
#   tsan        Clang 14, TSan: the tracker's and the server's tests
#   matrix      not run by CI: builds (without running) the rest of the matrix of build types and
#               compilers, Clang Debug, Clang Release and GCC RelWithDebInfo, all with -Werror
# Usage: scripts/ci-extra-builds.sh [STAGE...]   (default: release asan tsan, in that order)
# Prints how long each stage took. Uses ccache when it is installed; works without it.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=2
launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi

# Every sanitizer report ends the program with an error, and so fails its test.
# Leaks are reported too (detect_leaks=1); there is no suppression file, so none is ignored.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"

configure() {
  local dir=$1
  shift
  cmake -S . -B "$dir" "${launcher[@]}" -DJOBTRAIL_BUILD_BENCH=OFF "$@"
}

stage_release() {
  configure build-release -DCMAKE_BUILD_TYPE=Release -DJOBTRAIL_WERROR=ON
  cmake --build build-release -j"$jobs"
  ctest --test-dir build-release -j"$jobs" -LE 'postgres|e2e|slow' --output-on-failure
}

stage_asan() {
  configure build-asan -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJOBTRAIL_WERROR=ON \
    -DJOBTRAIL_SANITIZE=address,undefined
  cmake --build build-asan -j"$jobs"
  ctest --test-dir build-asan --output-on-failure
}

# TSan instruments only what it builds: the tracker, the server and the `jobtrail` binary the
# server's tests start. The test programs are run directly (SQLite store); the PostgreSQL store
# runs under ASan above.
stage_tsan() {
  configure build-tsan -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJOBTRAIL_WERROR=ON \
    -DJOBTRAIL_SANITIZE=thread
  cmake --build build-tsan -j"$jobs" --target tracker_tests server_tests record_events jobtrail
  build-tsan/tests/tracker/tracker_tests
  build-tsan/tests/server/server_tests
}

# The three the stages above leave out: with GCC Debug (the README's build), GCC Release and
# Clang RelWithDebInfo (asan, tsan), every build type is built by both compilers.
stage_matrix() {
  local compiler type dir
  for combination in clang++-14:Debug clang++-14:Release g++:RelWithDebInfo; do
    compiler=${combination%%:*}
    type=${combination##*:}
    dir=build-matrix-${compiler%%+*}-${type,,}
    configure "$dir" -DCMAKE_CXX_COMPILER="$compiler" -DCMAKE_BUILD_TYPE="$type" -DJOBTRAIL_WERROR=ON -DJOBTRAIL_BUILD_BENCH=ON
    cmake --build "$dir" -j"$jobs"
  done
}

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(release asan tsan)
for stage in "${stages[@]}"; do
  case "$stage" in
    release | asan | tsan | matrix) ;;
    *) echo "usage: $0 [release|asan|tsan|matrix]..." >&2; exit 2 ;;
  esac
done
timings=()
for stage in "${stages[@]}"; do
  started=$SECONDS
  echo "== ci-extra-builds: $stage"
  "stage_$stage"
  timings+=("$stage $((SECONDS - started)) s")
  echo "== ci-extra-builds: $stage took $((SECONDS - started)) s"
done
printf '== ci-extra-builds: %s\n' "${timings[@]}"
