"""Missed check-ins fired in batches (services/alerts/timers.py ``fire_deadlines``): one
set-wise UPDATE of the patients and one INSERT of their events per batch, several
batches in flight at once, against a real PostgreSQL: every deadline fires once, every
miss is one ``checkin.missed`` in the outbox in order, and the counters add up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from prometheus_client import REGISTRY

from services.alerts.deps import Deps
from services.alerts.timers import fire_deadlines
from shared import db, outbox
from shared.events import uuid4_strings
from tests.support.alerts import alerts_deps

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
DUE = 1200  # more than one batch per lane


@pytest.fixture
async def deps() -> AsyncIterator[Deps]:
    async with alerts_deps(
        NOW,
        "care_timers",
        pool_size=6,
        timer_batch=100,
        checkin_interval_s=86400,
        checkin_grace_s=43200,
    ) as d:
        yield d


async def seed(conn: db.Conn) -> None:
    """DUE patients whose deadline passed an hour ago (5 misses on record each), one
    three days behind (three deadlines passed), one not due until tomorrow, and one
    discharged since its deadline was set (a miss on record from last week)."""
    await conn.execute(
        "INSERT INTO patients (patient_id, site_id, started_at, next_due_at, deadline_at, "
        "total_misses, updated_at) "
        "SELECT 'p-' || g, 's-1', $1::timestamptz - interval '9 days', d - interval '12 hours', "
        "d, 5, $1 FROM generate_series(1, $2) g, "
        "LATERAL (SELECT $1::timestamptz - interval '1 hour') t(d)",
        NOW,
        DUE,
    )
    for pid, next_due in (
        ("p-behind", NOW - timedelta(days=2, hours=14)),
        ("p-later", NOW + timedelta(days=1)),
    ):
        await conn.execute(
            "INSERT INTO patients (patient_id, site_id, started_at, next_due_at, deadline_at, "
            "updated_at) VALUES ($1, 's-1', $2, $3, $4, $2)",
            pid,
            NOW - timedelta(days=9),
            next_due,
            next_due + timedelta(hours=12),
        )
    await conn.execute(
        "INSERT INTO patients (patient_id, site_id, started_at, discharged_at, next_due_at, "
        "deadline_at, total_misses, last_missed_at, updated_at) "
        "VALUES ('p-discharged', 's-1', $1, $2, $3, $4, 1, $5, $2)",
        NOW - timedelta(days=9),
        NOW - timedelta(days=1),
        NOW - timedelta(hours=14),
        NOW - timedelta(hours=2),
        NOW - timedelta(days=7),
    )


async def test_batches_in_flight_at_once_fire_every_deadline_once_in_order(deps: Deps) -> None:
    async with deps.pool.acquire() as conn:
        await seed(conn)

    async def drain() -> int:
        fired = 0
        while n := await fire_deadlines(deps, NOW):
            fired += n
        return fired

    counted_before = REGISTRY.get_sample_value("checkins_missed_total") or 0.0
    fired = await asyncio.gather(*(drain() for _ in range(4)))
    assert sum(fired) == DUE + 2  # each due patient taken by exactly one batch
    assert await fire_deadlines(deps, NOW) == 0  # nothing fires twice

    async with deps.pool.acquire() as conn:
        rows = await conn.fetch("SELECT topic, key, value FROM outbox ORDER BY id")
        patients = {
            r["patient_id"]: r
            for r in await conn.fetch(
                "SELECT patient_id, deadline_at, consecutive_misses, total_misses, "
                "last_missed_at FROM patients"
            )
        }
    missed = [orjson.loads(r["value"])["data"] for r in rows if r["topic"] == "checkin.missed"]
    assert len(missed) == DUE + 3
    # the misses counter counts each once, after its batch committed
    assert REGISTRY.get_sample_value("checkins_missed_total") == counted_before + DUE + 3
    assert len({(m["patient_id"], m["due_at"]) for m in missed}) == len(missed)
    behind = [m for m in missed if m["patient_id"] == "p-behind"]
    assert [m["consecutive_misses"] for m in behind] == [1, 2, 3]
    assert [m["due_at"] for m in behind] == sorted(m["due_at"] for m in behind)

    assert patients["p-1"]["total_misses"] == 6  # added to, not overwritten
    assert patients["p-1"]["consecutive_misses"] == 1
    assert patients["p-1"]["last_missed_at"] == NOW
    assert patients["p-1"]["deadline_at"] == NOW - timedelta(hours=1) + timedelta(days=1)
    assert patients["p-behind"]["total_misses"] == 3
    assert patients["p-behind"]["deadline_at"] > NOW
    assert patients["p-later"]["total_misses"] == 0
    assert patients["p-later"]["last_missed_at"] is None
    # discharged since: its stale deadline is cleared, and no miss is counted or dated
    assert not [m for m in missed if m["patient_id"] == "p-discharged"]
    assert patients["p-discharged"]["deadline_at"] is None
    assert patients["p-discharged"]["total_misses"] == 1
    assert patients["p-discharged"]["last_missed_at"] == NOW - timedelta(days=7)
    # p-behind reached the threshold (2): its missed_checkins alert is in the same outbox
    assert any(r["topic"] == "alert.raised" and r["key"] == "p-behind" for r in rows)


async def test_encoded_events_without_a_key_or_value_each_are_refused_and_nothing_is_written(
    deps: Deps,
) -> None:
    """``shared.outbox.enqueue_encoded`` pairs the i-th id, key and value: a batch whose
    lists differ in length would pair them wrongly, so it is refused whole."""
    async with deps.pool.acquire() as conn:
        with pytest.raises(ValueError, match="one event id, one key and one value"):
            await outbox.enqueue_encoded(
                conn, "checkin.missed", uuid4_strings(2), ["p-1", "p-2"], [b"{}"]
            )
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
