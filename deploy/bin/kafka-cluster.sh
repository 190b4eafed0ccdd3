#!/usr/bin/env bash
# A local three-node Kafka cluster (KRaft; every node both broker and controller)
# from the same jars as deploy/bin/kafka.sh, for trying the stack against a real
# cluster: replication factor 3, min.insync.replicas=2 (docs/scale-out.md).
#
#   deploy/bin/kafka-cluster.sh start        start the three nodes, wait until all serve
#   deploy/bin/kafka-cluster.sh stop [N]     SIGTERM every node, or node N (SIGKILL after 15 s)
#   deploy/bin/kafka-cluster.sh status       exit 0 when all three run, 3 otherwise
#   deploy/bin/kafka-cluster.sh kill N       SIGKILL node N (1-3): a lost broker
#   deploy/bin/kafka-cluster.sh start N      start node N again, wait until it serves
#   deploy/bin/kafka-cluster.sh restart N    stop (SIGTERM) and start node N
#   deploy/bin/kafka-cluster.sh servers      print the bootstrap servers
#
# Ports: node N's client listener on KAFKA_CLUSTER_PORT_BASE + N - 1 (default
# 9092-9094, so the single broker of kafka.sh, whose controller is on 9093, must be
# stopped first), its controller on KAFKA_CLUSTER_CONTROLLER_BASE + N - 1 (default
# port base + 100). State: KAFKA_CLUSTER_DIR (default .state/kafka-cluster):
# cluster.id, node-N/{server.properties,data/,kafka.pid}, logs/node-N/kafka.log
# (+ kafka.out). KAFKA_CLUSTER_HEAP_OPTS: each node's heap (-Xms128m -Xmx384m).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/kafka-lib.sh"

NODES=(1 2 3)
HOST=127.0.0.1
BASE="${KAFKA_CLUSTER_PORT_BASE:-9092}"
CBASE="${KAFKA_CLUSTER_CONTROLLER_BASE:-$((BASE + 100))}"
CDIR="${KAFKA_CLUSTER_DIR:-$STATE/kafka-cluster}"
HEAP="${KAFKA_CLUSTER_HEAP_OPTS:--Xms128m -Xmx384m}"
READY_TIMEOUT="${KAFKA_READY_TIMEOUT:-120}"
# A node's SIGTERM (controlled shutdown) waits for the controller quorum: the last
# nodes of a cluster stopping all at once may wait for good, so SIGKILL after this.
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-15}"

port() { echo $((BASE + $1 - 1)); }
cport() { echo $((CBASE + $1 - 1)); }
ndir() { echo "$CDIR/node-$1"; }
nlogs() { echo "$CDIR/logs/node-$1"; }
servers() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("$HOST:$(port "$n")"); done
  (IFS=,; echo "${out[*]}")
}
voters() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("$n@$HOST:$(cport "$n")"); done
  (IFS=,; echo "${out[*]}")
}

# The pid of node N, or nothing (the pid file is trusted only while that process is
# a broker started with node N's properties: pids get reused).
node_pid() {
  local pidfile pid
  pidfile="$(ndir "$1")/kafka.pid"
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  if pid_alive "$pid" && pid_cmdline_has "$pid" "kafka.Kafka $(ndir "$1")/server.properties"; then
    echo "$pid"
    return 0
  fi
  return 1
}

