#!/usr/bin/env bash
# Installs what jobtrail needs on Debian 12, from Debian's packages. Run as root. Idempotent.
#   scripts/install-deps.sh          what building and the demo need
#   scripts/install-deps.sh --test   that, plus the real services the tests start
set -euo pipefail

build_packages=(
  cmake g++ make pkg-config
  libsqlite3-dev sqlite3
  libpq-dev
  prometheus-cpp-dev libcli11-dev libfmt-dev nlohmann-json3-dev
  libyaml-cpp-dev
  catch2
  libcpp-httplib-dev  # the HTTP client (exec --server) and the tests' client
  libboost-dev  # Boost.Beast/Asio, header-only: serve's HTTP layer
  libkainjow-mustache-dev  # the web console's HTML templates (header-only, escapes by default)
)
# Services and tools the test suite starts for real (never mocked).
test_packages=(
  procps python3
  curl  # tests/pg/check_cli.sh talks to jobtrail serve
  redis-server python3-rq python3-redis python3-celery ruby-sidekiq  # the RQ, Celery and Sidekiq end-to-end tests
  prometheus  # promtool and the server, for the alert rules
  prometheus-pushgateway
  postgresql  # initdb and the server for tests/pg/pg_cluster.sh's throw-away clusters
  clang-14 libfuzzer-14-dev libclang-rt-14-dev  # scripts/ci-extra-builds.sh (ASan+UBSan, TSan) and tests/fuzz/smoke.sh (libFuzzer)
  chromium chromium-driver python3-selenium  # tests/console: the web console in a real, headless browser
  groff-base man-db bsdextrautils mandoc zsh  # tests/cli/check_docs.sh: the man page linted and rendered (col), the completions run
)

packages=("${build_packages[@]}")
case "${1:-}" in
  "") ;;
  --test) packages+=("${test_packages[@]}") ;;
  *) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (e.g. sudo $0 $*)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "install-deps.sh: installed ${packages[*]}"
