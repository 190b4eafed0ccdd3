"""Appointments: the sessions of a series, their status, and the times they take."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.scheduling.domain import lifecycle
from services.scheduling.rows import AppointmentRow, DoseRow, SpanRow
from shared.db import Conn

LIVE = tuple(sorted(status.value for status in lifecycle.LIVE))
OCCUPYING = tuple(sorted(status.value for status in lifecycle.OCCUPYING))

COLUMNS = (
    "appointment_id, patient_id, site_id, series_id, kind, sequence, status, "
    "start_at, end_at, resource, reason, cause, replaces, "
    "(SELECT relaxed FROM series s WHERE s.series_id = appointments.series_id) AS relaxed"
)


def _appointment(r: asyncpg.Record) -> AppointmentRow:
    return AppointmentRow(
        appointment_id=r["appointment_id"],
        patient_id=r["patient_id"],
        site_id=r["site_id"],
        series_id=r["series_id"],
        kind=r["kind"],
        sequence=r["sequence"],
        status=r["status"],
        start=r["start_at"],
        end=r["end_at"],
        resource=r["resource"],
        reason=r["reason"],
        cause=r["cause"],
        replaces=r["replaces"],
        relaxed=tuple(r["relaxed"]),
    )


def _appointments(rows: list[asyncpg.Record]) -> list[AppointmentRow]:
    return [_appointment(r) for r in rows]


async def patient_appointments(conn: Conn, patient_id: str) -> list[AppointmentRow]:
    return _appointments(
        await conn.fetch(
            f"SELECT {COLUMNS} FROM appointments WHERE patient_id = $1 ORDER BY start_at, kind",  # noqa: S608
            patient_id,
        )
    )


async def site_schedule(
    conn: Conn, site_id: str, since: datetime, until: datetime
) -> list[AppointmentRow]:
    return _appointments(
        await conn.fetch(
            f"SELECT {COLUMNS} FROM appointments WHERE site_id = $1 "  # noqa: S608
            "AND start_at < $3 AND end_at > $2 ORDER BY start_at, resource",
            site_id,
            since,
            until,
        )
    )


async def get_appointment(
    conn: Conn, appointment_id: str, *, for_update: bool = False
) -> AppointmentRow | None:
    sql = f"SELECT {COLUMNS} FROM appointments WHERE appointment_id = $1"  # noqa: S608
    row = await conn.fetchrow(sql + (" FOR UPDATE" if for_update else ""), appointment_id)
    return None if row is None else _appointment(row)


async def set_status(
    conn: Conn, appointment_id: str, status: str, cause: str | None = None
) -> AppointmentRow:
    row = await conn.fetchrow(
        f"UPDATE appointments SET status = $2, cause = coalesce($3, cause), updated_at = now() "  # noqa: S608
        f"WHERE appointment_id = $1 RETURNING {COLUMNS}",
        appointment_id,
        status,
        cause,
    )
    assert row is not None
    return _appointment(row)


async def paired_integration(conn: Conn, series_id: str, sequence: int) -> AppointmentRow | None:
    """The live integration session at ``sequence`` of a series, locked."""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM appointments WHERE series_id = $1 AND sequence = $2 "  # noqa: S608
        "AND kind = 'integration' AND status = ANY($3::text[]) FOR UPDATE",
        series_id,
        sequence,
        list(LIVE),
    )
    return None if row is None else _appointment(row)


async def released_integration(conn: Conn, series_id: str, sequence: int) -> AppointmentRow | None:
    """The latest cancelled or missed integration at ``sequence`` of a series."""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM appointments WHERE series_id = $1 AND sequence = $2 "  # noqa: S608
        "AND kind = 'integration' AND NOT (status = ANY($3::text[])) "
        "ORDER BY created_at DESC LIMIT 1",
        series_id,
        sequence,
        list(OCCUPYING),
    )
    return None if row is None else _appointment(row)


async def pending_maintenance(conn: Conn, patient_id: str, now: datetime) -> AppointmentRow | None:
    """The patient's next live maintenance session not started yet, if any (locked)."""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM appointments WHERE patient_id = $1 "  # noqa: S608
        "AND kind = 'maintenance' AND status = ANY($2::text[]) AND start_at > $3 "
        "ORDER BY start_at LIMIT 1 FOR UPDATE",
        patient_id,
        list(LIVE),
        now,
    )
    return None if row is None else _appointment(row)


