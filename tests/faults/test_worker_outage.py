"""A worker and a safety lane started while the broker is down consume soon after it returns.

Stops the shared local broker for a few seconds (as test_z_broker_outage.py does), so
it runs late in the session (file name). TEST_BROKER_CTL=<script taking stop|start>
runs it against another broker of one's own instead (KAFKA_BOOTSTRAP_SERVERS there).
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from shared import db, events
from shared.events import ALL_TOPICS, dlq_topic
from shared.kafka import ensure_topics
from tests.support import probe_worker, servers
from tests.support.eventually import eventually
from tests.support.probes import (
    applied_in_order,
    assigned_gauge,
    metered_probe,
    readyz,
    send,
)
from tests.support.stack import (
    ARTIFACTS,
    KAFKA,
    ServiceProcess,
    delete_topics,
    lane_assigned,
    service_env,
    stop_all,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]


broker = servers.broker


async def test_a_worker_and_a_safety_lane_started_during_an_outage_consume_soon_after_it(
    database: str,
) -> None:
    """One outage of the broker (each stop and start of it costs tens of seconds, so the
    two checks share it):

    - a worker started while the broker is down stays up, answers /readyz 503 "waiting
      for the broker", and consumes within 10 s of the broker's return;
    - a safety lane restarted while the broker is away (its predecessor could not say
      goodbye) raises a signal's alert within 5 s of the broker's return: lanes are
      assigned every partition and never join a group (services/alerts/safety.py), so
      there is no predecessor's session to wait out and no rebalance."""
    if not servers.broker_is_ours():
        pytest.skip("the broker is external (KAFKA_BOOTSTRAP_SERVERS): not ours to stop")
    await db.migrate(database, probe_worker.SCHEMA, db.migration_files(probe_worker.MIGRATIONS))
    run = uuid.uuid4().hex[:6]
    topic = f"test.probe.outage.{run}"
    prefix = f"lane-{run}."
    topics = [topic, dlq_topic(topic), *(prefix + t for t in ALL_TOPICS)]
    await ensure_topics([KAFKA], [topic, dlq_topic(topic)], partitions=3)
    await ensure_topics([KAFKA], [prefix + t for t in ALL_TOPICS])
    worker = metered_probe(database, topic, f"probe-{run}")
    env = service_env(database, ALERTS_CONSUMER_GROUP=f"lane-{run}")
    env.update(KAFKA_TOPIC_PREFIX=prefix)

    def lane(n: int) -> ServiceProcess:
        log = ARTIFACTS / "logs" / f"alerts-safety-lane-{run}-{n}.log"
        return ServiceProcess(
            "alerts-safety", ["services.alerts", "safety"], env, log
        ).with_metrics("ALERTS_SAFETY_METRICS_PORT")

    first, second = lane(1), lane(2)
    first.start()
    try:
        await lane_assigned([first])
        await broker("stop")
        try:
            first.kill(signal.SIGTERM)  # stopped while the broker is away
            second.start()
            worker.start()
            # it migrates first ("waiting for the database", then "starting"): on a
            # slow machine /readyz answers those before it reaches the broker check
            seen: list[tuple[int, dict[str, object]]] = []

            async def observe() -> tuple[int, dict[str, object]]:
                seen.append(await readyz(worker))
                return seen[-1]

            await eventually(
                observe,
                lambda s: s[1].get("reason") == "waiting for the broker",
                timeout=30,
                what="readyz 'waiting for the broker' without a broker",
            )
            assert all(code in (0, 503) for code, _ in seen), seen  # never ready meanwhile
            await asyncio.sleep(3)  # it has been up a while with no broker; still running
            assert worker.proc is not None
            assert worker.proc.poll() is None, worker.logs()[-3000:]
            assert (await readyz(worker))[0] == 503
        finally:
            await broker("start")
        back = time.monotonic()
        pid = f"p-lane-{run}"
        payload = events.SafetySignal(
            signal_id=f"c-{run}",
            source="checkin",
            patient_id=pid,
            site_id=f"site-{run}",
            at=datetime.now(UTC),
            reasons=("suicidal_ideation",),
        )
        event = events.new_event(payload, source="test", subject=pid, time=datetime.now(UTC))
        producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(prefix + "safety.signal", event.to_bytes(), pid.encode())
            for i in range(3):
                await send(producer, topic, f"s-{run}-{i}", partition=i)
        finally:
            await producer.stop()
        conn = await asyncpg.connect(database)
        try:
            await eventually(
                lambda: conn.fetchval(
                    "SELECT count(*) FROM alerts.alerts WHERE patient_id = $1", pid
                ),
                lambda n: n == 1,
                timeout=30,
                what="the suicide-risk alert raised by the restarted lane",
            )
        finally:
            await conn.close()
        lane_took = time.monotonic() - back
        print(f"\nthe restarted lane raised the alert {lane_took:.1f} s after the broker was back")
        assert lane_took < 5, (lane_took, second.logs()[-3000:])
        await eventually(
            lambda: applied_in_order(database, f"s-{run}-"),
            lambda rows: len(rows) == 3,
            timeout=10,
            what="the events applied within 10 s of the broker's return",
        )
        took = time.monotonic() - back
        print(f"the worker consumed {took:.1f} s after the broker was back")
        assert took < 10, took
        await eventually(
            lambda: assigned_gauge(worker), lambda n: n == 3, timeout=3, what="3 assigned"
        )
        await eventually(
            lambda: readyz(worker), lambda s: s[0] == 200, timeout=5, what="readyz 200"
        )
    finally:
        stop_all((worker, second, first))
        await delete_topics(topics)