# node N's properties: the single broker's template (deploy/kafka/server.properties)
# with this node's identity, ports and storage, and a cluster's replication.
write_props() {
  local n="$1" dir
  dir="$(ndir "$n")"
  mkdir -p "$dir/data" "$(nlogs "$n")"
  sed -e "s|^node.id=.*|node.id=$n|" \
    -e "s|^controller.quorum.voters=.*|controller.quorum.voters=$(voters)|" \
    -e "s|^listeners=.*|listeners=PLAINTEXT://$HOST:$(port "$n"),CONTROLLER://$HOST:$(cport "$n")|" \
    -e "s|^advertised.listeners=.*|advertised.listeners=PLAINTEXT://$HOST:$(port "$n")|" \
    -e "s|^log.dirs=.*|log.dirs=$dir/data|" \
    -e "s|^default.replication.factor=.*|default.replication.factor=3|" \
    -e "s|^min.insync.replicas=.*|min.insync.replicas=2|" \
    -e "s|^offsets.topic.replication.factor=.*|offsets.topic.replication.factor=3|" \
    -e "s|^transaction.state.log.replication.factor=.*|transaction.state.log.replication.factor=3|" \
    -e "s|^transaction.state.log.min.isr=.*|transaction.state.log.min.isr=2|" \
    -e "s|^num.io.threads=.*|num.io.threads=2|" \
    -e "s|^background.threads=.*|background.threads=2|" \
    -e "s|^num.recovery.threads.per.data.dir=.*|num.recovery.threads.per.data.dir=2|" \
    "$ROOT/deploy/kafka/server.properties" >"$dir/server.properties.tmp"
  cat >>"$dir/server.properties.tmp" <<PROPS

############################# A lost node (deploy/bin/kafka-cluster.sh) #############################
# The controller fences a broker that stopped heartbeating after 6 s (default 9 s) and
# moves its partitions' leadership to the in-sync replicas that are left.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=6000
# A lagging follower leaves the ISR after 10 s (default 30 s).
replica.lag.time.max.ms=10000
PROPS
  mv "$dir/server.properties.tmp" "$dir/server.properties"
}

# One cluster id for all nodes, kept in KAFKA_CLUSTER_DIR/cluster.id.
cluster_id() {
  local java="$1" f="$CDIR/cluster.id"
  if [[ ! -s "$f" ]]; then
    mkdir -p "$CDIR/logs"
    kafka_random_uuid "$java" "$CDIR/logs" >"$f.tmp"
    [[ -s "$f.tmp" ]] || die "kafka StorageTool random-uuid printed nothing (see $CDIR/logs/kafka.out)"
    mv "$f.tmp" "$f"
  fi
  cat "$f"
}

tail_node_log() {
  local f
  for f in "$(nlogs "$1")/kafka.out" "$(nlogs "$1")/kafka.log"; do
    [[ -s "$f" ]] || continue
    log "---- last lines of $f ----"
    tail -n 30 "$f" >&2
  done
}

# Refuses ports someone else holds; the single local broker (deploy/bin/kafka.sh, client
# 9092, controller 9093) by name.
check_ports() {
  local n p owner
  for n in "$@"; do
    for p in "$(port "$n")" "$(cport "$n")"; do
      port_open "$HOST" "$p" || continue
      if [[ "$p" == 9092 || "$p" == 9093 ]] &&
        KAFKA_BOOTSTRAP_SERVERS="$DEFAULT_KAFKA" "$ROOT/deploy/bin/kafka.sh" status >/dev/null 2>&1; then
        die "the single local broker (deploy/bin/kafka.sh) holds $HOST:$p: stop it first (make stop), or start the cluster on other ports (KAFKA_CLUSTER_PORT_BASE=19092)"
      fi
      owner="$(port_owner "$p")"
      die "port $HOST:$p is already in use${owner:+ by $owner}; stop that, or set KAFKA_CLUSTER_PORT_BASE"
    done
  done
}

format_node() {
  local n="$1" java="$2" cid="$3"
  write_props "$n"
  kafka_format "$java" "$(nlogs "$n")" "$cid" "$(ndir "$n")/server.properties" ||
    { tail_node_log "$n"; die "kafka node $n: storage format failed"; }
}

launch() {
  local n="$1" java="$2" pid
  printf '\n==== %s starting node %s\n' "$(date -Is)" "$n" >>"$(nlogs "$n")/kafka.out"
  pid="$(kafka_launch "$(ndir "$n")/kafka.pid" "$(nlogs "$n")/kafka.out" "$java" \
    "$(nlogs "$n")" "$HEAP" "$(ndir "$n")/server.properties")"
  log "kafka-cluster: node $n started (pid $pid) at $HOST:$(port "$n")"
}