async def future_live(conn: Conn, patient_id: str, after: datetime) -> list[AppointmentRow]:
    """The patient's live appointments starting after ``after``, locked (a discharge
    cancels them)."""
    return _appointments(
        await conn.fetch(
            f"SELECT {COLUMNS} FROM appointments WHERE patient_id = $1 "  # noqa: S608
            "AND status = ANY($2::text[]) AND start_at > $3 FOR UPDATE",
            patient_id,
            list(LIVE),
            after,
        )
    )


async def series_doses(conn: Conn, series_id: str) -> list[DoseRow]:
    """Every dose (not integration) of a series, whatever its status."""
    rows = await conn.fetch(
        "SELECT appointment_id, sequence, status, start_at, end_at FROM appointments "
        "WHERE series_id = $1 AND kind <> 'integration'",
        series_id,
    )
    return [DoseRow(*r) for r in rows]


async def series_dose(conn: Conn, series_id: str, sequence: int) -> DoseRow | None:
    """The dose at ``sequence`` of a series that was or will be given, if any (the latest
    of a rebooked sequence)."""
    row = await conn.fetchrow(
        "SELECT appointment_id, sequence, status, start_at, end_at FROM appointments "
        "WHERE series_id = $1 AND sequence = $2 AND kind <> 'integration' "
        "AND status = ANY($3::text[]) ORDER BY created_at DESC LIMIT 1",
        series_id,
        sequence,
        list(OCCUPYING),
    )
    return None if row is None else DoseRow(*row)


async def replaced_dose_start(conn: Conn, series_id: str, sequence: int) -> datetime | None:
    """When the released dose at ``sequence`` of a series was to start (the latest one)."""
    start: datetime | None = await conn.fetchval(
        "SELECT start_at FROM appointments WHERE series_id = $1 AND sequence = $2 "
        "AND kind <> 'integration' AND NOT (status = ANY($3::text[])) "
        "ORDER BY created_at DESC LIMIT 1",
        series_id,
        sequence,
        list(OCCUPYING),
    )
    return start


async def last_dose_started(conn: Conn, patient_id: str, now: datetime) -> datetime | None:
    """Start of the patient's latest dose that has begun by ``now`` and was not cancelled
    or missed (lifecycle.OCCUPYING; every series, maintenance included)."""
    result: datetime | None = await conn.fetchval(
        "SELECT max(start_at) FROM appointments WHERE patient_id = $1 "
        "AND kind <> 'integration' AND status = ANY($2::text[]) AND start_at <= $3",
        patient_id,
        list(OCCUPYING),
        now,
    )
    return result


async def patient_times(
    conn: Conn, patient_id: str, since: datetime, ignoring: str | None = None
) -> tuple[list[tuple[datetime, datetime]], list[datetime]]:
    """What the search needs of the patient, by one read (lifecycle.OCCUPYING: proposed,
    confirmed, completed): their sessions that take their time and end after ``since``,
    and the starts of every dose that was or will be given (every series, maintenance
    included) but ``ignoring`` (a dose about to be moved), in order: the spacing rule
    counts them all."""
    rows = await conn.fetch(
        "SELECT appointment_id, kind, start_at, end_at FROM appointments WHERE patient_id = $1 "
        "AND status = ANY($2::text[]) AND (end_at > $3 OR kind <> 'integration') "
        "ORDER BY start_at",
        patient_id,
        list(OCCUPYING),
        since,
    )
    busy = [(r["start_at"], r["end_at"]) for r in rows if r["end_at"] > since]
    doses = [
        r["start_at"]
        for r in rows
        if r["kind"] != "integration" and r["appointment_id"] != ignoring
    ]
    return busy, doses


async def booked_spans(conn: Conn, site_id: str, since: datetime, until: datetime) -> list[SpanRow]:
    """The site's sessions not cancelled overlapping [since, until), for utilisation."""
    rows = await conn.fetch(
        "SELECT kind, start_at, end_at FROM appointments WHERE site_id = $1 "
        "AND status <> 'cancelled' AND start_at < $3 AND end_at > $2",
        site_id,
        since,
        until,
    )
    return [SpanRow(*r) for r in rows]
