#!/usr/bin/env bash
# The local single-node Kafka broker (KRaft, Apache Kafka 3.9.2 jars from
# deploy/kafka/libs) for development, tests and benchmarks.
#
#   deploy/bin/kafka.sh start     start it (no-op if running) and wait until it is ready
#   deploy/bin/kafka.sh stop      SIGTERM, wait up to KAFKA_STOP_TIMEOUT (30 s), then SIGKILL
#   deploy/bin/kafka.sh restart
#   deploy/bin/kafka.sh status    exit 0 when running, 3 when not
#
# State (gitignored): .state/kafka/{cluster.id,server.properties,data/,kafka.pid},
# log: .state/logs/kafka.log (+ kafka.out for the JVM's own output).
# With KAFKA_BOOTSTRAP_SERVERS pointing elsewhere (not 127.0.0.1:9092 or
# localhost:9092) start/stop do nothing: that broker is someone else's.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/kafka-lib.sh"

KDIR="$STATE/kafka"
DATA="$KDIR/data"
PROPS="$KDIR/server.properties"
PIDFILE="$KDIR/kafka.pid"
CLUSTER_ID_FILE="$KDIR/cluster.id"
LIBS="$KAFKA_LIBS"
HOST=127.0.0.1
PORT=9092
CONTROLLER_PORT=9093
READY_TIMEOUT="${KAFKA_READY_TIMEOUT:-120}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

external() {
  case "${KAFKA_BOOTSTRAP_SERVERS:-$DEFAULT_KAFKA}" in
    127.0.0.1:9092 | localhost:9092) return 1 ;;
    *) return 0 ;;
  esac
}

# Prints the pid of this checkout's broker, or nothing. Trusts the pid file only
# when that process really is our broker (pids get reused); otherwise looks for
# a kafka.Kafka process started with this checkout's properties file (a lost pid file).
running_pid() {
  local pid p
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  if pid_alive "$pid" && pid_cmdline_has "$pid" "kafka.Kafka"; then
    echo "$pid"
    return 0
  fi
  rm -f "$PIDFILE"
  for p in /proc/[0-9]*; do
    p="${p#/proc/}"
    if pid_cmdline_has "$p" "kafka.Kafka $PROPS" && pid_alive "$p"; then
      echo "$p" >"$PIDFILE"
      echo "$p"
      return 0
    fi
  done
  return 1
}

tail_log() {
  local f
  for f in "$LOGS/kafka.out" "$LOGS/kafka.log"; do
    [[ -s "$f" ]] || continue
    log "---- last lines of $f ----"
    tail -n "${1:-30}" "$f" >&2
  done
}

# The broker's heap: KAFKA_HEAP_OPTS overrides it, as in Kafka's own scripts.
HEAP="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"

write_props() {
  mkdir -p "$DATA"
  sed -e "s|^log.dirs=.*|log.dirs=$DATA|" "$ROOT/deploy/kafka/server.properties" >"$PROPS.tmp"
  mv "$PROPS.tmp" "$PROPS"
}

# Formats the storage directory once. The cluster id is kept in .state so that
# a re-format (after data/ was deleted) keeps it; an existing meta.properties wins.
format_storage() {
  local java="$1" cid
  if [[ -f "$DATA/meta.properties" ]]; then
    cid="$(sed -n 's/^cluster.id=//p' "$DATA/meta.properties")"
    [[ -n "$cid" ]] && echo "$cid" >"$CLUSTER_ID_FILE"
    return 0
  fi
  if [[ ! -s "$CLUSTER_ID_FILE" ]]; then
    kafka_random_uuid "$java" "$LOGS" >"$CLUSTER_ID_FILE.tmp"
    [[ -s "$CLUSTER_ID_FILE.tmp" ]] || die "kafka StorageTool random-uuid printed nothing (see $LOGS/kafka.out)"
    mv "$CLUSTER_ID_FILE.tmp" "$CLUSTER_ID_FILE"
  fi
  cid="$(cat "$CLUSTER_ID_FILE")"
  log "kafka: formatting $DATA (cluster id $cid)"
  kafka_format "$java" "$LOGS" "$cid" "$PROPS" ||
    { tail_log; die "kafka storage format failed"; }
}

