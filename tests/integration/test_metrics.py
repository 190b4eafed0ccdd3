"""Every process of the stacks serves Prometheus metrics that ``promtool check metrics``
accepts, and a small journey moves the business metrics ops graph: an intake, a series
proposed and one waitlisted, a confirmed appointment, a critical alert paged and
acknowledged, a message dead-lettered; the workers report their consumer lag.

promtool is Debian's ``prometheus`` package (deploy/bin/setup.sh installs it)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from shared.events import CloudEvent
from tests.support.eventually import eventually
from tests.support.stack import (
    KAFKA,
    ROOT,
    AlertsStack,
    IntakeStack,
    SchedulingStack,
    topic,
)
from tools.factories import checkin_body, intake_body
from tools.page_receiver import PageReceiver

pytestmark = pytest.mark.integration

SCRAPE_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
SUICIDAL = [1, 1, 1, 0, 1, 1, 0, 0, 2]

Scrapes = dict[str, str]  # process name -> its /metrics text


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: deploy/bin/setup.sh installs Debian's prometheus"
    return found


def endpoints(
    intake: IntakeStack, scheduling: SchedulingStack, alerts: AlertsStack
) -> dict[str, str]:
    """Every long-running process of the stacks and the URL of its /metrics."""
    out = {
        "intake-api": f"{intake.url}/metrics",
        "scheduling-api": f"{scheduling.url}/metrics",
        "alerts-api": f"{alerts.url}/metrics",
    }
    for p in (
        intake.relay,
        scheduling.relay,
        *scheduling.workers,
        alerts.relay,
        *alerts.workers,
        *alerts.timers,
        *alerts.safety,
    ):
        out[p.name] = p.metrics_url
    return out


async def scrape_all(client: httpx.AsyncClient, urls: dict[str, str]) -> Scrapes:
    async def one(url: str) -> str:
        r = await client.get(url)
        assert r.status_code == 200, f"{url}: {r.status_code}"
        assert r.headers["content-type"].startswith("text/plain")
        return r.text

    texts = await asyncio.gather(*(one(u) for u in urls.values()))
    return dict(zip(urls, texts, strict=True))


async def scrape_when_up(client: httpx.AsyncClient, urls: dict[str, str]) -> Scrapes:
    """Relays, workers and timers serve /metrics once they started: wait for that."""

    async def scrape() -> Scrapes | None:
        try:
            return await scrape_all(client, urls)
        except httpx.HTTPError:
            return None

    scrapes: Scrapes = await eventually(scrape, timeout=60, what="every /metrics up")
    return scrapes


def total(scrapes: Scrapes, name: str, prefix: str = "", **labels: str) -> float:
    """The sum of a sample over the processes whose name starts with ``prefix``."""
    out = 0.0
    for process, text in scrapes.items():
        if not process.startswith(prefix):
            continue
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    out += s.value
    return out


def samples(scrapes: Scrapes, name: str, prefix: str = "") -> list[tuple[dict[str, str], float]]:
    return [
        (s.labels, s.value)
        for process, text in scrapes.items()
        if process.startswith(prefix)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def check_metrics(promtool: str, what: str, text: str) -> None:
    done = subprocess.run(
        [promtool, "check", "metrics"],
        input=text.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, (
        f"promtool check metrics refused {what}:\n{done.stdout.decode()}{done.stderr.decode()}"
    )


def test_the_scrape_config_is_valid(promtool: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [promtool, "check", "config", str(SCRAPE_CONFIG)],
        capture_output=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def caught_up(prefix: str, topic_name: str) -> Callable[[Scrapes], bool]:
    """The workers report a lag for the topic's partitions they read, all of it 0."""

    def check(scrapes: Scrapes) -> bool:
        lag = [v for lb, v in samples(scrapes, "consumer_lag", prefix) if lb["topic"] == topic_name]
        return bool(lag) and sum(lag) == 0

    return check


async def metrics_show(
    client: httpx.AsyncClient,
    urls: dict[str, str],
    checks: dict[str, Callable[[Scrapes], bool]],
    timeout: float = 30,
) -> Scrapes:
    """Scrape until every check holds (the failing ones named on timeout)."""
    scrapes: Scrapes = await eventually(
        lambda: scrape_all(client, urls),
        lambda got: all(ok(got) for ok in checks.values()),
        timeout=timeout,
        what=f"metrics showing {list(checks)}",
    )
    return scrapes


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as c:
        yield c


