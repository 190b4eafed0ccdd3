"""The ``clocked`` fixture: a second, separate stack on the dev clock, for journeys that
take weeks (docs/architecture.md "Dev clock").

Registered by ``tests/conftest.py``, so every test may ask for it::

    async def test_six_doses_then_maintenance(clocked: ClockedStack) -> None:
        async with clocked.client("scheduling") as sched:
            await sched.put(f"/v1/sites/{site_id}", json=site_body())
        ...
        await clocked.advance_to(first_dose_start)   # sessions really in the past
        await clocked.advance(timedelta(days=1, hours=12))  # a missed check-in fires

It runs with ``DEV_CLOCK=1`` and the PRODUCTION-DEFAULT timing knobs (a check-in a day,
12 h grace, escalation after 15 min...: not ``ALERTS_KNOBS``): real intervals, played
out by moving the clock. See ``ClockedStack`` for what it offers.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.eventually import eventually
from tests.support.stack import (
    ARTIFACTS,
    EventLog,
    ServiceProcess,
    channels_env,
    create_database,
    drop_database,
    for_the_session,
    free_port,
    service_env,
    stop_all,
    topic_log,
    wait_ready,
)
from tools.fake_twilio import FakeTwilio
from tools.mail_sink import MailSink

SERVICES = ("intake", "scheduling", "alerts")


@dataclass
class ClockedStack:
    """intake api+relay, scheduling api+relay+one worker, alerts api+relay+worker+timers+safety,
    all on ``DEV_CLOCK=1``, with their own database (``dsn``) and Kafka topic prefix
    (``prefix``), session-scoped: the clock only moves forward, and every test sees the
    time the tests before it left (ask ``await clocked.now()``, never the wall clock, for
    times you send: an intake's ``submitted_at``, a check-in's, a vitals' ``taken_at``).

    - ``intake_url``, ``scheduling_url``, ``alerts_url`` (and ``urls[service]``);
      ``client(service)``: an ``httpx.AsyncClient`` on one of them.
    - ``await now()``: the stack's time; ``await offset()``: seconds ahead of the wall.
    - ``await advance(seconds | timedelta)``: POSTs ``/v1/dev/clock`` to one service and
      returns the new time once EVERY process (the three APIs by ``GET /v1/dev/clock``,
      relays, workers and timers by their ``dev_clock_offset_seconds`` gauge) has it, so
      whatever fell due in the skipped span is being fired when it returns (wait for its
      effect with ``eventually``, as ever: firing takes a moment).
    - ``await advance_to(when)``: advance until the stack's time is past ``when`` (a
      session's start, say); a no-op when it already is.
    - ``events``: an ``EventLog`` of every project topic of this stack (names without the
      prefix: ``clocked.events.data("checkin.missed")``).
    - ``processes``: the ``ServiceProcess``es by name (``logs()`` when a test fails).
    """

    intake_url: str
    scheduling_url: str
    alerts_url: str
    dsn: str
    prefix: str
    events: EventLog
    processes: dict[str, ServiceProcess]
    http: httpx.AsyncClient = field(repr=False)

    @property
    def urls(self) -> dict[str, str]:
        return {
            "intake": self.intake_url,
            "scheduling": self.scheduling_url,
            "alerts": self.alerts_url,
        }

    def client(self, service: str, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.urls[service], timeout=30, **kwargs)

    def topic(self, name: str) -> str:
        """This stack's broker name for a topic."""
        return self.prefix + name

    async def clock(self, service: str = "scheduling") -> dict[str, Any]:
        r = await self.http.get(f"{self.urls[service]}/v1/dev/clock")
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        return answer

    async def now(self) -> datetime:
        return datetime.fromisoformat((await self.clock())["now"])

    async def offset(self) -> int:
        return int((await self.clock())["offset_s"])

    async def offsets(self) -> dict[str, int | None]:
        """Every process's copy of the offset (None: not answering yet)."""

        async def api(service: str) -> int | None:
            with contextlib.suppress(httpx.HTTPError, AssertionError):
                return int((await self.clock(service))["offset_s"])
            return None

        async def gauge(proc: ServiceProcess) -> int | None:
            with contextlib.suppress(httpx.HTTPError):
                text = (await self.http.get(proc.metrics_url)).text
                for line in text.splitlines():
                    if line.startswith("dev_clock_offset_seconds "):
                        return int(float(line.split()[1]))
            return None

        others = [p for p in self.processes.values() if p.metrics_port is not None]
        found = await asyncio.gather(*(api(s) for s in SERVICES), *(gauge(p) for p in others))
        names = [f"{s}-api" for s in SERVICES] + [p.name for p in others]
        return dict(zip(names, found, strict=True))

    async def advance(
        self, by: float | timedelta, *, via: str = "scheduling", timeout: float = 10
    ) -> datetime:
        """Move the stack's clock forward (whole seconds, rounded up); the new time, once
        every process has it."""
        seconds = math.ceil(by.total_seconds() if isinstance(by, timedelta) else by)
        r = await self.http.post(f"{self.urls[via]}/v1/dev/clock", json={"advance_s": seconds})
        assert r.status_code == 200, r.text
        target = r.json()["offset_s"]
        await eventually(
            self.offsets,
            lambda seen: all(v == target for v in seen.values()),
            timeout=timeout,
            what=f"every process at offset {target}",
        )
        return datetime.fromisoformat(r.json()["now"])

    async def advance_to(
        self, when: datetime, *, margin: timedelta = timedelta(seconds=1)
    ) -> datetime:
        """Advance until the stack's time is at least ``when + margin``."""
        now = await self.now()
        if now >= when + margin:
            return now
        return await self.advance(when + margin - now)


@pytest.fixture(scope="session")
async def clocked(fake_twilio: FakeTwilio, mail_sink: MailSink) -> AsyncIterator[ClockedStack]:
    """A second stack on the dev clock (see ``ClockedStack``)."""
    run = uuid.uuid4().hex[:8]
    name = f"care_clock_{run}"
    dsn = await create_database(name)
    prefix = f"clock-{run}."
    ports = {s: free_port() for s in SERVICES}
    env = service_env(
        dsn,
        DEV_CLOCK="1",
        INTAKE_PORT=str(ports["intake"]),
        SCHEDULING_PORT=str(ports["scheduling"]),
        ALERTS_PORT=str(ports["alerts"]),
        SCHEDULING_CONSUMER_GROUP=f"scheduling-clock-{run}",
        ALERTS_CONSUMER_GROUP=f"alerts-clock-{run}",
        **channels_env(fake_twilio, mail_sink),
    )
    env["KAFKA_TOPIC_PREFIX"] = prefix
    logs = ARTIFACTS / "logs"

    def proc(service: str, role: str, metrics: str | None = None) -> ServiceProcess:
        p = ServiceProcess(
            f"{service}-{role}",
            [f"services.{service}", role],
            env,
            logs / f"clock-{service}-{role}-{run}.log",
        )
        return p.with_metrics(metrics) if metrics else p

    apis = {s: proc(s, "api") for s in SERVICES}
    others = [
        *(proc(s, "relay", "RELAY_METRICS_PORT") for s in SERVICES),
        proc("scheduling", "worker", "WORKER_METRICS_PORT"),
        proc("alerts", "worker", "WORKER_METRICS_PORT"),
        proc("alerts", "timers", "ALERTS_TIMERS_METRICS_PORT"),
        proc("alerts", "safety", "ALERTS_SAFETY_METRICS_PORT"),
    ]
    processes = {p.name: p for p in (*apis.values(), *others)}
    urls = {s: f"http://127.0.0.1:{ports[s]}" for s in SERVICES}
    try:
        async with topic_log(prefix) as events, httpx.AsyncClient(timeout=10) as http:
            for p in processes.values():
                p.start()
            for_the_session(*processes.values())
            await asyncio.gather(*(wait_ready(urls[s], apis[s]) for s in SERVICES))
            stack = ClockedStack(
                intake_url=urls["intake"],
                scheduling_url=urls["scheduling"],
                alerts_url=urls["alerts"],
                dsn=dsn,
                prefix=prefix,
                events=events,
                processes=processes,
                http=http,
            )
            # every process follows the clock (a gauge reads 0 before its watcher ran,
            # so move it once and see every process arrive) before a test moves it
            started = time.monotonic()
            await stack.advance(1, timeout=120)
            print(f"clocked stack on its clock {time.monotonic() - started:.1f}s after its APIs")
            yield stack
    finally:
        stop_all(processes.values())
        await drop_database(name)
