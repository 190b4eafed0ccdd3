"""All SQL of the scheduling service. Functions take a connection in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from services.scheduling.domain import lifecycle
from services.scheduling.schemas import SiteIn
from shared.db import Conn

LIVE = tuple(sorted(status.value for status in lifecycle.LIVE))
OCCUPYING = tuple(sorted(status.value for status in lifecycle.OCCUPYING))


async def upsert_site(conn: Conn, site_id: str, body: SiteIn) -> asyncpg.Record:
    row = await conn.fetchrow(
        """
        INSERT INTO sites (site_id, name, timezone, hours, treatment_rooms, therapists, protocol)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (site_id) DO UPDATE SET
            name = EXCLUDED.name, timezone = EXCLUDED.timezone, hours = EXCLUDED.hours,
            treatment_rooms = EXCLUDED.treatment_rooms, therapists = EXCLUDED.therapists,
            protocol = EXCLUDED.protocol, updated_at = now()
        RETURNING *
        """,
        site_id,
        body.name,
        body.timezone,
        {k: list(v) for k, v in body.hours.items()},
        body.treatment_rooms,
        body.therapists,
        body.protocol,
    )
    assert row is not None
    return row


async def get_site(conn: Conn, site_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM sites WHERE site_id = $1", site_id)


BOOKING = "appointment_id, resource, start_at, end_at, status, change_seq"


async def occupied_bookings(conn: Conn, site_id: str, now: datetime) -> list[asyncpg.Record]:
    """The site's bookings that take their resource's time (lifecycle.OCCUPYING)."""
    return await conn.fetch(
        f"SELECT {BOOKING} FROM appointments WHERE site_id = $1 "  # noqa: S608
        "AND status = ANY($2::text[]) AND end_at > $3",
        site_id,
        list(OCCUPYING),
        now,
    )


async def booking_changes(conn: Conn, site_id: str, after: int) -> list[asyncpg.Record]:
    """Appointments of the site inserted or updated since change number ``after``."""
    return await conn.fetch(
        f"SELECT {BOOKING} FROM appointments WHERE site_id = $1 AND change_seq > $2",  # noqa: S608
        site_id,
        after,
    )


async def change_high_water(conn: Conn) -> int:
    """The highest change number handed out so far (0 before the first)."""
    return int(
        await conn.fetchval(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM appointment_changes"
        )
    )


async def patient_busy(conn: Conn, patient_id: str, since: datetime) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT start_at, end_at FROM appointments WHERE patient_id = $1 "
        "AND status = ANY($2::text[]) AND end_at > $3",
        patient_id,
        list(OCCUPYING),
        since,
    )


async def insert_series(
    conn: Conn,
    series_id: str,
    patient_id: str,
    site_id: str,
    purpose: str,
    protocol: str,
    relaxed: Sequence[str],
) -> None:
    await conn.execute(
        "INSERT INTO series (series_id, patient_id, site_id, purpose, protocol, relaxed) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        series_id,
        patient_id,
        site_id,
        purpose,
        protocol,
        list(relaxed),
    )


async def insert_appointments(conn: Conn, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows of (id, series, patient, site, kind, sequence, start, end, resource, reason, replaces).

    Raises asyncpg.ExclusionViolationError when another transaction booked an overlap.
    """
    await conn.executemany(
        "INSERT INTO appointments (appointment_id, series_id, patient_id, site_id, kind, "
        "sequence, status, start_at, end_at, resource, reason, replaces) "
        "VALUES ($1, $2, $3, $4, $5, $6, 'proposed', $7, $8, $9, $10, $11)",
        rows,
    )


COLUMNS = (
    "appointment_id, patient_id, site_id, series_id, kind, sequence, status, "
    "start_at AS start, end_at AS end, resource, reason, cause, replaces, "
    "(SELECT relaxed FROM series s WHERE s.series_id = appointments.series_id) AS relaxed"
)


async def patient_appointments(conn: Conn, patient_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM appointments WHERE patient_id = $1 ORDER BY start_at, kind",  # noqa: S608
        patient_id,
    )


async def site_schedule(
    conn: Conn, site_id: str, since: datetime, until: datetime
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM appointments WHERE site_id = $1 "  # noqa: S608
        "AND start_at < $3 AND end_at > $2 ORDER BY start_at, resource",
        site_id,
        since,
        until,
    )


async def get_appointment(
    conn: Conn, appointment_id: str, *, for_update: bool = False
) -> asyncpg.Record | None:
    sql = f"SELECT {COLUMNS} FROM appointments WHERE appointment_id = $1"  # noqa: S608
    return await conn.fetchrow(sql + (" FOR UPDATE" if for_update else ""), appointment_id)


