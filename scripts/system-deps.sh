#!/usr/bin/env bash
# Installs the PostgreSQL server, Redis server and haproxy from Debian's packages when they are missing
# (with `bench`: wrk, valgrind and perf too).
# As root it runs apt-get; as anyone else it prints exactly what to install and stops.
set -euo pipefail

missing=()
pg_bin=""
if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
  pg_bin=$(pg_config --bindir)
else
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ] || [ ! -x "$pg_bin/pg_basebackup" ]; then
  missing+=(postgresql postgresql-contrib)
fi
command -v redis-server >/dev/null || missing+=(redis-server)
# The balancer of the local multi-pod topology (`hmb up --pods N`, tests/faults).
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null || missing+=(haproxy)
command -v python3 >/dev/null || missing+=(python3 python3-venv)
# `make bench`: the load generator, valgrind for `python -m bench.callgrind` and perf for `python -m bench.perf`.
if [ "${1:-}" = bench ]; then
  command -v wrk >/dev/null || missing+=(wrk)
  command -v valgrind >/dev/null || missing+=(valgrind)
  command -v perf >/dev/null || missing+=(linux-perf)
fi

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "hmb needs these system packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
