# Interval: local commands. Each target installs what it needs first
# (deploy/bin/setup.sh: idempotent, quiet and apt-free once everything is there).
#
#   make up       broker + database + topics + services; prints the URLs once all are
#                 ready, stays in the foreground; Ctrl-C stops what it started
#   make start    the same in the background; returns once everything is ready
#   make stop     stops the services, the broker, and PostgreSQL if we started it
#   make status
#   make test     the whole suite (PYTEST_ARGS="-k foo -x" to pass pytest options);
#                 INTERVAL_TESTCONTAINERS=1 make test: against a broker and a database in
#                 containers (a Docker engine needed) instead of the local ones
#   make images   the test containers' images (deploy/containers/build.sh)
#   make faults   the fault suite for 10 minutes (kills, broker/database restarts, two of
#                 every process); make test runs it for 45 s
#   make lint     ruff check, ruff format --check, mypy, lint-imports, requirements.lock up to date
#   make lock     re-makes requirements.lock after a change to pyproject.toml's dependencies
#   make bench    the benchmarks (python -m bench)
#   make demo     a living demo network, loaded through the APIs (after make up / start)
#   make cluster  a local three-broker Kafka cluster on 9092-9094 (replication 3,
#                 min.insync.replicas=2; the single broker must be stopped: make stop)
#   make up-cluster    make up against that cluster (KAFKA_REPLICATION_FACTOR=3)
#   make cluster-stop  stops the cluster; make cluster-status
#   make install  only the installs (apt packages, .venv from requirements.lock, Kafka jars)
#
# Environment: KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL pointing elsewhere use that
# broker / database instead of starting local ones; INTAKE_PORT etc. as in the README ("What runs").

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.PHONY: help install setup infra images up start stop status test lint lock bench demo faults \
	cluster cluster-stop cluster-status up-cluster

BIN := deploy/bin
VENV_BIN := .venv/bin
PYTEST_ARGS ?=
# setup.sh ran once for this make invocation; the scripts below skip it then.
export INTERVAL_SETUP_DONE := 1

help:
	@sed -n 's/^#   make /  make /p' Makefile

install setup:
	@$(BIN)/setup.sh

infra: install
	@$(BIN)/stack.sh infra

images: install
	@deploy/containers/build.sh

up: install
	@$(BIN)/stack.sh up

start: install
	@$(BIN)/stack.sh start

stop:
	@$(BIN)/stack.sh stop

status:
	@$(BIN)/stack.sh status || true

# the local broker and database, or the images of the containers the suite starts
test: $(if $(filter 1,$(INTERVAL_TESTCONTAINERS)),images,infra)
	$(VENV_BIN)/python -m pytest --durations=25 $(PYTEST_ARGS)

faults: infra
	FAULT_SECONDS=$${FAULT_SECONDS:-600} $(VENV_BIN)/python -m pytest -s tests/faults/test_chaos.py $(PYTEST_ARGS)

lint: install
	@failed=(); \
	$(VENV_BIN)/ruff check . || failed+=("ruff check"); \
	$(VENV_BIN)/ruff format --check . || failed+=("ruff format --check"); \
	$(VENV_BIN)/mypy || failed+=("mypy"); \
	$(VENV_BIN)/lint-imports || failed+=("lint-imports"); \
	$(VENV_BIN)/python -m tools.lock --check || failed+=("requirements.lock out of date"); \
	if (( $${#failed[@]} )); then echo "lint failed: $${failed[*]}" >&2; exit 1; fi; \
	echo "lint: all checks passed"

# uv (from the lock) re-makes the lock (PyPI needed), then the venv follows it.
# LOCK_ARGS="--upgrade-package NAME" moves one package on to its newest version.
LOCK_ARGS ?=
lock: install
	$(VENV_BIN)/python -m tools.lock $(LOCK_ARGS)
	@$(BIN)/setup.sh

bench: infra
	$(VENV_BIN)/python -m bench

demo: install
	$(VENV_BIN)/python -m tools.demo

# The three-broker cluster (deploy/bin/kafka-cluster.sh; docs/scale-out.md). Against it,
# make start/up take KAFKA_BOOTSTRAP_SERVERS=$(CLUSTER_SERVERS) KAFKA_REPLICATION_FACTOR=3.
CLUSTER_SERVERS = $$($(BIN)/kafka-cluster.sh servers)

cluster: install
	@$(BIN)/kafka-cluster.sh start

cluster-stop:
	@$(BIN)/kafka-cluster.sh stop

cluster-status:
	@$(BIN)/kafka-cluster.sh status || true

up-cluster: cluster
	@KAFKA_BOOTSTRAP_SERVERS=$(CLUSTER_SERVERS) KAFKA_REPLICATION_FACTOR=3 $(BIN)/stack.sh up
