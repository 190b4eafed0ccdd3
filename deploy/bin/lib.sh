# shellcheck shell=bash disable=SC2034
# Common helpers for the deploy/bin scripts. Sourced, never executed.
#
# Layout of local, untracked runtime state (gitignored):
#   .state/kafka/           cluster.id, server.properties (generated), data/, kafka.pid
#   .state/logs/            kafka.log, kafka.out, supervisord.log, <program>.log
#   .state/postgres/        started-by-us marker
#   .state/supervisord.pid  .state/supervisor.sock

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="$ROOT/.state"
LOGS="$STATE/logs"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

DEFAULT_KAFKA="127.0.0.1:9092"
# the local server by its Unix socket (deploy/bin/postgres.sh lets role care in there by password)
DEFAULT_DATABASE_URL="postgresql://care:care@/care?host=/var/run/postgresql&port=5432"

# The HTTP services started by deploy/supervisord.conf: "program|readiness URL".
# Adding a service = one [program:x] block in supervisord.conf + one line here
# (programs without HTTP, like intake-relay, only need to reach RUNNING).
http_services() {
  echo "intake-api|http://127.0.0.1:${INTAKE_PORT:-8001}"
  echo "scheduling-api|http://127.0.0.1:${SCHEDULING_PORT:-8002}"
  echo "alerts-api|http://127.0.0.1:${ALERTS_PORT:-8003}"
  echo "dashboard|http://127.0.0.1:${DASHBOARD_PORT:-8000}"
  # workers: /readyz on their WORKER_METRICS_PORT (supervisord.conf): 200 once in their
  # group with a working database pool, and with a partition assigned or no group lag
  echo "scheduling-worker|http://127.0.0.1:9112"
  echo "alerts-worker|http://127.0.0.1:9113"
  # /readyz: 200 once it has read the groups' lag from the broker
  echo "lag-exporter|http://127.0.0.1:9140"
}

log() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Seconds since the epoch with millisecond precision (for timings).
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# pid_alive PID: true when the process exists and is not a zombie.
pid_alive() {
  local pid="$1" st
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/stat" ]] || return 1
  st="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || return 1
  [[ -n "$st" && "$st" != Z && "$st" != X ]]
}

# pid_cmdline_has PID STRING: the process's command line contains STRING.
pid_cmdline_has() {
  [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# Run setup.sh unless the caller (the Makefile, .ci/run) already did in this run.
ensure_setup() {
  if [[ "${INTERVAL_SETUP_DONE:-}" != 1 ]]; then
    "$ROOT/deploy/bin/setup.sh"
    export INTERVAL_SETUP_DONE=1
  fi
}

# Root or sudo for apt and for acting as the postgres user.
as_root() {
  if [[ "$(id -u)" == 0 ]]; then "$@"; else sudo -n "$@"; fi
}
