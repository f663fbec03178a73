#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests, from Debian's `postgresql` package.
#
#   pg_cluster.sh start DIR     a fresh cluster in DIR (a stale one there is removed first);
#                               prints its connection URL once it accepts connections
#   pg_cluster.sh restart DIR   fast shutdown, then start the same data again; prints the URL
#   pg_cluster.sh stop DIR      fast shutdown; does nothing when nothing runs
#   pg_cluster.sh kill DIR      immediate shutdown (as if the server crashed); idempotent
#   pg_cluster.sh url DIR       the connection URL
#
# The server listens on a unix socket in DIR only (no TCP); the port number just names the
# socket. initdb and postgres refuse to run as root, so as root the server runs as the
# `postgres` system user (created by Debian's package), else as `nobody`; JOBTRAIL_PG_USER
# overrides. The server binaries are never taken from PATH (an unrelated pg_ctl may be there):
# JOBTRAIL_PG_BINDIR, else `pg_config --bindir` when it holds initdb, else the newest
# /usr/lib/postgresql/*/bin.
set -euo pipefail

readonly port=5432
readonly role=jobtrail
readonly marker=.jobtrail-pg-cluster

die() { echo "pg_cluster.sh: $*" >&2; exit 1; }

usage() {
  echo "usage: $0 {start|restart|stop|kill|url} DIR" >&2
  exit 2
}

[ $# -eq 2 ] || usage
command=$1
dir=$2
[ -n "$dir" ] || usage
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
dir=${dir%/}
# The URL carries DIR unescaped, and libpq would read '&', '?', '%' or spaces in it.
[[ "$dir" =~ ^[A-Za-z0-9/._+-]+$ ]] || die "DIR must be made of letters, digits and /._+- only: $dir"
data="$dir/data"
log="$dir/server.log"

url() { echo "postgresql:///postgres?host=$dir&port=$port&user=$role"; }

find_bindir() {
  if [ -n "${JOBTRAIL_PG_BINDIR:-}" ]; then
    [ -x "$JOBTRAIL_PG_BINDIR/initdb" ] || die "JOBTRAIL_PG_BINDIR=$JOBTRAIL_PG_BINDIR holds no initdb"
    echo "$JOBTRAIL_PG_BINDIR"
    return
  fi
  local candidate
  if command -v pg_config >/dev/null; then
    candidate=$(pg_config --bindir 2>/dev/null || true)
    if [ -n "$candidate" ] && [ -x "$candidate/initdb" ]; then
      echo "$candidate"
      return
    fi
  fi
  candidate=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$candidate" ] && [ -x "$candidate/initdb" ]; then
    echo "$candidate"
    return
  fi
  die "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin: install them with scripts/install-deps.sh --test"
}

if [ "$(id -u)" -eq 0 ]; then
  if [ -n "${JOBTRAIL_PG_USER:-}" ]; then
    server_user=$JOBTRAIL_PG_USER
  elif id -u postgres >/dev/null 2>&1; then
    server_user=postgres
  else
    server_user=nobody
  fi
  [ "$(id -u "$server_user")" -ne 0 ] || die "the server cannot run as root ($server_user)"
  # cd /: the server user may not be allowed into the caller's working directory (/root).
  as_server() { (cd / && runuser -u "$server_user" -- "$@"); }
else
  server_user=$(id -un)
  as_server() { (cd / && "$@"); }
fi

# The server's socket path (DIR/.s.PGSQL.5432) must fit in sun_path, 107 bytes and a NUL.
check_socket_path() {
  local socket="$dir/.s.PGSQL.$port"
  [ ${#socket} -le 107 ] || die "socket path too long (${#socket} > 107 bytes): $socket; choose a shorter DIR"
}

# Every directory above DIR must let the server user through (e.g. /root is mode 700).
check_reachable() {
  as_server test -x "$dir" -a -w "$dir" -a -r "$dir" \
    || die "$server_user cannot use $dir (a parent directory is not searchable by it?); choose a DIR under /tmp"
}

print_log() {
  if [ -f "$log" ]; then
    echo "pg_cluster.sh: server log $log:" >&2
    tail -n 50 "$log" >&2
  fi
}

running() {
  [ -f "$data/PG_VERSION" ] && as_server "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1
}

shutdown_server() {
  local mode=$1
  [ -d "$data" ] || return 0
  running || return 0
  as_server "$bindir/pg_ctl" -D "$data" -m "$mode" -w -t 60 stop >/dev/null \
    || { print_log; die "could not stop the server in $dir"; }
}

start_server() {
  [ -f "$data/PG_VERSION" ] || die "no cluster in $dir: run '$0 start $dir' first"
  if ! as_server "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null; then
    print_log
    die "the server in $dir did not start"
  fi
  # pg_ctl -w waits for "ready"; make sure the socket really takes connections.
  local tries=0
  until "$bindir/pg_isready" -q -h "$dir" -p "$port" -U "$role" -d postgres; do
    tries=$((tries + 1))
    if [ $tries -ge 100 ]; then
      print_log
      die "the server in $dir does not accept connections"
    fi
    sleep 0.1
  done
  url
}

# Removes a cluster we made before; anything else in DIR is not ours to delete.
remove_stale() {
  [ -e "$dir" ] || return 0
  [ -d "$dir" ] || die "$dir exists and is not a directory"
  if [ -e "$dir/$marker" ]; then
    shutdown_server immediate
    find "$dir" -mindepth 1 -delete || die "cannot remove the old cluster in $dir (another user's?)"
  elif [ -n "$(ls -A "$dir")" ]; then
    die "$dir is not empty and holds no cluster made by this script; refusing to delete it"
  fi
}

create_cluster() {
  check_socket_path
  remove_stale
  mkdir -p "$dir"
  touch "$dir/$marker"
  if [ "$(id -u)" -eq 0 ]; then
    chown "$server_user:" "$dir" "$dir/$marker"
  fi
  check_reachable
  if ! as_server "$bindir/initdb" -D "$data" --auth=trust --username="$role" -E UTF8 --no-locale \
      --no-sync >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    die "initdb failed in $dir"
  fi
  # A throw-away cluster: surviving a power loss is not needed (fsync off), but a committed
  # transaction must survive the server being killed (synchronous_commit stays on): the tests
  # kill it mid-stream and count on every acknowledged commit being there after the restart.
  as_server tee -a "$data/postgresql.conf" >/dev/null <<EOF

# pg_cluster.sh: a throw-away cluster for the tests
listen_addresses = ''
unix_socket_directories = '$dir'
port = $port
fsync = off
full_page_writes = off
max_connections = 100
shared_buffers = 32MB
logging_collector = off
log_min_messages = warning
EOF
  start_server
}

case "$command" in
  url) url ;;
  start)
    bindir=$(find_bindir)
    create_cluster
    ;;
  restart)
    bindir=$(find_bindir)
    check_socket_path
    shutdown_server fast
    start_server
    ;;
  stop)
    bindir=$(find_bindir)
    shutdown_server fast
    ;;
  kill)
    bindir=$(find_bindir)
    shutdown_server immediate
    ;;
  *) usage ;;
esac
