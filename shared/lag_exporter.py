"""``python -m shared.lag_exporter``: consumer lag as the broker sees it, on its own port.

The workers' own ``consumer_lag`` gauge (shared/consumer.py) is set after each message
a worker processes, so a stalled or absent worker reports its last value (0) forever.
This process is none of the consumers: every ``LAG_EXPORTER_INTERVAL_S`` it asks the
broker, for every project consumer group (``SCHEDULING_CONSUMER_GROUP``,
``ALERTS_CONSUMER_GROUP``, and any in ``LAG_EXPORTER_EXTRA_GROUPS``), the group's state
and members, its committed offsets, every partition's start and end offsets, and reads
the first unconsumed record of each lagging partition with a short-lived consumer of no
group (assigned, never committing) for its Kafka timestamp: the time the broker got it
(the relay's publish time), not the CloudEvent ``time`` of the business fact (how long
the outbox held it is ``outbox_oldest_unpublished_age_seconds``); that also reads a
record that is no CloudEvent. shared/lag.py computes the rows.

Served on ``LAG_EXPORTER_METRICS_PORT`` (9140): ``GET /metrics``, and ``GET /healthz``
and ``/readyz``, 200 while the last collection succeeded less than
``LAG_EXPORTER_STALE_AFTER_S`` ago, else 503 (the broker cannot be reached). A failed
collection clears the per-partition series (no stale lag is served) and sets
``kafka_consumergroup_exporter_up`` to 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
import uvloop
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest
from pydantic import Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared import events, lag
from shared.lag import TP, GroupInfo, GroupLag
from shared.lag_broker import describe_group, record_timestamps
from shared.logging import configure_logging, get_logger
from shared.settings import CommonSettings

log = get_logger(__name__)

LAG = Gauge(
    "kafka_consumergroup_lag",
    "Records on the partition the group has not consumed (log-end minus committed offset; "
    "from CONSUMER_OFFSET_RESET without a commit), as the broker sees it",
    ["group", "topic", "partition"],
)
CURRENT_OFFSET = Gauge(
    "kafka_consumergroup_current_offset",
    "The group's committed offset on the partition (absent: never committed)",
    ["group", "topic", "partition"],
)
LOG_END = Gauge(
    "kafka_topic_partition_current_offset",
    "The partition's log-end offset (the next offset the broker writes)",
    ["topic", "partition"],
)
OLDEST_AGE = Gauge(
    "kafka_consumergroup_oldest_unconsumed_age_seconds",
    "Age (Kafka timestamp) of the first record the group has not consumed; 0 with no lag",
    ["group", "topic", "partition"],
)
MEMBERS = Gauge("kafka_consumergroup_members", "Members of the consumer group", ["group"])
STATE = Gauge(
    "kafka_consumergroup_state",
    "1 for the group's current state (Stable, Empty, PreparingRebalance, Dead...)",
    ["group", "state"],
)
UP = Gauge(
    "kafka_consumergroup_exporter_up", "1 when the last collection from the broker succeeded"
)
LAST_SUCCESS = Gauge(
    "kafka_consumergroup_exporter_last_success_timestamp_seconds",
    "When the last collection from the broker succeeded (seconds since the epoch)",
)
COLLECTIONS = Counter(
    "kafka_consumergroup_exporter_collections_total", "Collections from the broker", ["outcome"]
)
PER_GROUP = (LAG, CURRENT_OFFSET, OLDEST_AGE)

# What each worker's consumer group subscribes to (services/*/app.py, create_processor's
# reactions; tests/unit/shared/test_lag.py keeps the two in step). The exporter also
# counts any topic a group committed on or its members subscribe to, so a topic left
# out here is still seen once the group has touched it.
SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "scheduling": (
        events.IntakeScreened.topic,
        events.IntakeReviewed.topic,
        events.CheckinFlagged.topic,
        events.PatientDischarged.topic,
        events.AlertRaised.topic,
        events.AlertChanged.topic,
    ),
    "alerts": (
        events.IntakeScreened.topic,
        events.CheckinRecorded.topic,
        events.AppointmentChanged.topic,
        events.DoseDeferred.topic,
        events.PatientDischarged.topic,
    ),
    # the safety lane (services/alerts/safety.py): its own group, "<alerts group>-safety"
    # and the pipeline heartbeat through it (services/alerts/watchdog.py)
    "alerts-safety": (events.SafetySignal.topic, events.PipelineHeartbeat.topic),
}


class LagSettings(CommonSettings):
    # The groups to watch: the same variables the workers read (services/*/settings.py).
    scheduling_consumer_group: str = "scheduling"
    alerts_consumer_group: str = "alerts"
    # More groups to watch, comma-separated: their topics are those they committed on or
    # their members subscribe to (e.g. a new lane's group before SUBSCRIPTIONS knows it).
    lag_exporter_extra_groups: str = ""
    lag_exporter_metrics_port: int = Field(default=9140, ge=1, le=65535)
    lag_exporter_interval_s: float = Field(default=5.0, gt=0)
    # one collection's deadline; the broker is unreachable past it
    lag_exporter_timeout_s: float = Field(default=10.0, gt=0)
    # how long the record read for the oldest age may take, within a collection
    lag_exporter_read_timeout_s: float = Field(default=2.0, gt=0)
    # /healthz answers 503 when the last success is older than this (default 3 intervals)
    lag_exporter_stale_after_s: float | None = Field(default=None, gt=0)

    @property
    def stale_after_s(self) -> float:
        return self.lag_exporter_stale_after_s or max(3 * self.lag_exporter_interval_s, 15.0)

    def groups(self) -> dict[str, list[str]]:
        """Each watched group and the broker names of the topics it subscribes to."""
        out: dict[str, list[str]] = {
            self.scheduling_consumer_group: [self.topic(t) for t in SUBSCRIPTIONS["scheduling"]],
            self.alerts_consumer_group: [self.topic(t) for t in SUBSCRIPTIONS["alerts"]],
            f"{self.alerts_consumer_group}-safety": [
                self.topic(t) for t in SUBSCRIPTIONS["alerts-safety"]
            ],
        }
        for group in self.lag_exporter_extra_groups.split(","):
            if group.strip():
                out.setdefault(group.strip(), [])
        return out


@dataclass
class Exporter:
    """The broker clients of one exporter process and the last collection's outcome."""

    settings: LagSettings
    groups: Mapping[str, Sequence[str]] = field(default_factory=dict)
    last_success: float | None = None  # monotonic
    last_error: str | None = None
    _admin: AIOKafkaAdminClient | None = None
    _offsets: AIOKafkaConsumer | None = None

    def __post_init__(self) -> None:
        if not self.groups:
            self.groups = self.settings.groups()

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        servers = self.settings.kafka_servers
        timeout_ms = int(self.settings.lag_exporter_timeout_s * 1000)
        if self._admin is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=servers,
                client_id="interval-lag-exporter",
                request_timeout_ms=timeout_ms,
            )
            await admin.start()
            self._admin = admin
        if self._offsets is None:
            offsets = AIOKafkaConsumer(
                bootstrap_servers=servers,
                group_id=None,
                enable_auto_commit=False,
                client_id="interval-lag-exporter",
                request_timeout_ms=timeout_ms,
            )
            await offsets.start()
            self._offsets = offsets
        return self._admin, self._offsets

    async def close(self) -> None:
        admin, offsets, self._admin, self._offsets = self._admin, self._offsets, None, None
        with contextlib.suppress(Exception):
            if admin is not None:
                await admin.close()
        with contextlib.suppress(Exception):
            if offsets is not None:
                await offsets.stop()

    async def collect(self) -> list[GroupLag]:
        """Ask the broker and compute the rows (raises when the broker cannot answer)."""
        admin, offsets = await self._clients()
        on_broker = {g for g, *_ in await admin.list_consumer_groups()}
        infos: list[GroupInfo] = []
        topics: dict[str, set[str]] = {g: set(ts) for g, ts in self.groups.items()}
        committed: dict[str, dict[TP, int]] = {}
        for group in self.groups:
            if group not in on_broker:  # never joined, or its offsets expired
                infos.append(GroupInfo(group, "Dead", 0))
                continue
            info, subscribed = await describe_group(admin, group)
            infos.append(info)
            topics[group] |= subscribed
            done = await admin.list_consumer_group_offsets(group)
            committed[group] = {
                (tp.topic, tp.partition): meta.offset
                for tp, meta in done.items()
                if meta.offset >= 0
            }
            topics[group] |= {t for t, _ in committed[group]}
        every = sorted({t for ts in topics.values() for t in ts})
        described = await admin.describe_topics(every) if every else []
        partitions_of = {
            d["topic"]: [p["partition"] for p in d["partitions"]]
            for d in described
            if not d["error_code"]
        }
        partitions = {
            g: [(t, p) for t in sorted(ts) for p in partitions_of.get(t, [])]
            for g, ts in topics.items()
        }
        tps = sorted({TopicPartition(*tp) for tps in partitions.values() for tp in tps})
        log_start: dict[TP, int] = {}
        log_end: dict[TP, int] = {}
        if tps:
            log_start = {
                (tp.topic, tp.partition): o
                for tp, o in (await offsets.beginning_offsets(tps)).items()
            }
            log_end = {
                (tp.topic, tp.partition): o for tp, o in (await offsets.end_offsets(tps)).items()
            }
        reset = self.settings.consumer_offset_reset
        wanted = lag.to_read(partitions, committed, log_start, log_end, reset)
        stamps = await record_timestamps(
            self.settings.kafka_servers, wanted, self.settings.lag_exporter_read_timeout_s
        )
        return lag.lag_rows(
            infos, partitions, committed, log_start, log_end, stamps, time.time(), reset
        )

    async def collect_and_export(self) -> list[GroupLag] | None:
        """One collection, its gauges set; on failure the per-partition series are cleared,
        the clients dropped (rebuilt next time) and None returned."""
        try:
            rows = await asyncio.wait_for(self.collect(), self.settings.lag_exporter_timeout_s)
        except Exception as exc:  # the broker is away, or answered an error
            COLLECTIONS.labels("error").inc()
            UP.set(0)
            for gauge in (*PER_GROUP, LOG_END, MEMBERS, STATE):
                gauge.clear()
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("lag_collection_failed", error=self.last_error)
            await self.close()
            return None
        export(rows)
        COLLECTIONS.labels("ok").inc()
        UP.set(1)
        LAST_SUCCESS.set(time.time())
        self.last_success = time.monotonic()
        self.last_error = None
        return rows

    def healthy(self) -> tuple[bool, dict[str, Any]]:
        if self.last_success is None:
            return False, {"status": "unavailable", "error": self.last_error or "starting"}
        age = time.monotonic() - self.last_success
        if age > self.settings.stale_after_s or self.last_error:
            return False, {
                "status": "unavailable",
                "error": self.last_error or "no collection lately",
                "last_success_age_s": round(age, 1),
            }
        return True, {"status": "ok", "last_success_age_s": round(age, 1)}

    async def run(self) -> None:
        interval = self.settings.lag_exporter_interval_s
        try:
            while True:
                started = time.monotonic()
                await self.collect_and_export()
                await asyncio.sleep(max(interval - (time.monotonic() - started), 0.1))
        finally:
            await self.close()