async def set_status(
    conn: Conn, appointment_id: str, status: str, cause: str | None = None
) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"UPDATE appointments SET status = $2, cause = coalesce($3, cause), updated_at = now() "  # noqa: S608
        f"WHERE appointment_id = $1 RETURNING {COLUMNS}",
        appointment_id,
        status,
        cause,
    )
    assert row is not None
    return row


async def paired_integration(conn: Conn, series_id: str, sequence: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM appointments WHERE series_id = $1 AND sequence = $2 "  # noqa: S608
        "AND kind = 'integration' AND status = ANY($3::text[]) FOR UPDATE",
        series_id,
        sequence,
        list(LIVE),
    )


async def series_doses(conn: Conn, series_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT sequence, status, start_at FROM appointments "
        "WHERE series_id = $1 AND kind <> 'integration'",
        series_id,
    )


async def get_series(conn: Conn, series_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM series WHERE series_id = $1", series_id)


async def has_series(conn: Conn, patient_id: str, purpose: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM series WHERE patient_id = $1 AND purpose = $2)",
            patient_id,
            purpose,
        )
    )


async def pending_maintenance(conn: Conn, patient_id: str, now: datetime) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM appointments WHERE patient_id = $1 "
            "AND kind = 'maintenance' AND status = ANY($2::text[]) AND start_at > $3)",
            patient_id,
            list(LIVE),
            now,
        )
    )


async def upsert_patient(
    conn: Conn, patient_id: str, site_id: str, preferences: dict[str, Any] | None
) -> None:
    await conn.execute(
        "INSERT INTO patients (patient_id, site_id, preferences) VALUES ($1, $2, $3) "
        "ON CONFLICT (patient_id) DO UPDATE SET site_id = EXCLUDED.site_id, "
        "preferences = EXCLUDED.preferences, discharged_at = NULL",
        patient_id,
        site_id,
        preferences,
    )


async def get_patient(conn: Conn, patient_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM patients WHERE patient_id = $1", patient_id)


async def discharge(conn: Conn, patient_id: str, at: datetime) -> list[asyncpg.Record]:
    """Mark discharged; returns the future live appointments (to cancel)."""
    await conn.execute(
        "UPDATE patients SET discharged_at = $2 WHERE patient_id = $1", patient_id, at
    )
    await conn.execute("DELETE FROM waitlist WHERE patient_id = $1", patient_id)
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM appointments WHERE patient_id = $1 "  # noqa: S608
        "AND status = ANY($2::text[]) AND start_at > $3 FOR UPDATE",
        patient_id,
        list(LIVE),
        at,
    )


async def waitlist_add(
    conn: Conn,
    patient_id: str,
    site_id: str,
    purpose: str,
    reason: str,
    preferences: dict[str, Any] | None,
    not_before: datetime | None,
    place: tuple[str, int, str] | None = None,
) -> bool:
    """Add or refresh a waitlist entry; True when the patient was not waiting already.

    ``place`` is (series_id, sequence, kind) for a rebooking that keeps its series.
    """
    series_id, sequence, kind = place or (None, None, None)
    first = await conn.fetchval(
        """
        INSERT INTO waitlist AS w (patient_id, site_id, purpose, reason, preferences, not_before,
                                   series_id, sequence, kind)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (patient_id, purpose) DO UPDATE SET
            site_id = EXCLUDED.site_id, reason = EXCLUDED.reason,
            preferences = EXCLUDED.preferences, attempts = w.attempts + 1
        RETURNING attempts = 1
        """,
        patient_id,
        site_id,
        purpose,
        reason,
        preferences,
        not_before,
        series_id,
        sequence,
        kind,
    )
    return bool(first)


async def waitlist_remove(conn: Conn, patient_id: str, purpose: str) -> None:
    await conn.execute(
        "DELETE FROM waitlist WHERE patient_id = $1 AND purpose = $2", patient_id, purpose
    )


async def waitlist_for_site(conn: Conn, site_id: str, limit: int) -> list[asyncpg.Record]:
    """The oldest waiting patients of a site, locked so two workers don't retry the same."""
    return await conn.fetch(
        "SELECT * FROM waitlist WHERE site_id = $1 ORDER BY since LIMIT $2 FOR UPDATE SKIP LOCKED",
        site_id,
        limit,
    )


async def waitlisted_sites(conn: Conn) -> list[str]:
    rows = await conn.fetch("SELECT DISTINCT site_id FROM waitlist")
    return [r["site_id"] for r in rows]


async def waitlist(conn: Conn, site_id: str | None) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT patient_id, site_id, purpose, reason, since, attempts FROM waitlist "
        "WHERE $1::text IS NULL OR site_id = $1 ORDER BY since",
        site_id,
    )
