#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on loopback for the test suite; prints its SQLAlchemy URL.
# Usage: eval "$(bash .ci/start-postgres.sh)"   (needs Debian's postgresql package; run as root)
set -euo pipefail
port="${PGPORT_TEST:-54329}"
data="${PGDATA_TEST:-/tmp/diamond-pg-$port}"
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "echo 'postgresql is not installed (apt-get install postgresql)' >&2; exit 1"; exit 1; }
if ! "$bin/pg_isready" -h 127.0.0.1 -p "$port" >/dev/null 2>&1; then
  rm -rf "$data" && mkdir -p "$data" && chown postgres:postgres "$data"
  su postgres -s /bin/sh -c "'$bin/initdb' -D '$data' -A trust -U postgres --no-sync" >/dev/null
  su postgres -s /bin/sh -c "'$bin/pg_ctl' -D '$data' -l '$data/server.log' -w -o \"-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=/tmp -c fsync=off -c max_connections=200\" start" >/dev/null
fi
echo "export DIAMOND_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
