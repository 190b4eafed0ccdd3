"""The planner's calendar cache follows bookings and cancellations through change numbers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.scheduling.repository.calendars import CalendarCache
from shared.db import connect_kwargs
from tests.support.stack import SchedulingStack

pytestmark = pytest.mark.integration


async def test_cache_sees_new_bookings_and_released_ones(scheduling: SchedulingStack) -> None:
    conn = await asyncpg.connect(scheduling.dsn, **connect_kwargs(scheduling.dsn, "scheduling"))
    site = f"site-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    start = now + timedelta(days=2)
    end = start + timedelta(hours=3)
    try:
        await conn.execute(
            "INSERT INTO sites (site_id, name, timezone, hours, treatment_rooms, therapists) "
            "VALUES ($1, 'x', 'UTC', '{\"mon\": [\"08:00\", \"18:00\"]}', 1, 1)",
            site,
        )
        await conn.execute(
            "INSERT INTO series (series_id, patient_id, site_id, purpose, protocol) "
            "VALUES ($1, 'p', $2, 'induction', 'standard')",
            site,
            site,
        )
        cache = CalendarCache(max_age_s=3600)  # only deltas after the first load
        assert (await cache.calendar(conn, site, now)).is_free("room-1", start, end)

        aid = str(uuid.uuid4())
        await conn.execute(
            "INSERT INTO appointments (appointment_id, series_id, patient_id, site_id, kind, "
            "sequence, status, start_at, end_at, resource, reason) VALUES "
            "($1, $2, 'p', $2, 'dosing', 1, 'proposed', $3, $4, 'room-1', 'induction')",
            aid,
            site,
            start,
            end,
        )
        assert not (await cache.calendar(conn, site, now)).is_free("room-1", start, end)

        await conn.execute(
            "UPDATE appointments SET status = 'cancelled' WHERE appointment_id = $1", aid
        )
        assert (await cache.calendar(conn, site, now)).is_free("room-1", start, end)
    finally:
        await conn.close()
