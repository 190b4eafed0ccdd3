"""Two instances of every service process under a steady mixed load, and the checks that
nothing accepted was lost or duplicated: the machinery of the fault runs with a whole
stack (tests/faults/test_chaos.py against the local broker, tests/faults/test_cluster.py
against a three-broker cluster).

A run: ``two_of_everything`` starts the processes in a space of their own, ``open_site``
creates a site paging a ``PageReceiver``, ``generate`` posts intakes and check-ins (some
reporting suicidal ideation) into a ``Load`` while the test's faults strike (each noted
in ``Load.windows``), and ``verify`` asserts, on the real broker and database:

- every accepted intake has exactly one decision event (one event id; the relay may
  publish it twice after a kill, and consumers drop the repeat),
- every eligible patient has exactly one induction series, and no room, therapist or
  patient is double-booked,
- every suicidal-ideation check-in has exactly one critical alert whose pages all
  arrived, each within its bound (``PAGE_BOUND_S``, or the end of a fault's recovery),
- every consumer group has caught up (lag 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.db import connect_kwargs
from tests.support.eventually import eventually
from tests.support.stack import ARTIFACTS, KAFKA, ServiceProcess, free_port, wait_ready
from tools.factories import checkin_body, intake_body
from tools.page_receiver import Received
from tools.stack import create_space, drop_space, stop_all

SUICIDAL_SHARE = 0.1


class Pages(Protocol):
    """A page receiver, in the test's process (tools/page_receiver PageReceiver) or in
    one of its own (tools/page_receiver/process.py ReceiverProcess)."""

    def url(self, path: str = "/page") -> str: ...

    def requests(self, path: str | None = None) -> list[Received]: ...

    def delivered(self, path: str | None = None) -> list[Received]: ...

    def unique_deliveries(self, path: str | None = None) -> dict[str, Received]: ...


# docs/domain.md, "Safety signals first": a suicide-risk signal pages within a second of
# being accepted; allowed twice that here (a loaded 2-core machine). A signal accepted
# during a fault (or just before it) has until the fault ends plus the fault's recovery.
PAGE_BOUND_S = 2.0


@dataclass
class Instance:
    """One instance of every service: api, relay, worker(s), timers."""

    procs: dict[str, ServiceProcess]
    urls: dict[str, str]

    def kill(self, service: str) -> None:
        for name, p in self.procs.items():
            if name.startswith(service):
                p.kill(signal.SIGKILL)

    def start(self, service: str) -> None:
        for name, p in self.procs.items():
            if name.startswith(service):
                p.start()


@dataclass
class Stack:
    dsn: str
    prefix: str
    groups: dict[str, str]
    instances: list[Instance]
    kafka: str = KAFKA  # the bootstrap servers, comma-separated

    @property
    def servers(self) -> list[str]:
        return self.kafka.split(",")


ROLES = {
    "intake": ("api", "relay"),
    "scheduling": ("api", "relay", "worker"),
    "alerts": ("api", "relay", "worker", "timers", "safety"),
}


@contextlib.asynccontextmanager
async def two_of_everything(
    kind: str, *, kafka: str = KAFKA, replication: int = 1, **env: str
) -> AsyncIterator[Stack]:
    """Two instances of every service process (``ROLES``), in a space of their own (a
    database and topics replicated ``replication`` times on ``kafka``), all ready."""
    space = await create_space(kind, kafka=kafka, replication=replication)
    run, dsn, prefix = space.run, space.dsn, space.prefix
    groups = {"scheduling": f"{kind}-scheduling-{run}", "alerts": f"{kind}-alerts-{run}"}
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DEV_CLOCK")}
    base.update(
        DATABASE_URL=dsn,
        KAFKA_BOOTSTRAP_SERVERS=kafka,
        KAFKA_TOPIC_PREFIX=prefix,
        LOG_LEVEL="INFO",
        OUTBOX_POLL_INTERVAL_S="1",
        SCHEDULING_CONSUMER_GROUP=groups["scheduling"],
        ALERTS_CONSUMER_GROUP=groups["alerts"],
        ESCALATE_AFTER_S="3600",
        PAGE_RETRY_INITIAL_S="0.5",
        PAGE_RETRY_MAX_S="4",
        CONSUMER_RETRY_MAX_S="2",
        **env,
    )
    groups["alerts-safety"] = f"{groups['alerts']}-safety"  # the lane's own group: caught up too
    logs = ARTIFACTS / "logs"
    instances = []
    for i in (1, 2):
        procs: dict[str, ServiceProcess] = {}
        urls: dict[str, str] = {}
        for svc, svc_roles in ROLES.items():
            port = free_port()
            svc_env = {**base, f"{svc.upper()}_PORT": str(port)}
            for role in svc_roles:
                procs[f"{svc}-{role}"] = ServiceProcess(
                    f"{svc}-{role}-{i}",
                    [f"services.{svc}", role],
                    svc_env,
                    logs / f"{kind}-{run}-{svc}-{role}-{i}.log",
                )
            urls[svc] = f"http://127.0.0.1:{port}"
        instances.append(Instance(procs, urls))
    try:
        for inst in instances:
            for p in inst.procs.values():
                p.start()
        for inst in instances:
            for svc, url in inst.urls.items():
                await wait_ready(url, inst.procs[f"{svc}-api"])
        stack = Stack(dsn, prefix, groups, instances, kafka)
        await settled(stack, members=len(instances))
        yield stack
    finally:
        stop_all(p for inst in instances for p in inst.procs.values())
        await drop_space(space)


@dataclass
class Load:
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)  # intake_id -> body
    suicidal: dict[str, str] = field(default_factory=dict)  # patient_id -> checkin_id
    # patient_id -> when their suicidal check-in was accepted (time.monotonic())
    suicidal_at: dict[str, float] = field(default_factory=dict)
    suicidal_wall: dict[str, float] = field(default_factory=dict)  # the same, time.time()
    started: float = field(default_factory=time.monotonic)
    page_bound_s: float = PAGE_BOUND_S
    checkins: int = 0
    retries: int = 0
    faults: list[str] = field(default_factory=list)
    # (start, end, recovery s) of each fault: the stack has recovered from it by
    # end + recovery (e.g. a killed worker's partitions reassigned after its session timeout)
    windows: list[tuple[float, float, float]] = field(default_factory=list)

    def deadline(self, accepted_at: float) -> float:
        """When a signal accepted at ``accepted_at`` must have paged: ``page_bound_s``
        (PAGE_BOUND_S unless the test says otherwise) later,
        unless a fault struck while it was still due (before it was paged, or accepted
        during the fault's recovery): then by that fault's end + recovery. Faults are
        taken in order, so a page held up by one fault and then by the next (a killed
        lane's leased page, then the receiver down) gets both."""
        due = accepted_at + self.page_bound_s
        for start, end, recovery in sorted(self.windows):
            if start - self.page_bound_s <= due and accepted_at <= end + recovery:
                due = max(due, end + recovery)
        return due

    @contextlib.asynccontextmanager
    async def fault(self, what: str, recovery_s: float) -> AsyncIterator[None]:
        """A fault from entering to leaving the block, recovered ``recovery_s`` later."""
        start = time.monotonic()
        yield
        self.faults.append(what)
        self.windows.append((start, time.monotonic(), recovery_s))


async def _post_until_accepted(
    http: httpx.AsyncClient, urls: list[str], path: str, body: dict[str, Any], load: Load
) -> None:
    """The same body (same id) until an API instance accepts it: the retry a client makes."""
    deadline = time.monotonic() + 180
    attempt = 0
    while True:
        url = urls[attempt % len(urls)]
        attempt += 1
        with contextlib.suppress(httpx.HTTPError):
            r = await http.post(f"{url}{path}", json=body)
            if r.status_code in (200, 201, 202):
                return
            assert r.status_code >= 500, (path, r.status_code, r.text)
        load.retries += 1
        assert time.monotonic() < deadline, f"{path} not accepted for 180 s"
        await asyncio.sleep(0.2)


async def generate(stack: Stack, site_id: str, load: Load, until: float, rate: float) -> None:
    """``rate`` intakes a second until ``until``, and as many check-ins of patients
    already accepted (a share of them reporting suicidal ideation, once per patient)."""
    intake_urls = [i.urls["intake"] for i in stack.instances]
    rng = random.Random(7)
    tasks: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(timeout=10) as http:
        n = 0
        start = time.monotonic()
        while time.monotonic() < until:
            body = intake_body(site_id=site_id)

            async def intake(b: dict[str, Any] = body) -> None:
                await _post_until_accepted(http, intake_urls, "/v1/intakes", b, load)
                load.accepted[b["intake_id"]] = b

            tasks.add(asyncio.create_task(intake()))
            patients = [b["patient"]["patient_id"] for b in load.accepted.values()]
            if patients:
                pid = rng.choice(patients)
                suicidal = pid not in load.suicidal and rng.random() < SUICIDAL_SHARE
                c = checkin_body(pid, [1, 1, 1, 1, 1, 1, 0, 0, 0], suicidal_ideation=suicidal)
                if suicidal:
                    load.suicidal[pid] = c["checkin_id"]

                async def checkin(b: dict[str, Any] = c, signal: bool = suicidal) -> None:
                    await _post_until_accepted(http, intake_urls, "/v1/checkins", b, load)
                    if signal:
                        load.suicidal_at[b["patient_id"]] = time.monotonic()
                        load.suicidal_wall[b["patient_id"]] = time.time()
                    load.checkins += 1

                tasks.add(asyncio.create_task(checkin()))
            n += 1
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            tasks = {t for t in tasks if not t.done()}
        await asyncio.gather(*tasks)


async def open_site(stack: Stack, receiver: Pages) -> str:
    """A site open all week with room for the whole load, its on-call paging ``receiver``."""
    site_id = f"site-{uuid.uuid4().hex[:6]}"
    hours = {d: ["06:00", "22:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    first = stack.instances[0].urls
    site = {
        "name": "Fault",
        "timezone": "UTC",
        "hours": hours,
        "treatment_rooms": 40,
        "therapists": 30,
    }
    oncall = {"tiers": [{"recipients": [{"name": "Dr. F", "webhook_url": receiver.url("/page")}]}]}
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.put(f"{first['scheduling']}/v1/sites/{site_id}", json=site)
        assert r.status_code == 200, r.text
        r = await http.put(f"{first['alerts']}/v1/sites/{site_id}/oncall", json=oncall)
        assert r.status_code == 200, r.text
    return site_id


async def events(stack: Stack, topic: str) -> list[dict[str, Any]]:
    """Every message on the topic so far (CloudEvents)."""
    name = stack.prefix + topic
    consumer = AIOKafkaConsumer(name, bootstrap_servers=stack.servers, auto_offset_reset="earliest")
    await consumer.start()
    try:
        parts = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or []]
        end = await consumer.end_offsets(parts)
        out: list[dict[str, Any]] = []

        async def behind() -> bool:
            return any([await consumer.position(tp) < end[tp] for tp in parts])

        while await behind():
            batch = await consumer.getmany(timeout_ms=1000)
            out += [orjson.loads(m.value) for msgs in batch.values() for m in msgs]
        return out
    finally:
        await consumer.stop()


async def groups(stack: Stack) -> dict[str, tuple[str, int]]:
    """Every consumer group's state and member count, as its coordinator sees it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.servers)
    await admin.start()
    try:
        out = {}
        for group in stack.groups.values():
            for resp in await admin.describe_consumer_groups([group]):
                for g in resp.to_object()["groups"]:
                    out[g["group"]] = (g["state"], len(g["members"]))
        return out
    finally:
        await admin.close()


async def settled(stack: Stack, *, members: int, timeout: float = 90) -> None:
    """Wait until every consumer group is Stable with ``members`` members: the workers of
    every instance have joined and been given their partitions. A stack whose APIs answer
    can still be rebalancing its groups as the second instance's workers join (seconds in
    which nothing is consumed); the load starts on a stack that has settled, so the faults
    the tests make are the only ones the pages' bounds allow for. The safety lanes are
    never members (each consumes every partition: services/alerts/safety.py); their group
    is Empty once they have committed offsets, i.e. consumed the pipeline heartbeats."""
    started = time.monotonic()
    lanes = stack.groups["alerts-safety"]

    def ready(g: dict[str, tuple[str, int]]) -> bool:
        return len(g) == len(stack.groups) and all(
            (state, n) == (("Empty", 0) if group == lanes else ("Stable", members))
            for group, (state, n) in g.items()
        )

    await eventually(
        lambda: groups(stack),
        ready,
        timeout=timeout,
        what=f"every consumer group Stable with {members} members, the lanes' Empty",
        every=0.5,
    )
    print(f"consumer groups settled {time.monotonic() - started:.1f} s after the APIs were ready")


async def lag(stack: Stack) -> dict[str, int]:
    """Every consumer group's lag, as the broker sees it (committed vs. end offsets)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.servers)
    await admin.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.servers)
    await consumer.start()
    try:
        out = {}
        for group in stack.groups.values():
            committed = await admin.list_consumer_group_offsets(group)
            ends = await consumer.end_offsets(list(committed))
            out[group] = sum(ends[tp] - meta.offset for tp, meta in committed.items())
        return out
    finally:
        await consumer.stop()
        await admin.close()


async def converge(
    check: Callable[[], Awaitable[tuple[Any, bool]]], what: str, timeout: float = 240
) -> Any:
    """``check()`` answers (result, ok) until ok; its last result in the failure."""
    deadline = time.monotonic() + timeout
    while True:
        result, ok = await check()
        if ok:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not converge: {result}")
        await asyncio.sleep(2)


@dataclass
class Outcome:
    """What ``verify`` found (every check passed)."""

    messages: int  # decision events on the topic (repeats included)
    series: int
    overlaps: int
    alerts: int
    pages: int
    deliveries: int  # page deliveries the receiver got, repeats included
    unique_deliveries: int
    lag: dict[str, int]
    calm: list[float]  # signal -> page (s) of the signals no fault held up
    page_delays: list[float]  # signal -> page (s), every signal


async def verify(stack: Stack, load: Load, receiver: Pages) -> Outcome:
    """Every check of the module docstring; assertion errors name what broke."""
    conn = await asyncpg.connect(stack.dsn, **connect_kwargs(stack.dsn))
    try:
        messages = await _one_decision_each(stack, load)
        series, overlaps = await _one_series_each(stack, conn, load)
        alerts, pages = await _one_alert_each(conn, load, receiver)
        try:
            calm, delays = _pages_in_time(load, receiver)
        except LatePages as exc:
            raise AssertionError(f"{exc}\n{await _timelines(conn, load, exc.late)}") from None
        lags = await converge(lambda: _lag_ok(stack), "consumer lag back to zero", timeout=120)
    finally:
        await conn.close()
    return Outcome(
        messages=messages,
        series=series,
        overlaps=overlaps,
        alerts=alerts,
        pages=pages,
        deliveries=len(receiver.delivered("/page")),
        unique_deliveries=len(receiver.unique_deliveries("/page")),
        lag=lags,
        calm=calm,
        page_delays=delays,
    )


async def _one_decision_each(stack: Stack, load: Load) -> int:
    async def decisions() -> tuple[Any, bool]:
        found = await events(stack, "intake.screened")
        ids: dict[str, set[str]] = defaultdict(set)
        for e in found:
            ids[e["data"]["intake_id"]].add(e["id"])
        missing = [i for i in load.accepted if i not in ids]
        return (len(found), ids, missing), not missing

    messages, ids, _ = await converge(decisions, "decision events")
    assert all(len(ids[i]) == 1 for i in load.accepted), "an intake with two decision events"
    return int(messages)


async def _why_unscheduled(stack: Stack, conn: asyncpg.Connection) -> str:
    """Where the decision events of the patients without a series stand: consumed (in
    the scheduling inbox) or not, their partition and offset, and the groups' lag."""
    seen = {r["event_id"] for r in await conn.fetch("SELECT event_id FROM scheduling.inbox")}
    waiting = {
        r["patient_id"] for r in await conn.fetch("SELECT patient_id FROM scheduling.waitlist")
    }
    planned = {
        r["patient_id"] for r in await conn.fetch("SELECT patient_id FROM scheduling.series")
    }
    lost = [
        (e["data"]["patient_id"], e["id"] in seen, e["data"].get("decision"))
        for e in await events(stack, "intake.screened")
        if e["data"]["patient_id"] not in waiting | planned
    ]
    return f"(patient, in the inbox, decision): {lost}; lag {await lag(stack)}"


async def _one_series_each(stack: Stack, conn: asyncpg.Connection, load: Load) -> tuple[int, int]:
    accepted_pids = {b["patient"]["patient_id"] for b in load.accepted.values()}

    async def series() -> tuple[Any, bool]:
        rows = await conn.fetch(
            "SELECT patient_id, count(DISTINCT series_id) AS n FROM scheduling.series "
            "WHERE purpose = 'induction' GROUP BY patient_id"
        )
        waiting = {
            r["patient_id"] for r in await conn.fetch("SELECT patient_id FROM scheduling.waitlist")
        }
        counts = {r["patient_id"]: r["n"] for r in rows}
        missing = [p for p in accepted_pids if p not in counts and p not in waiting]
        return (counts, missing), not missing

    try:
        counts, _ = await converge(series, "one series per eligible patient")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{await _why_unscheduled(stack, conn)}") from None
    assert all(n == 1 for n in counts.values()), "a patient with two induction series"
    overlaps = await conn.fetchval(
        """
        SELECT count(*) FROM scheduling.appointments a JOIN scheduling.appointments b
          ON a.appointment_id < b.appointment_id
         AND (a.resource = b.resource OR a.patient_id = b.patient_id)
         AND tstzrange(a.start_at, a.end_at) && tstzrange(b.start_at, b.end_at)
        WHERE a.status IN ('proposed', 'confirmed') AND b.status IN ('proposed', 'confirmed')
        """
    )
    assert overlaps == 0, f"{overlaps} double bookings"
    return sum(counts.values()), int(overlaps)


async def _one_alert_each(conn: asyncpg.Connection, load: Load, receiver: Pages) -> tuple[int, int]:
    async def alerts() -> tuple[Any, bool]:
        rows = await conn.fetch(
            "SELECT patient_id, count(*) AS n FROM alerts.alerts "
            "WHERE kind = 'suicide_risk' GROUP BY patient_id"
        )
        pending = await conn.fetchval(
            "SELECT count(*) FROM alerts.pages WHERE status <> 'delivered'"
        )
        per = {r["patient_id"]: r["n"] for r in rows}
        missing = [p for p in load.suicidal if p not in per]
        return (per, pending, missing), not missing and pending == 0

    per_patient, _, _ = await converge(alerts, "one delivered alert per suicidal check-in")
    assert set(per_patient) == set(load.suicidal), "an alert without suicidal ideation"
    assert all(n == 1 for n in per_patient.values()), "two alerts for one check-in"
    keys = {
        r["idempotency_key"] for r in await conn.fetch("SELECT idempotency_key FROM alerts.pages")
    }
    assert keys <= set(receiver.unique_deliveries("/page")), "a page the receiver never got"
    return sum(per_patient.values()), len(keys)


class LatePages(AssertionError):
    def __init__(self, late: dict[str, float]) -> None:
        super().__init__(f"pages later than their bound (seconds after acceptance): {late}")
        self.late = late


async def _timelines(conn: asyncpg.Connection, load: Load, late: dict[str, float]) -> str:
    """Where each late page's time went, in ms after its check-in was accepted: the
    check-in event's outbox row (written, published), the alert, the page and each of
    its delivery attempts; and the faults, in s after the run's start."""
    faults = ", ".join(
        f"{start - load.started:.1f}..{end - load.started:.1f} s (+{rec:.0f} s)"
        for start, end, rec in load.windows
    )
    lines = [f"faults: {faults or 'none'}"]
    for pid in late:
        at = load.suicidal_wall[pid]

        def ms(t: Any, at: float = at) -> str:
            return "-" if t is None else f"{(t.timestamp() - at) * 1000:.0f}"

        out = await conn.fetch(
            "SELECT topic, created_at, published_at FROM intake.outbox_events "
            "WHERE key = $1 ORDER BY id",
            pid,
        )
        alert = await conn.fetchrow(
            "SELECT alert_id, raised_at, first_seen_at FROM alerts.alerts "
            "WHERE patient_id = $1 AND kind = 'suicide_risk'",
            pid,
        )
        parts = [
            f"{pid}: accepted at {load.suicidal_at[pid] - load.started:.1f} s",
            *(
                f"{r['topic']} written {ms(r['created_at'])} published {ms(r['published_at'])}"
                for r in out
            ),
        ]
        if alert:
            parts.append(f"alert raised {ms(alert['raised_at'])} seen {ms(alert['first_seen_at'])}")
            for pg in await conn.fetch(
                "SELECT page_id, created_at, delivered_at FROM alerts.pages WHERE alert_id = $1 "
                "ORDER BY created_at",
                alert["alert_id"],
            ):
                parts.append(
                    f"page created {ms(pg['created_at'])} delivered {ms(pg['delivered_at'])}"
                )
                parts += [
                    f"attempt {a['attempt']} {ms(a['started_at'])} +{a['duration_ms']:.0f} ms "
                    f"{a['http_status']} {a['error'] or ''}"
                    for a in await conn.fetch(
                        "SELECT * FROM alerts.page_attempts WHERE page_id = $1 ORDER BY attempt",
                        pg["page_id"],
                    )
                ]
        lines.append("; ".join(parts))
    return "\n".join(lines)


def _pages_in_time(load: Load, receiver: Pages) -> tuple[list[float], list[float]]:
    """Every suicide-risk signal paged within its bound, faults or not; the delays of
    the signals no fault held up, and of all."""
    first_page: dict[str, float] = {}
    for r in receiver.requests("/page"):
        pid = r.json.get("patient_id")
        if r.delivered and pid in load.suicidal and pid not in first_page:
            first_page[pid] = r.received_mono
    late = {
        pid: round(first_page[pid] - at, 2)
        for pid, at in load.suicidal_at.items()
        if first_page.get(pid, float("inf")) > load.deadline(at)
    }
    if late:
        raise LatePages(late)
    calm = [
        first_page[pid] - at
        for pid, at in load.suicidal_at.items()
        if load.deadline(at) == at + load.page_bound_s
    ]
    return calm, [first_page[pid] - at for pid, at in load.suicidal_at.items()]


async def _lag_ok(stack: Stack) -> tuple[Any, bool]:
    lags = await lag(stack)
    return lags, all(v == 0 for v in lags.values())


def summary(title: str, load: Load, rate: float, out: Outcome) -> str:
    """The run's figures, as the fault tests print them (docs/scale-out.md quotes them)."""
    return (
        f"\n{title} at {rate:g} intakes/s, two of every process:"
        f"\n  faults: {'; '.join(load.faults)}"
        f"\n  intakes accepted {len(load.accepted)} (client retries {load.retries}); "
        f"decision events: {len(load.accepted)} distinct, {out.messages} messages on the topic"
        f"\n  induction series {out.series}, double bookings {out.overlaps}"
        f"\n  check-ins accepted {load.checkins}, with suicidal ideation {len(load.suicidal)}; "
        f"critical alerts {out.alerts}"
        f"\n  pages {out.pages}, all delivered; deliveries {out.deliveries} "
        f"(repeats the receiver dropped by key: {out.deliveries - out.unique_deliveries})"
        f"\n  consumer lag at the end: {out.lag}"
        f"\n  suicide-risk signal -> page, outside faults: n={len(out.calm)} "
        f"max {max(out.calm, default=0) * 1000:.0f} ms (bound {load.page_bound_s:g} s); "
        f"all signals: max {max(out.page_delays, default=0):.1f} s; every one within its bound"
    )
