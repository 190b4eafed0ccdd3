#!/usr/bin/env bash
# Idempotent installer used by every make target (and by kafka.sh / postgres.sh
# when run on their own). Quiet and apt-free when everything is already there.
#
#   1. Debian packages, only those missing: PostgreSQL, OpenJDK 17, Maven, chromium,
#      prometheus (for promtool; its daemon is stopped and disabled), and a Python 3.11
#      with venv support if none is found.
#   2. The virtualenv .venv (Python 3.11): every package of requirements.lock, hashes
#      verified, then the project itself without its dependencies (never re-resolved);
#      re-run only when requirements.lock or pyproject.toml changed (hash stamp inside
#      .venv). A lock out of date with pyproject.toml is said (`make lock` updates it).
#   3. The Kafka broker's jars in deploy/kafka/libs, re-resolved only when
#      deploy/kafka/pom.xml changed (hash stamp inside libs/).
#
# Components are skipped when not needed: no PostgreSQL packages when
# DATABASE_URL points elsewhere, no Java/Maven/jars when KAFKA_BOOTSTRAP_SERVERS does.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

mkdir -p "$STATE" "$LOGS"
# One setup at a time (parallel make targets, a second terminal).
exec 9>"$STATE/setup.lock"
flock -w 1800 9 || die "setup.sh: could not take $STATE/setup.lock"

need_postgres=1
need_kafka=1
if [[ -n "${DATABASE_URL:-}" && "$DATABASE_URL" != "$DEFAULT_DATABASE_URL" ]]; then need_postgres=0; fi
case "${KAFKA_BOOTSTRAP_SERVERS:-$DEFAULT_KAFKA}" in
  127.0.0.1:9092 | localhost:9092) ;;
  *) need_kafka=0 ;;
esac

sha() { sha256sum "$1" | awk '{print $1}'; }

# ---------------------------------------------------------------- python 3.11
# Prints the path of a Python 3.11 interpreter, preferring pyenv/local builds.
find_python311() {
  local c
  for c in "${INTERVAL_PYTHON:-}" python3.11 python3 \
    "$HOME"/.pyenv/versions/3.11*/bin/python3.11 /usr/local/bin/python3.11 /usr/bin/python3.11; do
    [[ -n "$c" ]] || continue
    c="$(command -v "$c" 2>/dev/null)" || continue
    # (a pyenv shim resolves to the interpreter it runs)
    if c="$("$c" -c 'import sys; assert sys.version_info[:2] == (3, 11); print(sys.executable)' 2>/dev/null)" &&
      [[ -x "$c" ]]; then
      echo "$c"
      return 0
    fi
  done
  return 1
}
python_can_venv() { "$1" -c 'import venv, ensurepip' 2>/dev/null; }

# ---------------------------------------------------------------- 1. apt
pkgs=()
pkg_installed() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed; }

java17_ok() {
  compgen -G '/usr/lib/jvm/java-17-openjdk-*/bin/java' >/dev/null && return 0
  command -v java >/dev/null && java -version 2>&1 | grep -q 'version "17'
}
if ((need_kafka)); then
  java17_ok || pkgs+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || pkgs+=(maven)
fi
if ((need_postgres)); then
  if ! command -v pg_ctlcluster >/dev/null || ! command -v psql >/dev/null ||
    ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
    pkgs+=(postgresql)
  fi
fi
# The dashboard's front-end packages come from the npm registry; its browser tests
# drive Debian's chromium (a test tool's own browser download cannot work here).
command -v npm >/dev/null || pkgs+=(nodejs npm)
command -v chromium >/dev/null || pkgs+=(chromium)
# promtool (Debian's prometheus package) lints every process's /metrics in the tests and
# checks deploy/prometheus/prometheus.yml; the package's own daemon is not wanted.
command -v promtool >/dev/null || pkgs+=(prometheus)
py311="$(find_python311 || true)"
if [[ -z "$py311" ]]; then
  pkgs+=(python3.11 python3.11-venv)
