"""The probe worker (tests/support/probe_worker.py) as a process, and what it applied."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.events import CheckinAssessment, CheckinRecorded, CloudEvent, new_event
from shared.processing import Message
from tests.support.eventually import eventually
from tests.support.stack import (
    ARTIFACTS,
    KAFKA,
    ServiceProcess,
    service_env,
)


def checkin_event(subject: str) -> CloudEvent:
    payload = CheckinRecorded(
        checkin_id=str(uuid.uuid4()),
        patient_id=subject,
        site_id="site-a",
        submitted_at=datetime.now(UTC),
        phq9_total=4,
        phq9_item9_positive=False,
        suicidal_ideation=False,
        assessment=CheckinAssessment(
            response=True,
            remission=True,
            worsening=False,
            worsening_reasons=(),
            baseline_total=20,
            lowest_total=4,
        ),
    )
    return new_event(payload, source="tests", subject=subject, time=datetime.now(UTC))


def probe(database: str, topic: str, group: str) -> ServiceProcess:
    env = service_env(database, PROBE_TOPIC=topic, PROBE_TYPE="checkin.recorded", PROBE_GROUP=group)
    return ServiceProcess(
        "probe-worker",
        ["tests.support.probe_worker"],
        env,
        ARTIFACTS / "logs" / f"probe-{group}.log",
    )


def metered_probe(database: str, topic: str, group: str) -> ServiceProcess:
    return probe(database, topic, group).with_metrics("WORKER_METRICS_PORT")


async def send(
    producer: AIOKafkaProducer, topic: str, subject: str, partition: int | None = None
) -> None:
    e = checkin_event(subject)
    await producer.send_and_wait(topic, e.to_bytes(), key=e.key.encode(), partition=partition)


async def applied_in_order(dsn: str, prefix: str) -> list[tuple[str, float]]:
    """(subject, seconds since the epoch) of what the probe applied, in commit order."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT subject, extract(epoch FROM applied_at)::float8 AS at FROM probe.applied "
            "WHERE subject LIKE $1 ORDER BY seq",
            prefix + "%",
        )
        return [(r["subject"], r["at"]) for r in rows]
    finally:
        await conn.close()


async def readyz(worker: ServiceProcess) -> tuple[int, dict[str, Any]]:
    url = worker.metrics_url.replace("/metrics", "/readyz")
    async with httpx.AsyncClient(timeout=5) as http:
        try:
            r = await http.get(url)
        except httpx.HTTPError as exc:
            return 0, {"error": repr(exc)}
        return r.status_code, r.json()


async def assigned_gauge(worker: ServiceProcess) -> int:
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(worker.metrics_url)).text
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("consumer_assigned_partitions{")
        )
    )


async def read_topic(topic: str, expected: int, timeout: float = 30) -> list[Message]:
    """The first ``expected`` messages on ``topic`` (exactly that many within ``timeout``)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list[Message] = []

    async def more() -> int:
        batch = await consumer.getmany(timeout_ms=200)
        for msgs in batch.values():
            out.extend(
                Message(
                    m.topic,
                    m.partition,
                    m.offset,
                    m.key,
                    m.value or b"",
                    {k: bytes(v) for k, v in m.headers or []},
                )
                for m in msgs
            )
        return len(out)

    try:
        await eventually(
            more, lambda n: n >= expected, timeout=timeout, what=f"{expected} on {topic}", every=0
        )
    finally:
        await consumer.stop()
    assert len(out) == expected, f"{len(out)} of {expected} on {topic}"
    return out
