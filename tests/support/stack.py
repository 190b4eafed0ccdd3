"""Integration fixtures: the real broker and database, the services as real processes.

Each test session gets its own database (``care_test_<random>`` on the same server),
and its own Kafka topics (``KAFKA_TOPIC_PREFIX``, deleted at the end), so a running
``make up`` stack is never touched and never sees a test's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from cryptography.fernet import Fernet

from shared.events import ALL_TOPICS
from shared.kafka import ensure_topics
from tests.support.eventually import eventually
from tools.fake_twilio import FakeTwilio
from tools.mail_sink import MailSink
from tools.stack import BASE_DSN as BASE_DSN
from tools.stack import KAFKA as KAFKA
from tools.stack import ROOT as ROOT
from tools.stack import ServiceProcess as ServiceProcess
from tools.stack import Space as Space
from tools.stack import create_database as create_database
from tools.stack import create_space as create_space
from tools.stack import delete_topics as delete_topics
from tools.stack import drop_database as drop_database
from tools.stack import drop_space as drop_space
from tools.stack import free_port as free_port
from tools.stack import scratch_database as scratch_database
from tools.stack import stop_all as stop_all
from tools.stack import wait_ready as wait_ready
from tools.stack import with_database as with_database

ARTIFACTS = ROOT / "test-artifacts"
pytestmark = pytest.mark.integration

PREFIX = f"test-{uuid.uuid4().hex[:8]}."
# This session's PHI encryption key (PHI_KEYS), like its own database: never the dev key.
PHI_KEY = Fernet.generate_key().decode()


def topic(name: str) -> str:
    """This session's broker name for a topic."""
    return PREFIX + name


@pytest.fixture(scope="session")
async def database() -> AsyncIterator[str]:
    async with scratch_database("care_test") as dsn:
        yield dsn


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


@dataclass
class EventLog:
    """Every message on every project topic since the session started."""

    records: list[Record] = field(default_factory=list)

    def on(self, topic: str) -> list[Record]:
        return [r for r in self.records if r.topic == topic]

    def data(self, topic: str) -> list[dict[str, Any]]:
        """The payloads (CloudEvent ``data``) of the events on a topic, in arrival order."""
        return [json.loads(r.value)["data"] for r in self.on(topic)]

    def containing(self, needle: str, topic: str | None = None) -> list[Record]:
        raw = needle.encode()
        return [r for r in self.records if raw in r.value and (topic is None or r.topic == topic)]


async def partitions_of(admin: AIOKafkaAdminClient, names: list[str]) -> list[TopicPartition]:
    """Every partition of these topics, once the broker's metadata has them all (just
    created, or right after a broker restart, a topic may not list its partitions yet)."""

    async def described() -> list[TopicPartition]:
        topics = await admin.describe_topics(names)
        if len(topics) < len(names) or any(
            t.get("error_code") or not t["partitions"] for t in topics
        ):
            return []
        return [TopicPartition(t["topic"], p["partition"]) for t in topics for p in t["partitions"]]

    parts: list[TopicPartition] = await eventually(
        described, bool, timeout=60, what="the topics' partitions in the broker's metadata"
    )
    return parts


@contextlib.asynccontextmanager
async def topic_log(prefix: str) -> AsyncIterator[EventLog]:
    """Every message on this prefix's project topics from now on (the topics created, and
    deleted at the end): the session's ``event_log``, and the dev-clock stack's
    (tests/support/clocked.py)."""
    names = [prefix + t for t in ALL_TOPICS]
    await ensure_topics([KAFKA], names)
    log = EventLog()
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False)
    await consumer.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    parts = await partitions_of(admin, names)
    consumer.assign(parts)
    await consumer.seek_to_end(*parts)
    for tp in parts:  # resolve the positions now, before any test produces
        await consumer.position(tp)

    async def pump() -> None:
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=100)
            except Exception:  # broker restarts in the outage test; keep reading after
                await asyncio.sleep(0.2)
                continue
            for msgs in batch.values():
                log.records.extend(
                    Record(
                        m.topic.removeprefix(prefix),
                        m.partition,
                        m.offset,
                        m.key,
                        m.value or b"",
                        dict(m.headers or []),
                    )
                    for m in msgs
                )

    task = asyncio.create_task(pump())
    try:
        yield log
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await consumer.stop()
        with contextlib.suppress(Exception):  # best effort: the broker may be gone
            await admin.delete_topics(names)
        await admin.close()


