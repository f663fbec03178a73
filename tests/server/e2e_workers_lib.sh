# Sourced by the worker end-to-end tests and bench/workers_bench.sh: start Debian's
# redis-server and `jobtrail serve` on loopback ports the kernel picks, in a temp dir of our
# own, and stop everything we started on exit (E2E_KEEP=1 keeps the temp dir to look at).
#   needs: $jobtrail (the binary); sets: $work, $python, $REDIS_URL, $JOBTRAIL_URL, $db, $serve_pid

python=/usr/bin/python3  # Debian's rq, redis and celery modules belong to this interpreter
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ -n "${E2E_KEEP:-}" ]; then echo "${0##*/}: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

fail() {
  echo "${0##*/}: FAIL: $*"
  for log in "$work"/*.log; do echo "--- $log"; tail -n 30 "$log"; done
  exit 1
}

need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "${0##*/}: $tool is missing (scripts/install-deps.sh --test)"; exit 1; }
  done
}

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_redis() {
  local port
  port=$(free_port)
  redis-server --bind 127.0.0.1 --port "$port" --dir "$work" --save "" --appendonly no \
    --protected-mode yes >"$work/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$port" ping >/dev/null 2>&1 || fail "redis-server did not start"
  export REDIS_URL="redis://127.0.0.1:$port/0"
}

# start_serve [LISTEN]: LISTEN defaults to a port the kernel picks; a restart passes the old one.
start_serve() {
  db="$work/jobs.db"
  : >"$work/serve.out"
  "$jobtrail" serve --db "$db" --listen "${1:-127.0.0.1:0}" >"$work/serve.out" 2>>"$work/serve.log" &
  serve_pid=$!
  pids+=($serve_pid)
  for _ in $(seq 100); do grep -q "listening on" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
  JOBTRAIL_URL=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/serve.out")
  [ -n "$JOBTRAIL_URL" ] || fail "jobtrail serve did not start"
  export JOBTRAIL_URL
}

# wait_for SECONDS COMMAND...: runs COMMAND every 0.2 s until it succeeds.
wait_for() {
  local tries=$(( $1 * 5 )); shift
  for _ in $(seq "$tries"); do "$@" && return 0; sleep 0.2; done
  return 1
}
