#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for tests and benchmarks, on 127.0.0.1 only, in a folder
# of its own (default: target/pg-test), and prints its URL on the last line of stdout.
#
#   eval "$(bash scripts/pg-test-server.sh --env)"   # exports LOYALTY_TEST_PG_URL and PG_TEST_DIR
#   bash scripts/pg-test-server.sh --stop
#
# Debian's PostgreSQL (scripts/deps.sh installs it). As root, the server runs as the `postgres`
# user. Durable settings (fsync, synchronous_commit) stay at PostgreSQL's defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${PG_TEST_DIR:-$PWD/target/pg-test}"
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bindir" ]; then
  echo "PostgreSQL is not installed: bash scripts/deps.sh" >&2
  exit 1
fi

as_pg=()
owner=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
  as_pg=(runuser -u postgres --)
  owner=postgres
fi

if [ "${1:-}" = "--stop" ]; then
  if [ -f "$dir/data/postmaster.pid" ]; then
    "${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null
  fi
  exit 0
fi

mkdir -p "$dir"
chown "$owner" "$dir" 2>/dev/null || true
chmod 700 "$dir" 2>/dev/null || true

if [ ! -f "$dir/data/PG_VERSION" ]; then
  "${as_pg[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
fi

port_file="$dir/port"
running=0
if [ -f "$dir/data/postmaster.pid" ] && [ -f "$port_file" ] \
  && "$bindir/pg_isready" -q -h 127.0.0.1 -p "$(cat "$port_file")"; then
  running=1
fi
if [ "$running" -eq 0 ]; then
  # A free port chosen by the kernel.
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  echo "$port" >"$port_file"
  "${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c shared_buffers=128MB" start >/dev/null \
    || { tail -n 30 "$dir/server.log" >&2; exit 1; }
fi
port=$(cat "$port_file")
psql=("$bindir/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres)
if [ "$("${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = 'loyalty_test'")" != "1" ]; then
  "${psql[@]}" -c "CREATE DATABASE loyalty_test" >/dev/null
fi
url="postgres://postgres@127.0.0.1:$port/loyalty_test"
if [ "${1:-}" = "--env" ]; then
  echo "export LOYALTY_TEST_PG_URL='$url' PG_TEST_DIR='$dir' PG_TEST_PORT='$port' PG_BIN='$bindir'"
else
  echo "$url"
fi