@pytest.fixture(scope="session")
async def event_log() -> AsyncIterator[EventLog]:
    """Every message on this session's project topics (``topic``)."""
    async with topic_log(PREFIX) as log:
        yield log


@dataclass
class IntakeStack:
    url: str
    dsn: str
    api: ServiceProcess
    relay: ServiceProcess


def service_env(dsn: str, **extra: str) -> dict[str, str]:
    # DEV_CLOCK only where a fixture asks for it (the ``clocked`` stack), never inherited
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DEV_CLOCK")}
    env.update(
        KAFKA_TOPIC_PREFIX=PREFIX,
        DATABASE_URL=dsn,
        KAFKA_BOOTSTRAP_SERVERS=KAFKA,
        LOG_LEVEL="INFO",
        OUTBOX_POLL_INTERVAL_S="1",
        PHI_KEYS=PHI_KEY,
        **extra,
    )
    return env


# The processes of the session's stacks, which every later test relies on.
SESSION_PROCESSES: list[ServiceProcess] = []


def for_the_session(*procs: ServiceProcess) -> None:
    SESSION_PROCESSES.extend(procs)


@pytest.fixture(autouse=True)
def session_stacks_survive() -> Iterator[None]:
    """A test that leaves a process of a session stack stopped (a kill it meant to undo,
    an assertion failing before its restart) fails here, and the process is started
    again: one test's failure must not take every later test with it."""
    yield
    dead = [p for p in SESSION_PROCESSES if p.proc is not None and p.proc.poll() is not None]
    # why each one ended, from its log: the only trace a CI run prints of it
    why = {p.name: last_words(p) for p in dead}
    for p in dead:
        p.start()
    if dead:
        pytest.fail(
            "left stopped (started again): "
            + ", ".join(p.name for p in dead)
            + "".join(f"\n--- the end of {name}'s log:\n{tail}" for name, tail in why.items()),
            pytrace=False,
        )


def last_words(proc: ServiceProcess) -> str:
    """Why a process ended, from its log: its last errors (the event and the end of its
    exception) and its last lines, with its exit code."""

    def short(line: str) -> str:
        try:
            rec = json.loads(line[line.index("{") :])
        except ValueError:
            return line[-600:]
        exc = str(rec.get("exception", ""))[-600:]
        return f"{rec.get('level')} {rec.get('event')}" + (f"\n    ...{exc}" if exc else "")

    lines = proc.logs().splitlines()[-300:]
    errors = [ln for ln in lines if '"level": "error"' in ln or '"level": "critical"' in ln]
    code = proc.proc.poll() if proc.proc is not None else None
    shown = [short(ln) for ln in errors[-3:]] + ["..."] + [short(ln) for ln in lines[-3:]]
    return "\n".join([*shown, f"(exit code {code})"])


@pytest.fixture(scope="session")
async def intake(database: str, event_log: EventLog) -> AsyncIterator[IntakeStack]:
    port = free_port()
    # a pipeline heartbeat a second (services/intake/heartbeat.py), for a fast watchdog
    # and a 3 s producer timeout: test_z_broker_outage.py's outage outlasts it with sends
    # in flight, which broke the idempotent producer for good (shared/relay.py
    # _replace_producer)
    env = service_env(
        database,
        INTAKE_PORT=str(port),
        PIPELINE_HEARTBEAT_INTERVAL_S="1",
        KAFKA_REQUEST_TIMEOUT_MS="3000",
    )
    run = uuid.uuid4().hex[:6]
    logs = ARTIFACTS / "logs"
    api = ServiceProcess(
        "intake-api", ["services.intake", "api"], env, logs / f"intake-api-{run}.log"
    )
    relay = ServiceProcess(
        "intake-relay", ["services.intake", "relay"], env, logs / f"intake-relay-{run}.log"
    ).with_metrics("RELAY_METRICS_PORT")
    api.start()
    url = f"http://127.0.0.1:{port}"
    await wait_ready(url, api)
    relay.start()
    for_the_session(api, relay)
    yield IntakeStack(url=url, dsn=database, api=api, relay=relay)
    stop_all((api, relay))


