#!/usr/bin/env bash
# A short run of every fuzz harness, after replaying every kept regression input: CI's check
# that the harnesses build, the regressions stay fixed and the docs' examples still fuzz.
# Configures a Clang build of its own (JOBTRAIL_FUZZ_BUILD, default build-fuzz) and leaves
# the default build alone. Usage: tests/fuzz/smoke.sh [SECONDS_PER_HARNESS]  (default 10)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}
build=${JOBTRAIL_FUZZ_BUILD:-build-fuzz}
harnesses=(fuzz_ingest fuzz_traceparent fuzz_time_grammar fuzz_check_config fuzz_table)

cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJOBTRAIL_FUZZ=ON \
      -DJOBTRAIL_BUILD_BENCH=OFF -DJOBTRAIL_BUILD_EXAMPLES=OFF ${CMAKE_CXX_COMPILER_LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$CMAKE_CXX_COMPILER_LAUNCHER} >/dev/null
cmake --build "$build" -j2 --target "${harnesses[@]}"
python3 tests/fuzz/make_seeds.py . "$build/fuzz-seeds"

findings="$build/fuzz-findings"
mkdir -p "$findings"
run() {  # run LOG PROGRAM ARGS...: quiet unless it fails
  local log=$1
  shift
  if ! "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "FAILED: $* (log: $log, the failing input is in $findings)" >&2
    exit 1
  fi
}

for harness in "${harnesses[@]}"; do
  name=${harness#fuzz_}
  program="$build/tests/fuzz/$harness"
  regressions=(tests/fuzz/regressions/"$name"/*)
  if [[ -e ${regressions[0]} ]]; then
    echo "== $harness: replaying ${#regressions[@]} regression input(s)"
    run "$findings/$name-regressions.log" "$program" -runs=1 "${regressions[@]}"
  fi
  # A corpus of this run's own, so a run never writes into the source tree.
  corpus="$build/fuzz-corpus/$name"
  mkdir -p "$corpus"
  dict=()
  [[ -f tests/fuzz/$name.dict ]] && dict=(-dict="tests/fuzz/$name.dict")
  echo "== $harness: fuzzing for ${seconds}s"
  run "$findings/$name.log" "$program" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$findings/$name-" "$corpus" "$build/fuzz-seeds/$name"
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$findings/$name.log"
done
echo "fuzz smoke: all harnesses ran clean"
