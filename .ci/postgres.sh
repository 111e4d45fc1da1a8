#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the test suite's PostgreSQL lane.
# Installs Debian's `postgresql` package when its server binaries are missing (a fresh
# machine), runs initdb in a temporary directory as the `postgres` user, listens on
# 127.0.0.1 only, and prints `export` lines for the tests: source its output.
# Stop it with `.ci/postgres.sh stop DIR`.
set -euo pipefail

if [[ "${1:-}" == "stop" ]]; then
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  su postgres -s /bin/sh -c "$pgbin/pg_ctl -D '$2' -m fast -w stop" >/dev/null 2>&1 || true
  rm -rf "$2"
  exit 0
fi

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  echo "installing postgresql (Debian package) ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends postgresql >&2
fi
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
port=${ALVH_CI_POSTGRES_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
dir=$(mktemp -d /tmp/alvh-ci-pg.XXXXXX)
chown postgres "$dir"
su postgres -s /bin/sh -c "$pgbin/initdb -D '$dir' -A trust -U postgres" >/dev/null
su postgres -s /bin/sh -c "$pgbin/pg_ctl -D '$dir' -l '$dir/server.log' -w start \
  -o '-k $dir -p $port -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200'" >/dev/null
echo "export ALVH_CI_POSTGRES_DIR=$dir"
echo "export ALVH_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
echo "export ALVH_REQUIRE_POSTGRES=1"
