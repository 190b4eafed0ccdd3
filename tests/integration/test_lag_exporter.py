"""Consumer lag from the broker (shared/lag_exporter.py) against the real broker: a group
on fresh topics commits some offsets, more is produced, and the exporter's lag, members
and oldest unconsumed age are what ``kafka-consumer-groups --describe`` shows, with a
member and after it left (the stalled worker: members 0, the lag still growing); the
process serves them on /metrics and answers /healthz 503 without a broker."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from shared.lag import GroupLag, PartitionLag
from shared.lag_exporter import Exporter, LagSettings
from tests.support.eventually import eventually
from tests.support.stack import (
    ARTIFACTS,
    KAFKA,
    PREFIX,
    ROOT,
    ServiceProcess,
    free_port,
    topic,
    wait_ready,
)

pytestmark = pytest.mark.integration

BASE_MS = int(time.time() * 1000) - 600_000  # record i of a partition: BASE_MS + i s


@dataclass
class Fixture:
    topic: str
    group: str
    absent: str  # a group that never existed


@pytest.fixture
async def fresh() -> AsyncIterator[Fixture]:
    run = uuid.uuid4().hex[:8]
    name = topic(f"lag-{run}")
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    await admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    try:
        yield Fixture(name, f"{PREFIX}lag-{run}", f"{PREFIX}lag-absent-{run}")
    finally:
        if java():  # aiokafka has no DeleteGroups; Kafka's tool has
            with contextlib.suppress(Exception):
                consumer_groups("--delete", "--group", f"{PREFIX}lag-{run}")
        with contextlib.suppress(Exception):
            await admin.delete_topics([name])
        await admin.close()


async def produce(name: str, partition: int, first: int, count: int) -> None:
    """``count`` records on a partition, offsets ``first``.. with timestamps BASE_MS + i s."""
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all")
    await producer.start()
    try:
        for i in range(first, first + count):
            await producer.send_and_wait(
                name, b"{}", partition=partition, timestamp_ms=BASE_MS + i * 1000
            )
    finally:
        await producer.stop()


def java() -> str | None:
    found = sorted(glob.glob("/usr/lib/jvm/java-17-openjdk-*/bin/java"))
    return found[0] if found else shutil.which("java")


def consumer_groups(*args: str) -> list[list[str]]:
    """``kafka-consumer-groups`` (Kafka's own tool, from the broker's jars), rows split."""
    jvm = java()
    if jvm is None:
        pytest.skip("no JDK for kafka-consumer-groups")
    done = subprocess.run(
        [
            jvm,
            f"-Dlog4j.configuration=file:{ROOT}/deploy/kafka/tools-log4j.properties",
            "-cp",
            f"{ROOT}/deploy/kafka/libs/*",
            "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
            "--bootstrap-server",
            KAFKA,
            *args,
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return [line.split() for line in done.stdout.decode().splitlines() if line.strip()]


def describe(group: str) -> tuple[dict[int, tuple[str, int, str]], str, int]:
    """What the tool shows: partition -> (current offset, log end, lag), state, members."""
    parts = {
        int(r[2]): (r[3], int(r[4]), r[5])
        for r in consumer_groups("--describe", "--group", group)
        if r[0] == group
    }
    [state_row] = [
        r for r in consumer_groups("--describe", "--group", group, "--state") if r[0] == group
    ]
    return parts, state_row[-2], int(state_row[-1])


def of(rows: list[GroupLag], group: str) -> tuple[GroupLag, dict[int, PartitionLag]]:
    [g] = [g for g in rows if g.info.group == group]
    return g, {p.partition: p for p in g.partitions}


def expected_age(offset: int, at: float | None = None) -> float:
    """The age of the record at ``offset`` as of ``at`` (the collection; default now):
    Kafka's own tool may take seconds between a collection and the assertion."""
    return (time.time() if at is None else at) - (BASE_MS + offset * 1000) / 1000


