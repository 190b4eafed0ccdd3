"""A rolling upgrade on the real broker: an event from the next version of a producer.

The next version added an optional field to ``checkin.recorded`` (and one inside its
``assessment``) and sets a CloudEvents extension attribute. A consumer that does not
know them yet applies the event without them, sends nothing to the dead-letter topic and
logs each unknown field's name once (docs/events.md, "Strict producers, tolerant
readers").
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from tests.support.alerts import alerts_of, checkin_event, seen_checkin_at
from tests.support.eventually import eventually
from tests.support.stack import (
    KAFKA,
    AlertsStack,
    EventLog,
    ServiceProcess,
    topic,
)

pytestmark = pytest.mark.integration

# names no version of ours has: each is logged once, whichever test ran before
RUN = uuid.uuid4().hex[:10]
NEW_FIELD = f"mood_trend_{RUN}"
NEW_NESTED = f"trajectory_{RUN}"
NEW_EXTENSION = f"ext{RUN}"  # CloudEvents: lower-case letters and digits
VALUE = "value-never-logged"


@pytest.fixture
async def api(alerts: AlertsStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=alerts.url, timeout=30) as client:
        yield client


def next_version(pid: str, site_id: str, at: datetime, *, suicidal: bool) -> dict[str, Any]:
    """A checkin.recorded as the next version sends it, as raw JSON."""
    wire: dict[str, Any] = json.loads(checkin_event(pid, site_id, at, suicidal=suicidal).to_bytes())
    wire[NEW_EXTENSION] = VALUE
    wire["data"][NEW_FIELD] = VALUE
    wire["data"]["assessment"][NEW_NESTED] = VALUE
    return wire


async def publish_raw(*events: dict[str, Any]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
    await producer.start()
    try:
        for ev in events:
            await producer.send_and_wait(
                topic(ev["type"]), json.dumps(ev).encode(), key=ev["subject"].encode()
            )
    finally:
        await producer.stop()


async def test_an_event_from_the_next_version_is_applied_and_its_new_fields_logged_once(
    api: httpx.AsyncClient, alerts: AlertsStack, event_log: EventLog
) -> None:
    pid, site_id = f"p-next-{uuid.uuid4().hex[:8]}", f"site-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).replace(microsecond=0)
    first = next_version(pid, site_id, now - timedelta(seconds=20), suicidal=True)
    second = next_version(pid, site_id, now - timedelta(seconds=10), suicidal=False)
    await publish_raw(first, second)

    # both applied, in order (same patient, same partition): monitoring saw the second
    await seen_checkin_at(api, pid, now - timedelta(seconds=10))
    [alert] = await alerts_of(api, pid)
    assert alert["kind"] == "suicide_risk"
    assert alert["severity"] == "critical"
    assert not event_log.containing(pid, "checkin.recorded.dlq")

    def ignored(w: ServiceProcess) -> list[dict[str, Any]]:
        # (from the line's first brace: faust's terminal codes may come before it)
        lines = [json.loads(x[x.find("{") :]) for x in w.logs().splitlines() if RUN in x]
        return [x for x in lines if x.get("event") == "event_unknown_field_ignored"]

    expected = {f"data.{NEW_FIELD}", f"data.assessment.{NEW_NESTED}", NEW_EXTENSION}
    await eventually(
        lambda: {x["field"] for w in alerts.workers for x in ignored(w)} == expected,
        what="each unknown field's name logged",
    )
    for w in alerts.workers:  # once per process (both events went to one worker, unless
        fields = [x["field"] for x in ignored(w)]  # a rebalance moved the partition between)
        assert len(fields) == len(set(fields)), fields
        assert all(x["event_type"] == "checkin.recorded" for x in ignored(w))
    assert not any(VALUE in w.logs() for w in alerts.workers)
    await api.post(f"/v1/alerts/{alert['alert_id']}/resolve", json={"by": "Dr. next"})
