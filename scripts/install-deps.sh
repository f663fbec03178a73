#!/usr/bin/env bash
# Installs what building and testing jobtrail needs on Debian 12, from Debian's packages.
# Run as root (or through sudo). Idempotent.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libsqlite3-dev sqlite3
  prometheus-cpp-dev libcli11-dev libfmt-dev nlohmann-json3-dev
  catch2
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (e.g. sudo $0)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "install-deps.sh: installed ${packages[*]}"