def export(rows: Sequence[GroupLag]) -> None:
    """Replace every series with these rows (synchronously: a scrape sees all or none)."""
    for gauge in (*PER_GROUP, LOG_END, MEMBERS, STATE):
        gauge.clear()
    for g in rows:
        MEMBERS.labels(g.info.group).set(g.info.members)
        STATE.labels(g.info.group, g.info.state).set(1)
        for p in g.partitions:
            labels = (p.group, p.topic, str(p.partition))
            LAG.labels(*labels).set(p.lag)
            LOG_END.labels(p.topic, str(p.partition)).set(p.log_end)
            if p.committed is not None:
                CURRENT_OFFSET.labels(*labels).set(p.committed)
            if p.oldest_age_s is not None:
                OLDEST_AGE.labels(*labels).set(p.oldest_age_s)


def create_app(exporter: Exporter) -> Starlette:
    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def health(_: Request) -> Response:
        ok, body = exporter.healthy()
        return JSONResponse(body, status_code=200 if ok else 503)

    return Starlette(
        routes=[
            Route("/metrics", metrics),
            Route("/healthz", health),
            Route("/readyz", health),
        ]
    )


async def serve(settings: LagSettings) -> None:
    """The collection loop and the HTTP endpoints, until SIGTERM/SIGINT."""
    exporter = Exporter(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(exporter),
            host=settings.http_host,
            port=settings.lag_exporter_metrics_port,
            log_config=None,
            access_log=False,
            timeout_keep_alive=75,
        )
    )
    task = asyncio.create_task(exporter.run())
    log.info(
        "lag_exporter_started",
        groups=sorted(exporter.groups),
        port=settings.lag_exporter_metrics_port,
    )
    try:
        await server.serve()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def main() -> int:
    settings = LagSettings()
    configure_logging("lag-exporter", settings.log_level, settings.log_json)
    uvloop.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
