#!/usr/bin/env bash
# The integration suite's container images, built from this repository and Debian's
# packages alone (no image registry):
#
#   interval/debian:bookworm   a minimal Debian made by debootstrap, then `docker import`
#   interval/postgres:15       Debian's postgresql-15 on it (postgres/Dockerfile)
#   interval/kafka:3.9.2       Debian's OpenJDK 17 and the broker jars of deploy/kafka/libs
#                              (deploy/kafka/pom.xml, from Maven Central) (kafka/Dockerfile)
#
#   deploy/containers/build.sh           builds what is missing or out of date
#   deploy/containers/build.sh --force   builds all three again
#
# Each image carries the hash of its inputs (label org.interval.inputs): an image whose
# label matches is kept, so a second run takes a second. Every image is labelled
# org.interval.test=1, the label tests/support/containers.py cleans up by.
# Needs root (debootstrap), a running Docker engine, and the Kafka jars (deploy/bin/setup.sh).
# The test suite runs these with INTERVAL_TESTCONTAINERS=1 (docs/architecture.md, "Tests").
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../bin/lib.sh"

SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_IMAGE="interval/debian:$SUITE"
PG_IMAGE="interval/postgres:15"
KAFKA_IMAGE="interval/kafka:3.9.2"
LABEL=org.interval.test=1
# What the base is made of; change the last word when the recipe below changes.
BASE_SPEC="$SUITE minbase $MIRROR policy-rc.d,no-recommends,updates,security v1"

FORCE=0
[[ "${1:-}" == --force ]] && FORCE=1

command -v docker >/dev/null || die "no docker client (apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "no Docker engine answers (start dockerd; see docs/architecture.md)"

inputs_of() { docker image inspect -f '{{ index .Config.Labels "org.interval.inputs" }}' "$1" 2>/dev/null || true; }
# up_to_date IMAGE HASH: the image exists with these inputs (and no --force).
up_to_date() { ((FORCE == 0)) && [[ "$(inputs_of "$1")" == "$2" ]]; }
hash_of() { sha256sum | cut -c1-16; }
# files_hash DIR: one hash of the names (relative) and contents of every file under DIR.
files_hash() { (cd "$1" && find -L . -type f -print0 | sort -z | xargs -0 sha256sum | hash_of); }

WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/interval-images.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

build_base() {
  local h t0 root="$WORK/rootfs"
  h="$(hash_of <<<"$BASE_SPEC")"
  if up_to_date "$BASE_IMAGE" "$h"; then
    log "images: $BASE_IMAGE up to date"
    return 0
  fi
  command -v debootstrap >/dev/null || die "no debootstrap (apt-get install debootstrap)"
  t0="$(now)"
  log "images: debootstrap $SUITE (minbase) from $MIRROR ..."
  debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
  # as Debian's own container images: no service starts during a package's install, no
  # recommended packages, security updates, and no package lists kept in the image
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod +x "$root/usr/sbin/policy-rc.d"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$root/etc/apt/apt.conf.d/90interval-no-recommends"
  cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
EOF
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" -c . | docker import \
    --change "LABEL $LABEL" --change "LABEL org.interval.inputs=$h" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"
  log "images: $BASE_IMAGE imported ($(elapsed "$t0")s)"
}

# build_image IMAGE CONTEXT HASH: docker build on the base, its hash as a label.
build_image() {
  local image="$1" context="$2" h="$3" t0
  if up_to_date "$image" "$h"; then
    log "images: $image up to date"
    return 0
  fi
  t0="$(now)"
  log "images: building $image ..."
  # host networking: apt reaches Debian's mirror even where the engine makes no bridge
  DOCKER_BUILDKIT=0 docker build -q --network host --build-arg "BASE=$BASE_IMAGE" \
    --label "$LABEL" --label "org.interval.inputs=$h" -t "$image" "$context" \
    >"$WORK/build.log" 2>&1 || { tail -n 40 "$WORK/build.log" >&2; die "docker build of $image failed"; }
  log "images: $image built ($(elapsed "$t0")s)"
}

build_base
base_id="$(docker image inspect -f '{{ .Id }}' "$BASE_IMAGE")"

build_image "$PG_IMAGE" "$HERE/postgres" \
  "$( (echo "$base_id" && files_hash "$HERE/postgres") | hash_of)"

compgen -G "$ROOT/deploy/kafka/libs/kafka_2.13-*.jar" >/dev/null ||
  die "no Kafka jars in deploy/kafka/libs (run deploy/bin/setup.sh)"
# the build context: the jars (deploy/kafka/libs may be a symbolic link) and the
# broker's properties beside this directory's files
mkdir -p "$WORK/kafka"
cp -r "$HERE/kafka/." "$WORK/kafka/"
cp -rL "$ROOT/deploy/kafka/libs" "$WORK/kafka/libs"
cp "$ROOT/deploy/kafka/server.properties" "$WORK/kafka/server.properties"
build_image "$KAFKA_IMAGE" "$WORK/kafka" "$( (echo "$base_id" && files_hash "$WORK/kafka") | hash_of)"
# the images these builds replaced, now untagged
docker image prune -f --filter "label=$LABEL" >/dev/null