elif ! python_can_venv "$py311" && [[ "$py311" == /usr/bin/* ]]; then
  pkgs+=(python3.11-venv)
fi

# The prometheus package's postinst starts and enables its daemon (:9090) under systemd;
# where a policy-rc.d denies starts (containers) nothing was started. We only want promtool.
stop_system_prometheus() {
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
  elif [[ -x /etc/init.d/prometheus ]]; then
    if /etc/init.d/prometheus status >/dev/null 2>&1; then
      as_root /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null; then
      as_root update-rc.d prometheus disable >/dev/null 2>&1 || true
    fi
  fi
}

if ((${#pkgs[@]})); then
  command -v apt-get >/dev/null || die "missing ${pkgs[*]} and no apt-get to install them"
  log "setup: apt-get install ${pkgs[*]}"
  t0="$(now)"
  as_root apt-get update -qq >"$LOGS/apt.log" 2>&1 || { tail -n 20 "$LOGS/apt.log" >&2; die "apt-get update failed"; }
  as_root apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >>"$LOGS/apt.log" 2>&1 ||
    { tail -n 30 "$LOGS/apt.log" >&2; die "apt-get install ${pkgs[*]} failed (log: $LOGS/apt.log)"; }
  log "setup: apt done in $(elapsed "$t0")s"
  hash -r
  if [[ " ${pkgs[*]} " == *" prometheus "* ]]; then stop_system_prometheus; fi
  [[ -n "$py311" ]] || py311="$(find_python311)" || die "no Python 3.11 after installing python3.11"
fi

# ---------------------------------------------------------------- 2. venv
venv_stamp="$VENV/.interval-lock.sha256"
lock="$ROOT/requirements.lock"
[[ -f "$lock" ]] || die "requirements.lock is missing (make lock makes it from pyproject.toml)"
want="$(cat "$lock" "$ROOT/pyproject.toml" | sha256sum | awk '{print $1}')"
if [[ -x "$PY" ]] && ! "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
  log "setup: $VENV is broken or not Python 3.11; recreating it"
  rm -rf "$VENV"
fi
if [[ ! -x "$PY" ]]; then
  log "setup: creating $VENV with $py311"
  "$py311" -m venv "$VENV" || die "could not create the virtualenv with $py311"
  rm -f "$venv_stamp"
fi
if [[ "$(cat "$venv_stamp" 2>/dev/null || true)" != "$want" ]]; then
  log "setup: pip install -r requirements.lock (the lock or pyproject.toml changed, or new venv)"
  t0="$(now)"
  # Wheels only, each checked against the lock's hashes: an sdist would be built with
  # build dependencies fetched unpinned. The project itself then without dependencies,
  # built by the lock's setuptools (no build isolation: nothing fetched, nothing resolved).
  (cd "$ROOT" && "$PY" -m pip install -q --require-hashes --no-deps --only-binary :all: \
    -r requirements.lock && "$PY" -m pip install -q --no-deps --no-build-isolation -e .) \
    >"$LOGS/pip.log" 2>&1 ||
    { tail -n 40 "$LOGS/pip.log" >&2; die "pip install failed (log: $LOGS/pip.log)"; }
  if (cd "$ROOT" && "$PY" -m tools.lock --check); then
    # every dependency of every installed package is there, at a version it accepts
    "$PY" -m pip check >>"$LOGS/pip.log" 2>&1 ||
      { tail -n 20 "$LOGS/pip.log" >&2; die "pip check failed after installing requirements.lock"; }
  else
    log "setup: warning: .venv has the packages of a requirements.lock out of date with pyproject.toml"
  fi
  echo "$want" >"$venv_stamp"
  log "setup: pip done in $(elapsed "$t0")s"
fi

# ---------------------------------------------------------------- 3. kafka jars
web="$ROOT/services/dashboard/web"
web_stamp="$web/node_modules/.interval-lock.sha256"
want="$(sha "$web/package-lock.json")"
if [[ "$(cat "$web_stamp" 2>/dev/null || true)" != "$want" ]]; then
  log "setup: npm ci (dashboard front-end packages)"
  t0="$(now)"
  (cd "$web" && npm ci --no-audit --no-fund --ignore-scripts) >"$LOGS/npm.log" 2>&1 ||
    { tail -n 30 "$LOGS/npm.log" >&2; die "npm ci failed (log: $LOGS/npm.log)"; }
  echo "$want" >"$web_stamp"
  log "setup: npm done in $(elapsed "$t0")s"
fi

if ((need_kafka)); then
  pom="$ROOT/deploy/kafka/pom.xml"
  libs="$ROOT/deploy/kafka/libs"
  libs_stamp="$libs/.pom.sha256"
  want="$(sha "$pom")"
  if [[ "$(cat "$libs_stamp" 2>/dev/null || true)" != "$want" ]] ||
    ! compgen -G "$libs/kafka_2.13-*.jar" >/dev/null; then
    log "setup: resolving Kafka broker jars (deploy/kafka/pom.xml changed or libs missing)"
    t0="$(now)"
    tmp="$STATE/kafka-libs.tmp"
    rm -rf "$tmp"
    mvn -B -q -ntp -Dstyle.color=never -f "$pom" \
      org.apache.maven.plugins:maven-dependency-plugin:3.10.0:copy-dependencies \
      -DoutputDirectory="$tmp" >"$LOGS/maven.log" 2>&1 ||
      { tail -n 40 "$LOGS/maven.log" >&2; die "maven could not resolve the Kafka jars (log: $LOGS/maven.log)"; }
    compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || die "maven ran but no kafka_2.13 jar in $tmp"
    echo "$want" >"$tmp/.pom.sha256"
    rm -rf "$libs"
    mv "$tmp" "$libs"
    log "setup: $(find "$libs" -name '*.jar' | wc -l) jars in deploy/kafka/libs in $(elapsed "$t0")s"
  fi
fi

# ---------------------------------------------------------------- 4. dev PHI key
# The intake service encrypts PHI at rest with the keys of PHI_KEYS / PHI_KEYS_FILE and
# never makes a key itself. For local development (neither set) it reads
# .state/phi.key: made here once, 0600, and kept (the local database's PHI needs it).
phi_key="$STATE/phi.key"
if [[ -z "${PHI_KEYS:-}" && -z "${PHI_KEYS_FILE:-}" && ! -s "$phi_key" ]]; then
  (
    umask 077
    tmp="$phi_key.tmp.$$"
    { echo "# Interval intake: PHI encryption keys for local development, newest first."
      "$PY" -m services.intake new-phi-key; } >"$tmp" &&
      mv -n "$tmp" "$phi_key"
    rm -f "$tmp"
  ) || die "could not create $phi_key"
  log "setup: created $phi_key (the local PHI encryption key; keep it with the local database)"
fi
