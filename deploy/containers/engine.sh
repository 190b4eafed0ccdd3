#!/usr/bin/env bash
# A Docker engine for the test containers, where none answers (CI's fresh machine):
#
#   deploy/containers/engine.sh start   an engine that answers: the one running, else
#                                       Debian's docker.io (and debootstrap, for
#                                       build.sh) installed if missing, and dockerd
#                                       started in the background
#   deploy/containers/engine.sh stop    if `start` started dockerd: the test containers
#                                       removed (label org.interval.test=1) and dockerd
#                                       stopped; else nothing
#
# The engine started here makes no bridge and touches no iptables rules: the test
# containers share the host's network (tests/support/containers.py), and the image
# builds use it too (build.sh). Its log: .state/logs/dockerd.log. Needs root.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../bin/lib.sh"

PIDFILE="$STATE/dockerd.pid"
READY_TIMEOUT=60

answers() { docker info >/dev/null 2>&1; }

start() {
  if answers; then
    log "engine: a Docker engine answers; using it"
    return 0
  fi
  local pkgs=()
  command -v dockerd >/dev/null || pkgs+=(docker.io)
  command -v debootstrap >/dev/null || pkgs+=(debootstrap)
  mkdir -p "$LOGS"
  if ((${#pkgs[@]})); then
    local t0
    t0="$(now)"
    log "engine: apt-get install ${pkgs[*]}"
    as_root apt-get update -qq >"$LOGS/apt-engine.log" 2>&1 ||
      { tail -n 20 "$LOGS/apt-engine.log" >&2; die "apt-get update failed"; }
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
      "${pkgs[@]}" >>"$LOGS/apt-engine.log" 2>&1 ||
      { tail -n 30 "$LOGS/apt-engine.log" >&2; die "apt-get install ${pkgs[*]} failed"; }
    log "engine: apt done in $(elapsed "$t0")s"
  fi
  log "engine: starting dockerd"
  # setsid: its own session, so a Ctrl-C meant for the caller does not reach it
  setsid dockerd --bridge=none --iptables=false --ip6tables=false \
    </dev/null >>"$LOGS/dockerd.log" 2>&1 &
  echo $! >"$PIDFILE"
  local i
  for ((i = 0; i < READY_TIMEOUT * 5; i++)); do
    answers && { log "engine: dockerd ready (pid $(cat "$PIDFILE"))"; return 0; }
    pid_alive "$(cat "$PIDFILE")" || break
    sleep 0.2
  done
  tail -n 30 "$LOGS/dockerd.log" >&2
  die "dockerd did not answer (log: $LOGS/dockerd.log)"
}

stop() {
  local pid ids
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  if ! pid_alive "$pid" || ! pid_cmdline_has "$pid" dockerd; then
    rm -f "$PIDFILE"
    return 0 # not started here: someone else's engine and containers
  fi
  ids="$(docker ps -aq --filter label=org.interval.test=1 2>/dev/null || true)"
  # shellcheck disable=SC2086
  [[ -z "$ids" ]] || docker rm -f -v $ids >/dev/null
  kill -TERM "$pid"
  local i
  for ((i = 0; i < 150; i++)); do
    pid_alive "$pid" || break
    sleep 0.2
  done
  pid_alive "$pid" && kill -KILL "$pid"
  rm -f "$PIDFILE"
  log "engine: dockerd stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 {start|stop}" >&2; exit 2 ;;
esac