async def test_lag_members_and_age_match_kafka_consumer_groups(fresh: Fixture) -> None:
    name, group = fresh.topic, fresh.group
    await produce(name, 0, 0, 10)
    await produce(name, 1, 0, 4)
    await produce(name, 2, 0, 5)  # never committed on
    tps = [TopicPartition(name, p) for p in range(3)]

    member = AIOKafkaConsumer(
        name,
        bootstrap_servers=KAFKA,
        group_id=group,
        enable_auto_commit=False,
        session_timeout_ms=30000,
    )
    await member.start()
    exporter = Exporter(
        LagSettings(kafka_bootstrap_servers=KAFKA),
        groups={group: [name], fresh.absent: [name]},
    )
    try:
        await eventually(
            lambda: set(member.assignment()) == set(tps), what="the member's partitions"
        )
        await member.commit({tps[0]: 6, tps[1]: 4})
        await produce(name, 0, 10, 3)

        rows = await exporter.collect_and_export()
        collected = time.time()
        assert rows is not None, exporter.last_error
        g, p = of(rows, group)
        assert (g.info.state, g.info.members) == ("Stable", 1)
        assert {i: (x.committed, x.log_end, x.lag) for i, x in p.items()} == {
            0: (6, 13, 7),
            1: (4, 4, 0),
            2: (None, 5, 5),  # no commit: from the log start (CONSUMER_OFFSET_RESET=earliest)
        }
        assert p[0].oldest_age_s == pytest.approx(expected_age(6, collected), abs=5)
        assert p[1].oldest_age_s == 0.0
        assert p[2].oldest_age_s == pytest.approx(expected_age(0, collected), abs=5)

        # in a thread: the member keeps heartbeating while the tool's JVM starts (seconds
        # on a loaded machine; a blocked loop lost the member its session)
        cli, state, members = await asyncio.to_thread(describe, group)
        assert (state, members) == ("Stable", 1)
        assert cli == {0: ("6", 13, "7"), 1: ("4", 4, "0"), 2: ("-", 5, "-")}

        # a group never seen: Dead, no member, everything on the log ahead of it
        absent, ap = of(rows, fresh.absent)
        assert (absent.info.state, absent.info.members) == ("Dead", 0)
        assert {i: x.lag for i, x in ap.items()} == {0: 13, 1: 4, 2: 5}
        # two groups at different offsets of one partition: each its own record's age
        assert ap[0].oldest_age_s == pytest.approx(expected_age(0, collected), abs=5)
        assert ap[1].oldest_age_s == pytest.approx(expected_age(0, collected), abs=5)
    except BaseException:
        await exporter.close()
        raise
    finally:
        await member.stop()  # leaves the group: the stalled worker from here on

    # the worker is gone, its offsets stay, events keep coming
    await produce(name, 0, 13, 2)
    await produce(name, 1, 4, 3)
    try:

        async def collect() -> tuple[list[GroupLag], float]:
            rows = await exporter.collect_and_export()
            assert rows is not None, exporter.last_error
            return rows, time.time()

        rows, collected = await eventually(
            collect, lambda got: of(got[0], group)[0].info.members == 0, what="the group empty"
        )
        g, p = of(rows, group)
        assert (g.info.state, g.info.members) == ("Empty", 0)
        assert {i: x.lag for i, x in p.items()} == {0: 9, 1: 3, 2: 5}
        assert g.total_lag == 17
        assert p[1].oldest_age_s == pytest.approx(expected_age(4, collected), abs=5)

        cli, state, members = await asyncio.to_thread(describe, group)
        assert (state, members) == ("Empty", 0)
        # without a member the tool lists only the partitions with a commit
        assert cli == {0: ("6", 15, "9"), 1: ("4", 7, "3")}
    finally:
        await exporter.close()


