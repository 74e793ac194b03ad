#!/usr/bin/env bash
# Make sure the PostgreSQL server the tests use answers on 127.0.0.1:5432: installed (Debian's
# `postgresql` package), its cluster started, database `test` present, and trust
# authentication on 127.0.0.1 for user `postgres`.  Idempotent; quick when all is in place.
# Runs as root (CI) or as a user with passwordless sudo; never reads stdin.
set -euo pipefail

HOST=127.0.0.1
PORT=5432
USER_NAME=postgres
DB=test
export DEBIAN_FRONTEND=noninteractive
unset PGPASSWORD PGUSER PGDATABASE PGHOST PGPORT

say() { echo "ensure-postgres: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -n -u postgres "$@"; fi; }
# Over the local socket as the postgres superuser (peer or trust auth): works before the
# TCP trust rule exists.
admin_sql() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -d postgres -tAc "$1"; }
tcp_ok() { psql -X -w -h "$HOST" -p "$PORT" -U "$USER_NAME" -d "$DB" -tAc 'SELECT 1' >/dev/null 2>&1; }

if command -v psql >/dev/null && tcp_ok; then
    exit 0  # all in place
fi

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    say "installing PostgreSQL (apt-get)"
    as_root apt-get update -q
    as_root apt-get install -y -q postgresql
fi

version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if [ ! -d "/etc/postgresql/$version/main" ]; then
    say "creating cluster $version/main"
    as_root pg_createcluster "$version" main
fi

if ! pg_isready -q -h "$HOST" -p "$PORT"; then
    say "starting cluster $version/main"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
fi
for _ in $(seq 1 60); do
    pg_isready -q -h "$HOST" -p "$PORT" && break
    sleep 0.5
done
if ! pg_isready -h "$HOST" -p "$PORT"; then
    say "PostgreSQL does not accept connections on $HOST:$PORT"
    exit 1
fi

if [ -z "$(admin_sql "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
    say "creating database $DB"
    as_postgres createdb "$DB"
fi

if ! tcp_ok; then
    hba=$(admin_sql "SHOW hba_file")
    rule="host all $USER_NAME $HOST/32 trust"
    if ! grep -qxF "$rule" "$hba"; then
        say "adding '$rule' to $hba"
        # First match wins in pg_hba.conf: the rule goes on top.
        as_root sed -i "1i $rule" "$hba"
    fi
    admin_sql "SELECT pg_reload_conf()" >/dev/null
    sleep 0.5
fi

if ! tcp_ok; then
    say "cannot connect as $USER_NAME to $DB on $HOST:$PORT without a password"
    exit 1
fi
say "PostgreSQL $version ready on $HOST:$PORT (database $DB, user $USER_NAME)"
