"""Typed configuration shared by every service, read once from the environment."""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.retry import Backoff

# The local server by its Unix socket, not loopback TCP: on the 2-core VM a statement's
# round trip costs both sides 15-35% less CPU there, and the whole stack about a tenth
# less per intake (docs/performance.md, "A Unix socket to PostgreSQL"). Any other server,
# or TCP: set DATABASE_URL (e.g. postgresql://care:care@127.0.0.1:5432/care).
DEFAULT_DATABASE_URL = "postgresql://care:care@/care?host=/var/run/postgresql&port=5432"
DEFAULT_KAFKA = "127.0.0.1:9092"


class ProcessSettings(BaseSettings):
    """What every process of ours needs (the dashboard's settings are just these and its
    own): logging, where it listens, credentials, and the dev clock."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    log_level: str = "INFO"
    log_json: bool = True
    http_host: str = "127.0.0.1"
    # Bearer tokens with roles (shared/auth.py); unset: no credentials, as on loopback.
    api_tokens_file: str | None = None
    # DEV_CLOCK=1: the stack's time is the wall clock plus one offset moved forward by
    # POST /v1/dev/clock (shared/devclock.py); refused unless listening on loopback. The
    # offset is a row in the stack's database: DATABASE_URL is read for it alone.
    dev_clock: bool = False
    database_url: str = DEFAULT_DATABASE_URL
    # The niceness routine-only processes run at (shared/priority.py): under overload
    # the kernel runs the safety path first. 0 leaves every process as started.
    routine_nice: int = Field(default=10, ge=0, le=19)


class CommonSettings(ProcessSettings):
    """Settings every service process needs; services subclass it with their own."""

    kafka_bootstrap_servers: str = DEFAULT_KAFKA
    # Prepended to every topic name on the broker (events keep their type): lets test
    # runs and benchmarks share a broker with a running stack without mixing events.
    kafka_topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$", max_length=100)
    # How `python -m shared.admin ensure-topics` creates topics (a cluster: e.g. 12 and 3).
    kafka_topic_partitions: int = Field(default=6, ge=1)
    kafka_replication_factor: int = Field(default=1, ge=1)
    # How long our producers (outbox relays, dead letters) wait for an acknowledgement
    # before a send fails and is retried (shared/relay.py replaces a producer that a
    # broker outage longer than this left broken).
    kafka_request_timeout_ms: int = Field(default=15000, ge=1000)

    # At most this many of a service's routine requests (intake: POST /v1/intakes) run at
    # once; the rest wait at the gate, before their body is parsed (shared/web.py
    # RoutineGate), so a check-in never queues behind them in the event loop.
    routine_concurrency: int = Field(default=8, ge=1)
    # At most this many wait there; one more is refused at once (503 with Retry-After,
    # nothing read or changed), so that under overload what the gate lets in is answered
    # in time. 0: never refused.
    routine_queue_max: int = Field(default=256, ge=0)
    # Connections per process's pool: opened at start (``db_pool_min``), and up to
    # ``db_pool_max`` under load; one above the minimum closes after 5 idle minutes.
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    # A consumer's transaction left idle this long (its process frozen or starved of CPU
    # mid-transaction) is ended by PostgreSQL, so the patient, inbox and clinician rows
    # it locked hold up the safety lane (or another instance) behind it no longer than
    # this; the message is then handled again. 0 turns it off.
    consumer_idle_in_transaction_s: float = Field(default=5.0, ge=0)
    # The relay is woken by LISTEN/NOTIFY; this poll is only the safety net.
    outbox_poll_interval_s: float = Field(default=5.0, gt=0)
    # Rows a relay lane takes per round (published, then marked in one statement); idle
    # or at a steady rate a round carries only what arrived in the linger. Under a burst
    # (a site's 9:00 of missed check-ins, a backlog after an outage) bigger rounds and
    # bigger produce batches (below) cost less per event: with both, 100,000 misses at
    # once took 9 us of the broker's CPU per event instead of 20, 20 of the relay's
    # instead of 25 (docs/performance.md).
    outbox_batch_size: int = Field(default=1000, ge=1)
    # The most the relay's producer puts in one partition's batch of a produce request.
    # aiokafka's default, 16 KiB, is about 20 events, so a round took many requests in
    # turn (idempotence allows one in flight per partition). It must stay under the
    # broker's message.max.bytes (1 MiB by default).
    outbox_producer_batch_bytes: int = Field(default=256 * 1024, ge=16 * 1024, le=1_000_000)
    # the routine lane's batching under load (shared/relay.py RelayConfig.linger_s): a
    # routine event waits at most this long behind the batch before it. 50 ms took the
    # intake relay from 3.0 to 1.3 s of CPU in 40 s at 25% of the mixed load, but events
    # 20 ms apart then waited ~30 ms each (the bench's POST -> event goal is < 30 ms);
    # 20 ms keeps that goal and still batches (docs/performance.md). The safety lane
    # never waits.
    outbox_linger_s: float = Field(default=0.02, ge=0, le=1)
    # The relay process serves /metrics on this port when set (the API serves its own).
    relay_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # The faust worker process serves /metrics on this port when set.
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    readiness_timeout_s: float = Field(default=2.0, gt=0)
    # Waiting for a dependency (the database or broker coming up, a lost connection):
    # capped exponential backoff with jitter (shared/retry.py).
    retry_initial_s: float = Field(default=0.5, gt=0)
    retry_max_s: float = Field(default=5.0, gt=0)
    retry_jitter: float = Field(default=0.2, ge=0, lt=1)
    # The cap where a process must be back at work within seconds of the dependency's
    # return (a worker rejoining its group, the safety lane's consumer).
    reconnect_max_s: float = Field(default=1.0, gt=0)
    # Consumers retry transient failures (database or broker away) with capped backoff.
    consumer_retry_initial_s: float = Field(default=0.2, gt=0)
    consumer_retry_max_s: float = Field(default=10.0, gt=0)
    # A worker that dies without leaving its group (kill -9, a lost machine) holds its
    # partitions this long before the group hands them on (faust's default was 60 s);
    # heartbeats go every 3 s. The broker refuses less than 6 s.
    consumer_session_timeout_s: float = Field(default=15.0, ge=6, le=300)
    # A partition's lane applies at most this many of its queued events in one
    # transaction, for the routes that allow it (shared/processing.py Route.batch); only
    # what is already queued: an idle partition's event goes alone and at once. The
    # batch holds its patients' rows until it commits, and the alerts safety lane may
    # wait for one of them: keep it small (1: every event alone).
    consumer_batch_max: int = Field(default=16, ge=1, le=500)
    # The workers' fetches (faust's consumer): the broker answers once it holds this many
    # bytes for them or this many ms have passed. aiokafka's defaults (1 byte, at once)
    # made a fetch round trip per trickle of events, each one decoding every assigned
    # partition: a third of a worker's CPU at a quarter of the target load
    # (docs/performance.md). The alerts safety lane fetches on its own, at once.
    consumer_fetch_min_bytes: int = Field(default=65536, ge=1)
    consumer_fetch_max_wait_ms: int = Field(default=50, ge=0, le=1000)
    # Where a consumer group with no committed offsets starts (tests use "latest").
    consumer_offset_reset: Literal["earliest", "latest"] = "earliest"

    # A service whose pool opens whole at start when DB_POOL_MIN is not set (its minimum
    # is then DB_POOL_MAX); otherwise the minimum defaults to 2, never above the maximum.
    pool_opened_whole: ClassVar[bool] = False

    @model_validator(mode="after")
    def _pool_sizes(self) -> Self:
        if "db_pool_min" not in self.model_fields_set:
            whole = self.pool_opened_whole
            least = self.db_pool_max if whole else min(self.db_pool_min, self.db_pool_max)
            object.__setattr__(self, "db_pool_min", least)  # settings are frozen once built
        elif self.db_pool_min > self.db_pool_max:
            raise ValueError(
                f"DB_POOL_MIN ({self.db_pool_min}) is above DB_POOL_MAX ({self.db_pool_max})"
            )
        return self

    def backoff(self, *, initial_s: float | None = None, max_s: float | None = None) -> Backoff:
        """A fresh backoff with this configuration's numbers (shared/retry.py)."""
        first = self.retry_initial_s if initial_s is None else initial_s
        cap = self.retry_max_s if max_s is None else max_s
        return Backoff(min(first, cap), cap, self.retry_jitter)

    def topic(self, name: str) -> str:
        """The broker's name of a topic."""
        return f"{self.kafka_topic_prefix}{name}"

    @property
    def kafka_servers(self) -> list[str]:
        return [s.strip() for s in self.kafka_bootstrap_servers.split(",") if s.strip()]
