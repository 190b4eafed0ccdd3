#!/usr/bin/env bash
# The local PostgreSQL server, from Debian's packages (postgresql-common clusters).
#
#   deploy/bin/postgres.sh start   ensure a cluster on port 5432 is up, with role `care`
#                                  (password `care`, LOGIN CREATEDB) and database `care`
#                                  owned by it, reached by password over its Unix socket
#                                  in /var/run/postgresql (DATABASE_URL's default,
#                                  postgresql://care:care@/care?host=/var/run/postgresql&port=5432)
#                                  and on 127.0.0.1:5432
#   deploy/bin/postgres.sh stop    stop the cluster, only if `start` started it
#                                  (`stop --force`: in any case)
#   deploy/bin/postgres.sh status  exit 0 when it accepts connections, 3 when not
#
# With DATABASE_URL set to anything else, start/stop do nothing (someone else's server).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=5432
# The test suite holds its session stacks while the three-broker fault test
# (tests/faults/test_cluster.py) runs two of every process under load: ~200 connections
# at once, past the 200 this was before.
MAX_CONNECTIONS="${PG_MAX_CONNECTIONS:-400}"
MARKER_DIR="$STATE/postgres"
MARKER="$MARKER_DIR/started-by-us"

external() { [[ -n "${DATABASE_URL:-}" && "$DATABASE_URL" != "$DEFAULT_DATABASE_URL" ]]; }

# "VERSION NAME STATUS" of the cluster on port 5432, else of the first cluster; empty if none.
find_cluster() {
  command -v pg_lsclusters >/dev/null || return 0
  pg_lsclusters -h 2>/dev/null | awk -v p="$PORT" '
    $3 == p { print $1, $2, $4; found = 1; exit }
    NR == 1 { first = $1 " " $2 " " $4 }
    END { if (!found && first != "") print first }'
}

as_postgres() { (cd / && as_root runuser -u postgres -- "$@"); }
psql_admin() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres; }

# The services' default is the server's Unix socket: on this 2-core VM a round trip
# over it costs client and server 15-35% less CPU than over loopback TCP, and the stack
# makes thousands a second (docs/performance.md, "A Unix socket to PostgreSQL").
SOCKET_DIR=/var/run/postgresql

# True when DATABASE_URL's default works (by password over the socket, and over TCP)
# and the server has max_connections >= ours.
care_ok() {
  local n
  n="$(PGPASSWORD=care PGCONNECT_TIMEOUT=3 psql -X -q -h "$SOCKET_DIR" -p "$PORT" -U care -d care \
    -tAc 'show max_connections' 2>/dev/null)" || return 1
  [[ "$n" =~ ^[0-9]+$ ]] && ((n >= MAX_CONNECTIONS)) && care_connects_by 127.0.0.1
}
care_connects_by() {
  PGPASSWORD=care PGCONNECT_TIMEOUT=3 psql -X -q -h "$1" -p "$PORT" -U care -d care \
    -tAc 'select 1' >/dev/null 2>&1
}
care_connects() { care_connects_by "$SOCKET_DIR" && care_connects_by 127.0.0.1; }

# allow_care_by_socket VER NAME: Debian's pg_hba.conf lets local (socket) connections in
# by peer authentication only, i.e. as the operating system user of the same name; the
# role `care` logs in by its password there too, by a rule ahead of the others. True if
# the file was changed (the server then reloads it).
allow_care_by_socket() {
  local hba tmp rule="local   all             care                                    scram-sha-256"
  hba="$(pg_conftool -s "$1" "$2" postgresql.conf show hba_file 2>/dev/null || true)"
  hba="${hba#\'}"
  hba="${hba%\'}"
  [[ -n "$hba" ]] || hba="/etc/postgresql/$1/$2/pg_hba.conf"
  as_root grep -qE '^local[[:space:]]+all[[:space:]]+care[[:space:]]+scram-sha-256' "$hba" && return 1
  # ahead of the first rule, wherever the comments end
  tmp="$(mktemp)"
  as_root awk -v rule="$rule" '
    !done && /^[[:space:]]*(local|host)/ { print "# Interval (deploy/bin/postgres.sh): role care by password over the socket"; print rule; done = 1 }
    { print }
    END { if (!done) print rule }' "$hba" >"$tmp"
  as_root cp "$tmp" "$hba" # cp into the file keeps its owner and mode
  rm -f "$tmp"
  return 0
}

ready() { pg_isready -q -h 127.0.0.1 -p "$PORT" -t 1 >/dev/null 2>&1; }

# conf_set VER NAME KEY VALUE: set a postgresql.conf parameter if it differs; true if changed.
conf_set() {
  local cur
  cur="$(pg_conftool -s "$1" "$2" postgresql.conf show "$3" 2>/dev/null || true)"
  cur="${cur#\'}"
  cur="${cur%\'}"
  [[ "$cur" == "$4" ]] && return 1
  as_root pg_conftool "$1" "$2" postgresql.conf set "$3" "$4"
  return 0
}

