#!/bin/bash
# The broker's properties: deploy/kafka/server.properties (copied in by build.sh), then
# every KAFKA_<NAME> variable as a property, named as the official apache/kafka image
# names them (lower case, `___` for `-`, `__` for `_`, `_` for `.`), e.g.
# KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://127.0.0.1:19092. The storage is formatted on
# the first start (CLUSTER_ID, or a random one); a restarted container keeps its data.
set -euo pipefail
CONF=/opt/kafka/config
PROPS=/var/lib/kafka/server.properties
DATA=/var/lib/kafka/data
JAVA_OPTS=(-Djava.awt.headless=true "-Dlog4j.configuration=file:$CONF/log4j.properties")

sed -e "s|^log.dirs=.*|log.dirs=$DATA|" "$CONF/server.properties" >"$PROPS"
while IFS='=' read -r name value; do
  case "$name" in
    KAFKA_HEAP_OPTS | KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_OPTS | KAFKA_LOG4J_OPTS) continue ;;
  esac
  key="$(sed -e 's/^KAFKA_//' -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g' <<<"$name" |
    tr '[:upper:]' '[:lower:]')"
  # the variable's value wins over the file's line
  grep -v "^${key//./\\.}=" "$PROPS" >"$PROPS.tmp" || true
  printf '%s=%s\n' "$key" "$value" >>"$PROPS.tmp"
  mv "$PROPS.tmp" "$PROPS"
done < <(env | grep '^KAFKA_' || true)

if [[ ! -s "$DATA/meta.properties" ]]; then
  cid="${CLUSTER_ID:-$(java "${JAVA_OPTS[@]}" -cp '/opt/kafka/libs/*' kafka.tools.StorageTool random-uuid | tail -n 1)}"
  java "${JAVA_OPTS[@]}" -cp '/opt/kafka/libs/*' kafka.tools.StorageTool format \
    --ignore-formatted -t "$cid" -c "$PROPS" >/dev/null
fi
# Kafka's own scripts' JVM options, C1 only (deploy/bin/kafka-lib.sh kafka_java_opts)
PERF="-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35"
PERF="$PERF -XX:+ExplicitGCInvokesConcurrent -XX:TieredStopAtLevel=1"
# shellcheck disable=SC2086
exec java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} "${JAVA_OPTS[@]}" \
  ${KAFKA_JVM_PERFORMANCE_OPTS:-$PERF} -XX:+ExitOnOutOfMemoryError \
  -cp '/opt/kafka/libs/*' kafka.Kafka "$PROPS"