async def test_every_process_serves_clean_metrics_and_the_journey_moves_them(
    promtool: str,
    client: httpx.AsyncClient,
    intake: IntakeStack,
    scheduling: SchedulingStack,
    alerts: AlertsStack,
) -> None:
    urls = endpoints(intake, scheduling, alerts)
    assert len(set(urls.values())) == len(urls)
    before = await scrape_when_up(client, urls)
    for process, text in before.items():
        check_metrics(promtool, process, text)

    def grew(name: str, by: float, prefix: str = "", **labels: str) -> Callable[[Scrapes], bool]:
        start = total(before, name, prefix, **labels)
        return lambda now: total(now, name, prefix, **labels) >= start + by

    # --- the journey ---------------------------------------------------------------------
    site_id = f"site-{uuid.uuid4().hex[:8]}"
    r = await client.put(
        f"{scheduling.url}/v1/sites/{site_id}",
        json={
            "name": "Metrics",
            "timezone": "America/New_York",
            "hours": {d: ["08:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
            "treatment_rooms": 2,
            "therapists": 2,
        },
    )
    assert r.status_code == 200, r.text
    async with PageReceiver() as receiver:
        oncall = {"tiers": [{"recipients": [{"name": "Dr. M", "webhook_url": receiver.url()}]}]}
        r = await client.put(f"{alerts.url}/v1/sites/{site_id}/oncall", json=oncall)
        assert r.status_code == 200, r.text

        body = intake_body(site_id=site_id)
        pid = body["patient"]["patient_id"]
        r = await client.post(f"{intake.url}/v1/intakes", json=body)
        assert r.status_code == 201, r.text
        assert r.json()["decision"] == "eligible"
        replay = await client.post(f"{intake.url}/v1/intakes", json=body)
        assert replay.status_code == 200  # a replay: not counted again

        waiting = intake_body(site_id=f"site-nowhere-{uuid.uuid4().hex[:8]}")
        r = await client.post(f"{intake.url}/v1/intakes", json=waiting)
        assert r.status_code == 201, r.text

        async def appointments() -> list[dict[str, object]]:
            r = await client.get(f"{scheduling.url}/v1/patients/{pid}/appointments")
            found: list[dict[str, object]] = r.json()
            return found

        appts = await eventually(appointments, lambda a: len(a) == 12, what="the series")
        dose = next(a for a in appts if a["kind"] == "dosing")
        r = await client.post(f"{scheduling.url}/v1/appointments/{dose['appointment_id']}/confirm")
        assert r.status_code == 200, r.text

        sent = checkin_body(pid, SUICIDAL, suicidal_ideation=True)
        r = await client.post(f"{intake.url}/v1/checkins", json=sent)
        assert r.status_code == 202, r.text
        page = await receiver.wait_for_request(lambda rx: rx.json["patient_id"] == pid, timeout=20)
        r = await client.post(
            f"{alerts.url}/v1/alerts/{page.json['alert_id']}/acknowledge", json={"by": "Dr. M"}
        )
        assert r.status_code == 200, r.text

    # a message that can never be applied: a CloudEvent whose payload is invalid
    bad = CloudEvent(
        id=str(uuid.uuid4()),
        source="tests/metrics",
        type="patient.discharged",
        subject=pid,
        time=datetime.now(UTC),
        data={"patient_id": pid, "site_id": site_id, "discharged_at": "not a time"},
    )
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
    await producer.start()
    try:
        await producer.send_and_wait(topic("patient.discharged"), bad.to_bytes(), key=pid.encode())
    finally:
        await producer.stop()

    dlq = {"topic": topic("patient.discharged"), "reason": "invalid_payload"}
    screened = topic("intake.screened")
    after = await metrics_show(
        client,
        urls,
        {
            "intakes_total eligible +2": grew("intakes_total", 2, decision="eligible"),
            "checkins_total +1": grew("checkins_total", 1, "intake-api"),
            "series_proposed_total induction": grew(
                "series_proposed_total", 1, "scheduling-worker", purpose="induction"
            ),
            "appointments_proposed_total dosing +6": grew(
                "appointments_proposed_total", 6, "scheduling-worker", kind="dosing"
            ),
            "series_waitlisted_total site_not_configured": grew(
                "series_waitlisted_total",
                1,
                "scheduling-worker",
                purpose="induction",
                reason="site_not_configured",
            ),
            "appointments_changed_total confirmed": grew(
                "appointments_changed_total",
                1,
                "scheduling-api",
                kind="dosing",
                status="confirmed",
            ),
            # raised by the safety lane (or the worker, whichever claims the signal first),
            # its first page POSTed by the lane (or the timers process)
            "alerts_raised_total suicide_risk": grew(
                "alerts_raised_total", 1, "alerts-", kind="suicide_risk", severity="critical"
            ),
            "page_delivery_seconds": grew("page_delivery_seconds_count", 1, "alerts-"),
            "alert_time_to_acknowledge_seconds": grew(
                "alert_time_to_acknowledge_seconds_count", 1, "alerts-api", severity="critical"
            ),
            "dead letters, scheduling": grew(
                "events_dead_lettered_total", 1, "scheduling-worker", **dlq
            ),
            "dead letters, alerts": grew("events_dead_lettered_total", 1, "alerts-worker", **dlq),
            "outbox published": grew(
                "outbox_published_total", 1, "intake-relay", topic="intake.screened"
            ),
            # caught up: every partition of intake.screened a worker read is at its end
            "consumer lag of scheduling": caught_up("scheduling-worker", screened),
            "consumer lag of alerts": caught_up("alerts-worker", screened),
        },
    )

    # exactly two more eligible intakes: the replay was not counted
    assert total(after, "intakes_total", decision="eligible") == (
        total(before, "intakes_total", decision="eligible") + 2
    )
    # the API measures its outbox on every scrape
    for service in ("intake", "scheduling", "alerts"):
        assert samples(after, "outbox_backlog", f"{service}-api"), service
        assert samples(after, "outbox_oldest_unpublished_age_seconds", f"{service}-api")
    for process, text in after.items():
        check_metrics(promtool, process, text)
        assert pid not in text, f"{process} exposes a patient id"
        assert site_id not in text, f"{process} exposes a site id"
