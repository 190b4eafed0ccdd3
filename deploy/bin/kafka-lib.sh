# shellcheck shell=bash
# Helpers of the two local Kafka scripts (deploy/bin/kafka.sh: one broker;
# deploy/bin/kafka-cluster.sh: three). Sourced after lib.sh, never executed.

KAFKA_LIBS="$ROOT/deploy/kafka/libs"

java_bin() {
  local j
  for j in /usr/lib/jvm/java-17-openjdk-*/bin/java; do
    [[ -x "$j" ]] && { echo "$j"; return; }
  done
  command -v java || die "no java found (run deploy/bin/setup.sh)"
}

# kafka_tool_opts LOGDIR: the JVM options of the one-shot StorageTool runs (logging
# into LOGDIR/kafka.log).
kafka_tool_opts() {
  echo "-Djava.awt.headless=true -Dkafka.logs.dir=$1"
  echo "-Dlog4j.configuration=file:$ROOT/deploy/kafka/log4j.properties"
}

# The broker's JIT and GC options: KAFKA_JVM_PERFORMANCE_OPTS overrides them, as in
# Kafka's own kafka-run-class.sh, whose G1 options these are, plus one of ours:
# -XX:TieredStopAtLevel=1 compiles with C1 only. On a machine whose 2 cores the broker
# shares with the whole stack, C2's compiler thread took more CPU than the broker's
# own work for the first minutes of load (docs/performance.md, "The broker's JIT").
KAFKA_PERF_DEFAULT="-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:TieredStopAtLevel=1"

# kafka_java_opts LOGDIR HEAP: a broker's JVM options, mostly those of Kafka's own
# kafka-run-class.sh and kafka-server-start.sh.
kafka_java_opts() {
  echo "$2"
  kafka_tool_opts "$1"
  echo "${KAFKA_JVM_PERFORMANCE_OPTS:-$KAFKA_PERF_DEFAULT}"
  echo "-XX:+ExitOnOutOfMemoryError"
}

# kafka_random_uuid JAVA LOGDIR: a fresh cluster id.
kafka_random_uuid() {
  # shellcheck disable=SC2046
  "$1" $(kafka_tool_opts "$2") -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid \
    2>>"$2/kafka.out" | tail -n 1
}

# kafka_format JAVA LOGDIR CLUSTER_ID PROPS: formats the props' log.dirs once.
kafka_format() {
  # shellcheck disable=SC2046
  "$1" $(kafka_tool_opts "$2") -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format \
    --ignore-formatted -t "$3" -c "$4" >>"$2/kafka.out" 2>&1
}

# Who else holds a port? (Another checkout's broker, an old manual run...)
port_owner() {
  local port="$1" hex inode fd
  hex="$(printf ':%04X' "$port")"
  inode="$(awk -v h="$hex" '$2 ~ h"$" && $4 == "0A" {print $10; exit}' /proc/net/tcp /proc/net/tcp6 2>/dev/null)"
  [[ -n "$inode" ]] || return 0
  for fd in /proc/[0-9]*/fd/*; do
    if [[ "$(readlink "$fd" 2>/dev/null)" == "socket:[$inode]" ]]; then
      fd="${fd#/proc/}"
      echo "pid ${fd%%/*}: $(tr '\0' ' ' <"/proc/${fd%%/*}/cmdline" 2>/dev/null | cut -c1-160)"
      return 0
    fi
  done
}

# kafka_launch PIDFILE OUTFILE JAVA LOGDIR HEAP PROPS: the broker in its own session
# (setsid: a Ctrl-C in the terminal of `make up` does not reach it directly), its pid
# in PIDFILE; prints the pid.
kafka_launch() {
  local pidfile="$1" out="$2" java="$3" logdir="$4" heap="$5" props="$6" pid
  rm -f "$pidfile"
  # shellcheck disable=SC2046
  # shellcheck disable=SC2016
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" \
    "$java" $(kafka_java_opts "$logdir" "$heap") -cp "$KAFKA_LIBS/*" kafka.Kafka "$props" \
    </dev/null >>"$out" 2>&1 &
  for _ in $(seq 50); do
    [[ -s "$pidfile" ]] && break
    sleep 0.05
  done
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  [[ -n "$pid" ]] || die "kafka: no pid file after launch ($pidfile)"
  echo "$pid"
}