start() {
  if external; then
    log "postgres: external server (DATABASE_URL is set); not starting one"
    return 0
  fi
  # Fast path: already up with our role and database.
  if care_ok; then
    return 0
  fi
  ensure_setup
  local cl ver name st
  cl="$(find_cluster)"
  if [[ -z "$cl" ]]; then
    ver="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -n | tail -n 1)"
    [[ -n "$ver" ]] || die "no PostgreSQL server installed (run deploy/bin/setup.sh)"
    log "postgres: creating cluster $ver/main on port $PORT"
    as_root pg_createcluster --port "$PORT" "$ver" main >/dev/null
    cl="$(find_cluster)"
  fi
  read -r ver name st <<<"$cl"

  local changed=0
  # Port, loopback, and room for the several pools the tests open.
  conf_set "$ver" "$name" port "$PORT" && changed=1
  local listen
  listen="$(pg_conftool -s "$ver" "$name" postgresql.conf show listen_addresses 2>/dev/null || true)"
  case "$listen" in
    *localhost* | *127.0.0.1* | *'*'*) ;;
    *) conf_set "$ver" "$name" listen_addresses "localhost" && changed=1 ;;
  esac
  # Takes a restart: done once per machine, the setting stays in postgresql.conf.
  conf_set "$ver" "$name" max_connections "$MAX_CONNECTIONS" && changed=1
  local sockets
  sockets="$(pg_conftool -s "$ver" "$name" postgresql.conf show unix_socket_directories 2>/dev/null || true)"
  case "$sockets" in
    *"$SOCKET_DIR"*) ;;
    *) conf_set "$ver" "$name" unix_socket_directories "$SOCKET_DIR" && changed=1 ;;
  esac
  local reload=0
  allow_care_by_socket "$ver" "$name" && reload=1

  if [[ "$st" == online* ]]; then
    if ((changed)); then
      log "postgres: restarting $ver/$name to apply its configuration"
      as_root pg_ctlcluster "$ver" "$name" restart
    elif ((reload)); then
      log "postgres: reloading $ver/$name (pg_hba.conf: role care by password over the socket)"
      as_root pg_ctlcluster "$ver" "$name" reload
    fi
  else
    log "postgres: starting cluster $ver/$name"
    mkdir -p "$MARKER_DIR"
    as_root pg_ctlcluster "$ver" "$name" start ||
      { tail -n 30 "/var/log/postgresql/postgresql-$ver-$name.log" >&2 || true; die "pg_ctlcluster $ver $name start failed"; }
    echo "$ver $name" >"$MARKER"
  fi
  local i
  for i in $(seq 150); do
    ready && break
    ((i < 150)) || die "postgres $ver/$name does not accept connections on 127.0.0.1:$PORT"
    sleep 0.2
  done

  # Role and database, idempotently.
  psql_admin <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'care') THEN
    CREATE ROLE care LOGIN CREATEDB PASSWORD 'care';
  ELSE
    ALTER ROLE care LOGIN CREATEDB PASSWORD 'care';
  END IF;
END
$$;
SELECT 'CREATE DATABASE care OWNER care'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'care') \gexec
ALTER DATABASE care OWNER TO care;
SQL
  care_connects || die "cannot connect as $DEFAULT_DATABASE_URL (check pg_hba.conf of $ver/$name)"
  log "postgres: ready at $DEFAULT_DATABASE_URL (cluster $ver/$name)"
}

stop() {
  if external; then
    log "postgres: external server (DATABASE_URL is set); nothing to stop"
    return 0
  fi
  local force=0
  [[ "${1:-}" == --force ]] && force=1
  local ver name st
  read -r ver name st <<<"$(find_cluster)"
  if [[ -z "${ver:-}" || "$st" != online* ]]; then
    rm -f "$MARKER"
    log "postgres: not running"
    return 0
  fi
  if ((force == 0)) && [[ ! -f "$MARKER" ]]; then
    log "postgres: $ver/$name was not started by this checkout; leaving it running"
    return 0
  fi
  as_root pg_ctlcluster "$ver" "$name" stop -m fast
  rm -f "$MARKER"
  log "postgres: stopped cluster $ver/$name"
}

status() {
  if external; then
    echo "postgres: external server (DATABASE_URL)"
    return 0
  fi
  if ready; then
    echo "postgres: running at 127.0.0.1:$PORT$([[ -f "$MARKER" ]] && echo ' (started by this checkout)')"
    return 0
  fi
  echo "postgres: stopped"
  return 3
}

case "${1:-}" in
  start) start ;;
  stop) shift; stop "$@" ;;
  status) status ;;
  *) echo "usage: $0 {start|stop [--force]|status}" >&2; exit 2 ;;
esac
