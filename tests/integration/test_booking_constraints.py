"""The appointments' exclusion constraints on a real PostgreSQL, across the migration that
moved them onto 64-bit keys (services/scheduling/migrations/0007_hashed_exclusion_keys.sql):
a booking made before it still refuses an overlapping one after it, and what was allowed
before (another site's room of the same name, a cancelled booking's slot) still is."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.scheduling.app import MIGRATIONS as SCHEDULING_MIGRATIONS
from services.scheduling.settings import SCHEMA
from shared import db
from tools.stack import scratch_database

pytestmark = pytest.mark.integration

MIGRATIONS = db.migration_files(SCHEDULING_MIGRATIONS)
KEYED = "0007_hashed_exclusion_keys"
AT = datetime(2099, 3, 2, 9, tzinfo=UTC)


async def _book(
    conn: asyncpg.Connection,
    site: str,
    resource: str,
    patient: str,
    start_h: float,
    hours: float = 2,
    status: str = "proposed",
) -> str:
    series_id = f"s-{uuid.uuid4()}"
    await conn.execute(
        "INSERT INTO series (series_id, patient_id, site_id, purpose, protocol) "
        "VALUES ($1, $2, $3, 'induction', 'standard')",
        series_id,
        patient,
        site,
    )
    appointment_id = f"a-{uuid.uuid4()}"
    start = AT + timedelta(hours=start_h)
    await conn.execute(
        "INSERT INTO appointments (appointment_id, series_id, patient_id, site_id, kind, "
        "sequence, status, start_at, end_at, resource, reason) "
        "VALUES ($1, $2, $3, $4, 'dosing', 1, $5, $6, $7, $8, 'test')",
        appointment_id,
        series_id,
        patient,
        site,
        status,
        start,
        start + timedelta(hours=hours),
        resource,
    )
    return appointment_id


async def _refused(conn: asyncpg.Connection, *args: object, **kw: object) -> str | None:
    """The constraint that refused the booking, or None if it was taken."""
    try:
        async with conn.transaction():
            await _book(conn, *args, **kw)  # type: ignore[arg-type]
    except asyncpg.ExclusionViolationError as exc:
        return exc.constraint_name
    return None


async def test_bookings_made_before_the_migration_still_refuse_overlaps_after_it() -> None:
    before = [m for m in MIGRATIONS if m[0] < KEYED]
    assert len(before) < len(MIGRATIONS)  # the migration under test is there
    async with scratch_database("booking_keys") as dsn:
        await db.migrate(dsn, SCHEMA, before)
        conn = await asyncpg.connect(dsn, **db.connect_kwargs(dsn, SCHEMA))
        try:
            for site in ("site-a", "site-b"):
                await conn.execute(
                    "INSERT INTO sites (site_id, name, timezone, hours, treatment_rooms, "
                    "therapists) VALUES ($1, $1, 'UTC', '{}', 2, 2)",
                    site,
                )
            await _book(conn, "site-a", "room-1", "patient-1", 0)
            cancelled = await _book(conn, "site-a", "room-2", "patient-2", 0)
            await conn.execute(
                "UPDATE appointments SET status = 'cancelled' WHERE appointment_id = $1",
                cancelled,
            )

            assert await db.migrate(dsn, SCHEMA, MIGRATIONS) == [KEYED]

            # the room booked before the migration: an overlap is refused, back to back is not
            assert await _refused(conn, "site-a", "room-1", "patient-3", 1) == "no_double_booking"
            assert await _refused(conn, "site-a", "room-1", "patient-3", 2) is None
            # the same patient in another room at an overlapping time
            assert await _refused(conn, "site-a", "room-2", "patient-1", 1.5) == (
                "no_patient_overlap"
            )
            # the same room name at another site, and a cancelled booking's slot: free
            assert await _refused(conn, "site-b", "room-1", "patient-4", 0) is None
            assert await _refused(conn, "site-a", "room-2", "patient-5", 0) is None
            # a booking made after the migration refuses like one made before it
            assert await _refused(conn, "site-b", "room-1", "patient-6", 1) == "no_double_booking"
            # a cancelled booking made live again is checked again (its key is still there)
            with pytest.raises(asyncpg.ExclusionViolationError):
                await conn.execute(
                    "UPDATE appointments SET status = 'confirmed' WHERE appointment_id = $1",
                    cancelled,
                )
        finally:
            await conn.close()