def promtool_check(text: str) -> None:
    """``promtool check metrics`` accepts the exposition (when Debian's prometheus is there)."""
    promtool = shutil.which("promtool")
    if promtool:
        done = subprocess.run(
            [promtool, "check", "metrics"], input=text.encode(), capture_output=True, check=False
        )
        assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


async def test_the_process_serves_broker_lag_and_health(fresh: Fixture) -> None:
    """``python -m shared.lag_exporter`` for a stalled group: members 0 and its lag on
    /metrics, /healthz 200; pointed at no broker, /healthz 503."""
    name, group = fresh.topic, fresh.group
    await produce(name, 0, 0, 8)
    committer = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=group, enable_auto_commit=False)
    await committer.start()
    tp = TopicPartition(name, 0)
    committer.assign([tp])
    await committer.commit({tp: 3})
    await committer.stop()

    logs = ARTIFACTS / "logs"
    run = uuid.uuid4().hex[:6]
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "KAFKA_TOPIC_PREFIX": PREFIX,
        "SCHEDULING_CONSUMER_GROUP": group,
        "ALERTS_CONSUMER_GROUP": fresh.absent,
        "LAG_EXPORTER_INTERVAL_S": "0.5",
    }
    good = ServiceProcess(
        "lag-exporter", ["shared.lag_exporter"], env, logs / f"lag-exporter-{run}.log"
    ).with_metrics("LAG_EXPORTER_METRICS_PORT")
    dead_broker = f"127.0.0.1:{free_port()}"
    bad = ServiceProcess(
        "lag-exporter-nobroker",
        ["shared.lag_exporter"],
        {**env, "KAFKA_BOOTSTRAP_SERVERS": dead_broker, "LAG_EXPORTER_TIMEOUT_S": "2"},
        logs / f"lag-exporter-nobroker-{run}.log",
    ).with_metrics("LAG_EXPORTER_METRICS_PORT")
    good.start()
    bad.start()
    try:
        url = f"http://127.0.0.1:{good.metrics_port}"
        await wait_ready(url, good)
        async with httpx.AsyncClient(timeout=10) as client:
            health = await client.get(f"{url}/healthz")
            assert health.status_code == 200, health.text
            text = (await client.get(f"{url}/metrics")).text
            labels = (("group", group), ("partition", "0"), ("topic", name))
            assert samples(text, "kafka_consumergroup_lag")[labels] == 5
            assert samples(text, "kafka_consumergroup_current_offset")[labels] == 3
            age = samples(text, "kafka_consumergroup_oldest_unconsumed_age_seconds")[labels]
            assert age == pytest.approx(expected_age(3), abs=10)
            assert samples(text, "kafka_consumergroup_members") == {
                (("group", group),): 0,
                (("group", fresh.absent),): 0,
                # the safety lane's own group, "<alerts group>-safety" (never ran here)
                (("group", f"{fresh.absent}-safety"),): 0,
            }
            assert (
                samples(text, "kafka_consumergroup_state")[(("group", group), ("state", "Empty"))]
                == 1
            )
            assert samples(text, "kafka_consumergroup_exporter_up") == {(): 1}
            promtool_check(text)

            bad_url = f"http://127.0.0.1:{bad.metrics_port}"

            async def unhealthy() -> bool:
                assert bad.proc is not None
                assert bad.proc.poll() is None, bad.logs()[-3000:]
                with contextlib.suppress(httpx.HTTPError):
                    r = await client.get(f"{bad_url}/healthz")
                    return r.status_code == 503 and r.json()["error"] != "starting"
                return False

            await eventually(unhealthy, what="a 503 from the exporter without a broker")
            text = (await client.get(f"{bad_url}/metrics")).text
            assert samples(text, "kafka_consumergroup_exporter_up") == {(): 0}
            assert samples(text, "kafka_consumergroup_lag") == {}
    finally:
        good.kill(signal.SIGTERM)
        bad.kill(signal.SIGTERM)
    assert good.proc is not None
    assert good.proc.returncode is not None
