"""Transactional outbox and its relay.

Delivery guarantee: at least once, in order per patient. ``enqueue`` writes the
event in the caller's transaction, so an event exists if and only if the state
change it announces committed. The relay publishes unpublished rows in id order
with an idempotent acks=all producer and marks them published only after the
broker acknowledged them; a crash in between re-publishes (same event id), which
consumers drop through their inbox. One relay per service publishes at a time
(a PostgreSQL advisory lock elects it), which keeps the per-patient order even
when several instances run; the others wait as hot standbys.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge

from shared.db import Conn, connect_kwargs
from shared.events import CONTENT_TYPE, CloudEvent
from shared.logging import get_logger

log = get_logger(__name__)

PUBLISHED = Counter("outbox_published_total", "Events published by the outbox relay", ["topic"])
BACKLOG = Gauge("outbox_backlog", "Outbox events not yet published", ["schema"])
BACKLOG_AGE = Gauge(
    "outbox_oldest_unpublished_age_seconds", "Age of the oldest unpublished event", ["schema"]
)
RELAY_LEADER = Gauge("outbox_relay_leader", "1 when this relay holds the publishing lock")


def row(event: CloudEvent) -> tuple[str, str, str, bytes]:
    """The outbox columns (event_id, topic, key, value) of an event, for a repository that
    writes its state change and the event in one statement."""
    return (event.id, event.type, event.key, event.to_bytes())


async def enqueue(conn: Conn, event: CloudEvent) -> None:
    """Add an event to the outbox; call inside the transaction of the state change."""
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, key, value) VALUES ($1, $2, $3, $4)", *row(event)
    )


async def measure_backlog(pool: asyncpg.Pool, schema: str) -> None:
    """Refresh the backlog gauges (called when /metrics is scraped)."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, "
            "coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0) AS age "
            "FROM outbox WHERE published_at IS NULL"
        )
    assert row is not None
    BACKLOG.labels(schema).set(row["n"])
    BACKLOG_AGE.labels(schema).set(float(row["age"]))


def _leader_key(schema: str) -> int:
    return int.from_bytes(
        hashlib.sha256(f"relay:{schema}".encode()).digest()[:8], "big", signed=True
    )


@dataclass
class RelayConfig:
    dsn: str
    schema: str
    batch_size: int = 200
    poll_interval_s: float = 5.0
    retention_days: int = 7


class OutboxRelay:
    """Publishes a service's outbox to Kafka (see the module docstring for guarantees)."""

    def __init__(self, config: RelayConfig, producer: AIOKafkaProducer) -> None:
        self.config = config
        self.producer = producer
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._last_cleanup = 0.0

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Run until ``stop``; survives database and broker outages by retrying."""
        delay = 0.5
        while not self._stopping.is_set():
            try:
                await self._run_once()
                delay = 0.5
            except (
                OSError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                KafkaError,
                TimeoutError,
            ) as exc:
                log.warning("outbox_relay_retry", error=repr(exc), retry_in_s=delay)
                RELAY_LEADER.set(0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                delay = min(delay * 2, 10.0)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def _run_once(self) -> None:
        options = connect_kwargs(self.config.dsn, self.config.schema)
        options["server_settings"]["application_name"] = f"relay-{self.config.schema}"
        conn = await asyncpg.connect(self.config.dsn, **options)
        try:
            # Block (politely) until we are the one relay of this service that publishes.
            while not await conn.fetchval(
                "SELECT pg_try_advisory_lock($1)", _leader_key(self.config.schema)
            ):
                if self._stopping.is_set():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.config.poll_interval_s)
            RELAY_LEADER.set(1)
            log.info("outbox_relay_leader", schema=self.config.schema)
            await conn.add_listener(f"{self.config.schema}_outbox", self._notified)
            while not self._stopping.is_set():
                self._wake.clear()
                published = await self._drain(conn)
                if published >= self.config.batch_size:
                    continue  # more is waiting
                if published == 0:
                    await self._cleanup(conn)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.poll_interval_s)
        finally:
            RELAY_LEADER.set(0)
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    async def _drain(self, conn: Conn) -> int:
        rows = await conn.fetch(
            "SELECT id, event_id, topic, key, value FROM outbox WHERE published_at IS NULL "
            "ORDER BY id LIMIT $1",
            self.config.batch_size,
        )
        if not rows:
            return 0
        # Send the whole batch, then wait: aiokafka keeps one in-flight batch per
        # partition with idempotence on, so the order per key is the id order.
        futures = [
            await self.producer.send(
                r["topic"],
                value=bytes(r["value"]),
                key=r["key"].encode(),
                headers=[
                    ("content-type", CONTENT_TYPE.encode()),
                    ("ce_id", str(r["event_id"]).encode()),
                ],
            )
            for r in rows
        ]
        await asyncio.gather(*futures)
        await conn.execute(
            "UPDATE outbox SET published_at = clock_timestamp() WHERE id = ANY($1::bigint[])",
            [r["id"] for r in rows],
        )
        for r in rows:
            PUBLISHED.labels(r["topic"]).inc()
        return len(rows)

    async def _cleanup(self, conn: Conn) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_cleanup < 3600:
            return
        self._last_cleanup = now
        await conn.execute(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(days => $1)",
            self.config.retention_days,
        )