# Ready: every node's client port open, then (python -m shared.admin wait-kafka) all
# three brokers in the metadata and a produce (acks=all, replicated 3) + consume round trip.
wait_ready() {
  local t0 deadline n
  t0="$(now)"
  deadline=$((SECONDS + READY_TIMEOUT))
  for n in "${NODES[@]}"; do
    until port_open "$HOST" "$(port "$n")"; do
      if ! node_pid "$n" >/dev/null; then
        tail_node_log "$n"
        die "kafka node $n exited during startup (logs: $(nlogs "$n"))"
      fi
      ((SECONDS < deadline)) || { tail_node_log "$n"; die "kafka node $n not listening within ${READY_TIMEOUT}s"; }
      sleep 0.2
    done
  done
  local left=$((deadline - SECONDS))
  ((left >= 10)) || left=10
  if ! (cd "$ROOT" && KAFKA_BOOTSTRAP_SERVERS="$(servers)" KAFKA_REPLICATION_FACTOR=3 \
    "$PY" -m shared.admin wait-kafka --brokers "${#NODES[@]}" --timeout "$left" \
    >"$CDIR/logs/wait-kafka.log" 2>&1); then
    tail -n 20 "$CDIR/logs/wait-kafka.log" >&2
    die "kafka cluster is not ready (python -m shared.admin wait-kafka failed)"
  fi
  log "kafka-cluster: ready at $(servers) ($(elapsed "$t0")s)"
}

start() {
  ensure_setup
  compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null || die "no Kafka jars in $KAFKA_LIBS (run deploy/bin/setup.sh)"
  local targets=("$@") todo=() n java cid
  ((${#targets[@]})) || targets=("${NODES[@]}")
  for n in "${targets[@]}"; do
    node_pid "$n" >/dev/null || todo+=("$n")
  done
  if ((${#todo[@]})); then
    check_ports "${todo[@]}"
    java="$(java_bin)"
    cid="$(cluster_id "$java")"
    local formats=()
    for n in "${todo[@]}"; do # a JVM each: side by side
      format_node "$n" "$java" "$cid" &
      formats+=($!)
    done
    for n in "${formats[@]}"; do wait "$n" || die "kafka-cluster: a storage format failed"; done
    for n in "${todo[@]}"; do launch "$n" "$java"; done
  fi
  wait_ready
}

stop_node() {
  local n="$1" pid
  pid="$(node_pid "$n")" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while pid_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      log "kafka-cluster: node $n still running after ${STOP_TIMEOUT}s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.1
  done
  rm -f "$(ndir "$n")/kafka.pid"
  log "kafka-cluster: node $n stopped (pid $pid)"
}

stop() {
  local n pid
  # all at once: a node stopping alone waits for the others' controlled shutdown
  for n in "${NODES[@]}"; do
    pid="$(node_pid "$n")" && kill -TERM "$pid" 2>/dev/null || true
  done
  for n in "${NODES[@]}"; do stop_node "$n"; done
}

kill_node() {
  local n="$1" pid
  pid="$(node_pid "$n")" || die "kafka node $n is not running"
  kill -KILL "$pid"
  while pid_alive "$pid"; do sleep 0.05; done
  rm -f "$(ndir "$n")/kafka.pid"
  log "kafka-cluster: node $n killed (SIGKILL, pid $pid)"
}

status() {
  local n pid rc=0
  for n in "${NODES[@]}"; do
    if pid="$(node_pid "$n")"; then
      echo "kafka node $n: running (pid $pid) at $HOST:$(port "$n")"
    else
      echo "kafka node $n: stopped"
      rc=3
    fi
  done
  return "$rc"
}

node_arg() {
  [[ "${1:-}" =~ ^[123]$ ]] || die "a node number is 1, 2 or 3 (got '${1:-}')"
  echo "$1"
}

case "${1:-}" in
  start) if (($# > 1)); then start "$(node_arg "$2")"; else start; fi ;;
  stop) if (($# > 1)); then stop_node "$(node_arg "$2")"; else stop; fi ;;
  restart) stop_node "$(node_arg "${2:-}")" && start "$2" ;;
  kill) kill_node "$(node_arg "${2:-}")" ;;
  status) status ;;
  servers) servers ;;
  *) echo "usage: $0 {start [N]|stop [N]|restart N|kill N|status|servers}" >&2; exit 2 ;;
esac