@pytest.fixture
async def http(intake: IntakeStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=intake.url, timeout=10) as client:
        yield client


@pytest.fixture
async def intake_http(intake: IntakeStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=intake.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@dataclass
class SchedulingStack:
    url: str
    dsn: str
    api: ServiceProcess
    relay: ServiceProcess
    workers: list[ServiceProcess]


@pytest.fixture(scope="session")
async def scheduling(database: str, intake: IntakeStack) -> AsyncIterator[SchedulingStack]:
    port = free_port()
    run = uuid.uuid4().hex[:6]
    group = f"scheduling-test-{run}"
    env = service_env(database, SCHEDULING_PORT=str(port), SCHEDULING_CONSUMER_GROUP=group)
    logs = ARTIFACTS / "logs"
    api = ServiceProcess(
        "scheduling-api", ["services.scheduling", "api"], env, logs / f"scheduling-api-{run}.log"
    )
    relay = ServiceProcess(
        "scheduling-relay",
        ["services.scheduling", "relay"],
        env,
        logs / f"scheduling-relay-{run}.log",
    ).with_metrics("RELAY_METRICS_PORT")
    workers = [
        ServiceProcess(
            f"scheduling-worker-{i}",
            ["services.scheduling", "worker"],
            env,
            logs / f"scheduling-worker{i}-{run}.log",
        ).with_metrics("WORKER_METRICS_PORT")
        for i in (1, 2)
    ]
    api.start()
    url = f"http://127.0.0.1:{port}"
    await wait_ready(url, api)
    relay.start()
    for w in workers:
        w.start()
    for_the_session(api, relay, *workers)
    yield SchedulingStack(url=url, dsn=database, api=api, relay=relay, workers=workers)
    stop_all((api, relay, *workers))


@pytest.fixture
async def sched(scheduling: SchedulingStack) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the session's scheduling API."""
    async with httpx.AsyncClient(base_url=scheduling.url, timeout=30) as client:
        yield client


# The alerts stack runs with journey-sized timing knobs (the settings of docs/domain.md,
# "Monitoring between sessions"), so a patient's missed check-ins and an unacknowledged
# alert's escalation play out in seconds.
ALERTS_KNOBS = {
    "CHECKIN_INTERVAL_S": "3",
    "CHECKIN_GRACE_S": "1",
    "MISSED_CHECKINS_ALERT_THRESHOLD": "2",
    "ESCALATE_AFTER_S": "2",
    "CRITICAL_ACK_REPAGE_AFTER_S": "5",
    "PAGE_RETRY_INITIAL_S": "0.2",
    "PAGE_RETRY_MAX_S": "5",
    "TIMER_IDLE_POLL_S": "5",
    "PAGE_SIGNING_SECRET": "test-signing-secret",
    "PAGE_ALLOWED_HOSTS": "127.0.0.1",
    # the pipeline watchdog (services/alerts/watchdog.py): a stall named within seconds
    "PIPELINE_STALL_S": "5",
}


async def metric(proc: ServiceProcess, sample: str) -> float:
    """A sample's value on the process's /metrics, e.g. ``safety_lane_assigned_partitions``
    or ``name{label="x"}`` (0 when it is absent or the process does not answer)."""
    with contextlib.suppress(httpx.HTTPError):
        async with httpx.AsyncClient(timeout=5) as client:
            for line in (await client.get(proc.metrics_url)).text.splitlines():
                if line.startswith(sample + " "):
                    return float(line.split()[-1])
    return 0.0


async def lane_assigned(safety: list[ServiceProcess], partitions: int = 6) -> None:
    """Wait until every safety lane process consumes every partition of safety.signal
    (each is assigned them all: services/alerts/safety.py): from then on a signal is
    consumed at once."""

    async def assigned() -> list[float]:
        return [await metric(p, "safety_lane_assigned_partitions") for p in safety]

    await eventually(
        assigned,
        lambda counts: all(n == partitions for n in counts),
        timeout=60,
        what="every safety lane assigned every partition",
    )


@dataclass
class AlertsStack:
    url: str
    dsn: str
    api: ServiceProcess
    relay: ServiceProcess
    workers: list[ServiceProcess]
    timers: list[ServiceProcess]
    knobs: dict[str, str]
    # the safety lane (services/alerts/safety.py)
    safety: list[ServiceProcess] = field(default_factory=list)
    # the pipeline watchdog (services/alerts/watchdog.py)
    watchdog: ServiceProcess | None = None

    def restart(self, proc: ServiceProcess) -> None:
        proc.start()


STAFF_NUMBER = "+15550001000"  # SMS_FROM_STAFF of the stacks' alerts services


@pytest.fixture(scope="session")
async def fake_twilio() -> AsyncIterator[FakeTwilio]:
    """The local Twilio every alerts stack of the session texts through (tools/fake_twilio)."""
    async with FakeTwilio() as tw:
        yield tw


@pytest.fixture(scope="session")
async def mail_sink() -> AsyncIterator[MailSink]:
    """The local SMTP server every alerts stack of the session e-mails through."""
    async with MailSink() as sink:
        yield sink


def channels_env(tw: FakeTwilio, sink: MailSink) -> dict[str, str]:
    """An alerts service's texts and e-mail, pointed at the local stand-ins."""
    return {
        "SMS_API_URL": tw.api_url,
        "SMS_ACCOUNT_SID": tw.account_sid,
        "SMS_AUTH_TOKEN": tw.auth_token,
        "SMS_FROM_STAFF": STAFF_NUMBER,
        "SMTP_URL": sink.smtp_url,
        "MAIL_FROM": "pages@interval.test",
    }


@pytest.fixture(scope="session")
async def alerts(
    database: str, intake: IntakeStack, fake_twilio: FakeTwilio, mail_sink: MailSink
) -> AsyncIterator[AlertsStack]:
    """The alerts service: API, relay, two workers and two timers processes."""
    port = free_port()
    run = uuid.uuid4().hex[:6]
    env = service_env(
        database,
        ALERTS_PORT=str(port),
        ALERTS_CONSUMER_GROUP=f"alerts-test-{run}",
        **ALERTS_KNOBS,
        **channels_env(fake_twilio, mail_sink),
    )
    logs = ARTIFACTS / "logs"

    def proc(role: str, i: str = "") -> ServiceProcess:
        return ServiceProcess(
            f"alerts-{role}{i}",
            ["services.alerts", role],
            env,
            logs / f"alerts-{role}{i}-{run}.log",
        )

    api = proc("api")
    relay = proc("relay").with_metrics("RELAY_METRICS_PORT")
    workers = [proc("worker", i).with_metrics("WORKER_METRICS_PORT") for i in "12"]
    timers = [proc("timers", i).with_metrics("ALERTS_TIMERS_METRICS_PORT") for i in "12"]
    safety = [proc("safety", i).with_metrics("ALERTS_SAFETY_METRICS_PORT") for i in "12"]
    watchdog = proc("watchdog").with_metrics("ALERTS_WATCHDOG_METRICS_PORT")
    # the scheduling fixture's group is its own: a group never on the broker is not watched
    watchdog.env = {**watchdog.env, "SCHEDULING_CONSUMER_GROUP": f"unwatched-{run}"}
    api.start()
    url = f"http://127.0.0.1:{port}"
    await wait_ready(url, api)
    for p in (relay, *workers, *timers, *safety, watchdog):
        p.start()
    await lane_assigned(safety)
    for_the_session(api, relay, *workers, *timers, *safety, watchdog)
    yield AlertsStack(
        url=url,
        dsn=database,
        api=api,
        relay=relay,
        workers=workers,
        timers=timers,
        knobs=ALERTS_KNOBS,
        safety=safety,
        watchdog=watchdog,
    )
    stop_all((api, relay, *workers, *timers, *safety, watchdog))


@pytest.fixture
async def alerts_api(alerts: AlertsStack) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the session's alerts API."""
    async with httpx.AsyncClient(base_url=alerts.url, timeout=30) as client:
        yield client
