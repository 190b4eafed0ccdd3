"""The planner's calendar cache follows bookings and cancellations through change numbers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

import asyncpg
import pytest

from services.scheduling.domain.model import (
    STANDARD,
    WEEKDAYS,
    NoFit,
    Preferences,
    Site,
    weekly_hours,
)
from services.scheduling.domain.slots import find_series
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


async def test_time_freed_is_offered_again_though_searches_learned_it_was_full(
    scheduling: SchedulingStack,
) -> None:
    """The cache keeps what searches learn (domain/calendar.py ``Known``: a room full for
    weeks); cancelling those bookings must make the next search see the room free."""
    conn = await asyncpg.connect(scheduling.dsn, **connect_kwargs(scheduling.dsn, "scheduling"))
    site_id = f"site-{uuid.uuid4().hex[:8]}"
    site = Site(
        site_id=site_id,
        timezone="UTC",
        hours=weekly_hours({day: (time(8), time(20)) for day in WEEKDAYS}),
        rooms=1,
        therapists=3,
    )
    now = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    first_day = now.replace(hour=8) + timedelta(days=1)
    try:
        await conn.execute(
            "INSERT INTO sites (site_id, name, timezone, hours, treatment_rooms, therapists) "
            "VALUES ($1, 'x', 'UTC', '{}', 1, 3)",
            site_id,
        )
        await conn.execute(
            "INSERT INTO series (series_id, patient_id, site_id, purpose, protocol) "
            "VALUES ($1, 'p', $1, 'induction', 'standard')",
            site_id,
        )
        cache = CalendarCache(max_age_s=3600)  # only deltas after the first load
        for day in range(35):  # the room taken all day for five weeks
            start = first_day + timedelta(days=day)
            await conn.execute(
                "INSERT INTO appointments (appointment_id, series_id, patient_id, site_id, "
                "kind, sequence, status, start_at, end_at, resource, reason) VALUES "
                "($1, $2, 'p', $2, 'dosing', 1, 'proposed', $3, $4, 'room-1', 'induction')",
                str(uuid.uuid4()),
                site_id,
                start,
                start + timedelta(hours=12),
            )
        full = find_series(
            site, await cache.calendar(conn, site_id, now), STANDARD, Preferences(), now
        )
        assert not isinstance(full, NoFit)
        assert full.first_start >= first_day + timedelta(days=35)

        await conn.execute(
            "UPDATE appointments SET status = 'cancelled' WHERE site_id = $1", site_id
        )
        freed = find_series(
            site, await cache.calendar(conn, site_id, now), STANDARD, Preferences(), now
        )
        assert not isinstance(freed, NoFit)
        assert freed.first_start < first_day + timedelta(days=1)
    finally:
        await conn.close()