wait_ready() {
  local pid="$1" t0 deadline
  t0="$(now)"
  deadline=$((SECONDS + READY_TIMEOUT))
  # Stage 1: the port opens (and fail fast if the JVM dies meanwhile).
  until port_open "$HOST" "$PORT"; do
    if ! pid_alive "$pid"; then
      tail_log 40
      rm -f "$PIDFILE"
      die "kafka exited during startup (logs: $LOGS/kafka.log, $LOGS/kafka.out)"
    fi
    ((SECONDS < deadline)) || { tail_log 40; die "kafka did not open $HOST:$PORT within ${READY_TIMEOUT}s"; }
    sleep 0.2
  done
  # Stage 2: a real metadata + acks=all produce + consumer-group round trip.
  [[ -x "$PY" ]] || die "$PY missing (run deploy/bin/setup.sh)"
  local left=$((deadline - SECONDS))
  ((left >= 10)) || left=10
  if ! (cd "$ROOT" && KAFKA_BOOTSTRAP_SERVERS="$HOST:$PORT" \
    "$PY" -m shared.admin wait-kafka --timeout "$left" >"$LOGS/wait-kafka.log" 2>&1); then
    tail_log 40
    log "---- python -m shared.admin wait-kafka ----"
    tail -n 20 "$LOGS/wait-kafka.log" >&2
    die "kafka is not ready (python -m shared.admin wait-kafka failed)"
  fi
  log "kafka: ready at $HOST:$PORT (pid $pid, $(elapsed "$t0")s)"
}

start() {
  if external; then
    log "kafka: external broker ($KAFKA_BOOTSTRAP_SERVERS); not starting one"
    return 0
  fi
  local pid
  if pid="$(running_pid)"; then
    if port_open "$HOST" "$PORT"; then
      log "kafka: already running (pid $pid) at $HOST:$PORT"
      return 0
    fi
    wait_ready "$pid" # still starting (e.g. a concurrent start)
    return 0
  fi
  local owner
  for p in "$PORT" "$CONTROLLER_PORT"; do
    if port_open "$HOST" "$p"; then
      owner="$(port_owner "$p")"
      die "port $HOST:$p is already in use${owner:+ by $owner}; stop it or set KAFKA_BOOTSTRAP_SERVERS to use that broker"
    fi
  done
  ensure_setup
  compgen -G "$LIBS/kafka_2.13-*.jar" >/dev/null || die "no Kafka jars in $LIBS (run deploy/bin/setup.sh)"
  mkdir -p "$KDIR" "$LOGS"
  local java
  java="$(java_bin)"
  write_props
  format_storage "$java"
  local t0
  t0="$(now)"
  printf '\n==== %s starting kafka\n' "$(date -Is)" >>"$LOGS/kafka.out"
  # (make up stops the services first, then the broker)
  pid="$(kafka_launch "$PIDFILE" "$LOGS/kafka.out" "$java" "$LOGS" "$HEAP" "$PROPS")"
  log "kafka: started (pid $pid), waiting until ready..."
  wait_ready "$pid"
}

stop() {
  if external; then
    log "kafka: external broker ($KAFKA_BOOTSTRAP_SERVERS); nothing to stop"
    return 0
  fi
  local pid
  if ! pid="$(running_pid)"; then
    log "kafka: not running"
    return 0
  fi
  local t0
  t0="$(now)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while pid_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      log "kafka: still running after ${STOP_TIMEOUT}s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      # gone (its ports free) before a restart binds them again
      for _ in $(seq 100); do
        pid_alive "$pid" || break
        sleep 0.1
      done
      pid_alive "$pid" && die "kafka: pid $pid survived SIGKILL for 10 s"
      break
    fi
    sleep 0.1
  done
  rm -f "$PIDFILE"
  log "kafka: stopped (pid $pid, $(elapsed "$t0")s)"
}

status() {
  if external; then
    echo "kafka: external broker ($KAFKA_BOOTSTRAP_SERVERS)"
    port_open "${KAFKA_BOOTSTRAP_SERVERS%%,*}" 2>/dev/null || true
    return 0
  fi
  local pid
  if pid="$(running_pid)"; then
    if port_open "$HOST" "$PORT"; then
      echo "kafka: running (pid $pid) at $HOST:$PORT"
    else
      echo "kafka: starting (pid $pid), $HOST:$PORT not open yet"
    fi
    return 0
  fi
  echo "kafka: stopped"
  return 3
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop && start ;;
  status) status ;;
  *) echo "usage: $0 {start|stop|restart|status}" >&2; exit 2 ;;
esac
