#!/bin/bash
# First start: a cluster in $PGDATA with the role POSTGRES_USER (password
# POSTGRES_PASSWORD, LOGIN CREATEDB, like deploy/bin/postgres.sh's `care`, not a
# superuser) owning the database POSTGRES_DB. Then `postgres -c ...` runs in the
# foreground, password-checked on TCP.
set -euo pipefail
if [[ "${1:-}" != postgres ]]; then exec "$@"; fi
shift
user="${POSTGRES_USER:-care}"
password="${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
dbname="${POSTGRES_DB:-$user}"
if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
  initdb -D "$PGDATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
  # a server on the socket only while the role and database are made
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p $PGPORT" -w start >/dev/null
  psql -X -q -v ON_ERROR_STOP=1 -p "$PGPORT" -U postgres -d postgres \
    -v user="$user" -v password="$password" -v dbname="$dbname" <<'SQL'
CREATE ROLE :"user" LOGIN CREATEDB PASSWORD :'password';
CREATE DATABASE :"dbname" OWNER :"user";
SQL
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec postgres -D "$PGDATA" -p "$PGPORT" "$@"
