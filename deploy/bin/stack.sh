#!/usr/bin/env bash
# The whole local stack: PostgreSQL, the Kafka broker, the topics, and the
# services under supervisord. Behind `make up|start|stop|status|infra`.
#
#   stack.sh infra    setup + postgres + kafka + topics (what tests and benches need)
#   stack.sh start    infra + services; returns once every service is ready
#   stack.sh up       start, then stays in the foreground (showing the services' logs)
#                     until Ctrl-C / SIGTERM, then stops what it started
#   stack.sh stop     services, broker, and PostgreSQL if this checkout started it
#   stack.sh status
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONF="$ROOT/deploy/supervisord.conf"
SOCK="$STATE/supervisor.sock"
SUP_PIDFILE="$STATE/supervisord.pid"
READY_TIMEOUT="${READY_TIMEOUT:-120}"

supervisord_pid() {
  local pid
  pid="$(cat "$SUP_PIDFILE" 2>/dev/null || true)"
  if pid_alive "$pid" && pid_cmdline_has "$pid" supervisord; then
    echo "$pid"
    return 0
  fi
  return 1
}

ctl() { "$VENV/bin/supervisorctl" -c "$CONF" "$@"; }

infra() {
  ensure_setup
  "$ROOT/deploy/bin/postgres.sh" start
  "$ROOT/deploy/bin/kafka.sh" start
  (cd "$ROOT" && "$PY" -m shared.admin ensure-topics) >"$LOGS/ensure-topics.log" 2>&1 ||
    { cat "$LOGS/ensure-topics.log" >&2; die "python -m shared.admin ensure-topics failed"; }
  log "$(tail -n 1 "$LOGS/ensure-topics.log")"
}

services_start() {
  mkdir -p "$LOGS"
  # The dev clock (POST /v1/dev/clock moves the stack's time; docs/architecture.md) is on by
  # default for this loopback dev stack; DEV_CLOCK=0 make up turns it off. The services
  # refuse it on any other address, so a non-loopback HTTP_HOST leaves it off.
  if [[ -z "${DEV_CLOCK:-}" ]]; then
    case "${HTTP_HOST:-127.0.0.1}" in
      127.* | localhost | ::1) DEV_CLOCK=1 ;;
      *) DEV_CLOCK=0 ;;
    esac
  fi
  export DEV_CLOCK
  if supervisord_pid >/dev/null; then
    # Already supervising: apply config changes, start whatever is stopped.
    ctl update >/dev/null
    ctl start all >/dev/null || true
  else
    rm -f "$SUP_PIDFILE"
    (cd "$ROOT" && "$VENV/bin/supervisord" -c "$CONF") ||
      { tail -n 20 "$LOGS/supervisord.log" >&2 || true; die "supervisord did not start"; }
  fi
  local specs=() name url
  while IFS='|' read -r name url; do
    [[ -n "$name" ]] && specs+=("$name=$url")
  done < <(http_services)
  (cd "$ROOT" && "$PY" deploy/bin/wait-ready.py --timeout "$READY_TIMEOUT" \
    --supervisor "$SOCK" --logs "$LOGS" "${specs[@]}") >&2
}

services_stop() {
  local pid
  if ! pid="$(supervisord_pid)"; then
    log "services: not running"
    return 0
  fi
  ctl shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 60))
  while pid_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      log "services: supervisord still running after 60s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  rm -f "$SUP_PIDFILE"
  log "services: stopped"
}

# A DATABASE_URL other than ours may carry a real password: do not print it.
redact() { sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#' <<<"$1"; }

print_urls() {
  local db="${DATABASE_URL:-$DEFAULT_DATABASE_URL}"
  [[ "$db" == "$DEFAULT_DATABASE_URL" ]] || db="$(redact "$db")"
  cat <<MSG

Interval is ready:
  dashboard    http://127.0.0.1:${DASHBOARD_PORT:-8000}
  intake       http://127.0.0.1:${INTAKE_PORT:-8001}
  scheduling   http://127.0.0.1:${SCHEDULING_PORT:-8002}
  alerts       http://127.0.0.1:${ALERTS_PORT:-8003}
  consumer lag http://127.0.0.1:9140/metrics   (as the broker sees it; /healthz)
  Kafka        ${KAFKA_BOOTSTRAP_SERVERS:-$DEFAULT_KAFKA}
  PostgreSQL   $db
  logs         .state/logs/   (supervisorctl: .venv/bin/supervisorctl -c deploy/supervisord.conf status)
  dev clock    $([[ "${DEV_CLOCK:-0}" == 1 ]] && echo "on: POST {\"advance_s\": N} to /v1/dev/clock on any service moves time (DEV_CLOCK=0 to turn off)" || echo "off")

MSG
}

start() {
  infra
  services_start
  print_urls
}

stop() {
  services_stop
  "$ROOT/deploy/bin/kafka.sh" stop
  "$ROOT/deploy/bin/postgres.sh" stop
}

status() {
  local rc=0
  "$ROOT/deploy/bin/postgres.sh" status || rc=3
  "$ROOT/deploy/bin/kafka.sh" status || rc=3
  if supervisord_pid >/dev/null; then
    ctl status || rc=3
  else
    echo "services: not running"
    rc=3
  fi
  return "$rc"
}

up() {
  # Remember what was already running: Ctrl-C stops only what this run started.
  # (Globals, not locals: the EXIT trap may run after this function's frame is gone.)
  had_pg=0 had_kafka=0 had_sup=0 tail_pid=""
  "$ROOT/deploy/bin/postgres.sh" status >/dev/null 2>&1 && had_pg=1
  "$ROOT/deploy/bin/kafka.sh" status >/dev/null 2>&1 && had_kafka=1
  supervisord_pid >/dev/null && had_sup=1

  cleanup() {
    local code="${1:-0}"
    trap '' INT TERM
    echo >&2
    log "stopping what 'make up' started..."
    [[ -n "$tail_pid" ]] && kill "$tail_pid" 2>/dev/null
    ((had_sup)) || services_stop
    ((had_kafka)) || "$ROOT/deploy/bin/kafka.sh" stop
    ((had_pg)) || "$ROOT/deploy/bin/postgres.sh" stop --force
    exit "$code"
  }
  trap cleanup INT TERM
  # A failed start stops whatever it had started too.
  trap 'rc=$?; ((rc == 0)) || { trap - EXIT; cleanup "$rc"; }' EXIT

  start
  trap - EXIT
  log "Ctrl-C to stop. Services' logs follow:"
  local logs=() prog
  for prog in $(sed -n 's/^\[program:\([^]]*\)\].*/\1/p' "$CONF"); do
    logs+=("$LOGS/$prog.log")
  done
  if ((${#logs[@]})); then
    tail -n 0 -F "${logs[@]}" 2>/dev/null &
  else
    sleep infinity &
  fi
  tail_pid=$!
  # `wait` returns when a trapped signal arrives; the loop also notices a dead tail.
  while kill -0 "$tail_pid" 2>/dev/null; do wait "$tail_pid" || true; done
  sleep infinity & tail_pid=$!
  wait "$tail_pid" || true
}

case "${1:-}" in
  infra) infra ;;
  start) start ;;
  up) up ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 {infra|start|up|stop|status}" >&2; exit 2 ;;
esac
