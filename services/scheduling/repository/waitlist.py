"""The waitlist: patients waiting for capacity, for their site, or for a hold to lift.

A patient has one entry per purpose and place (migrations/0006_waitlist_per_place.sql):
the place of a rebooking is its (series, sequence, kind); an induction or a new
maintenance session has none.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from services.scheduling.rows import Place, WaitlistRow
from shared.db import Conn

_COLUMNS = (
    "patient_id, site_id, purpose, reason, preferences, not_before, series_id, sequence, "
    "kind, since, attempts"
)


def entry_at_place(*, patient: int, purpose: int, place: int) -> str:
    """The predicate of the patient's entry for a purpose at a place (no place: the entry
    with none), over query parameters ``$patient``, ``$purpose`` and the three of
    ``place_values`` from ``$place`` on. Stated once: ``remove`` and the booking that
    answers the entry (series.book) delete the same entry."""
    return (
        f"patient_id = ${patient} AND purpose = ${purpose} "
        f"AND series_id IS NOT DISTINCT FROM ${place}::text "
        f"AND sequence IS NOT DISTINCT FROM ${place + 1}::int "
        f"AND kind IS NOT DISTINCT FROM ${place + 2}::text"
    )


def place_values(place: Place | None) -> tuple[str | None, int | None, str | None]:
    if place is None:
        return None, None, None
    return place.series_id, place.sequence, place.kind


def _entry(r: asyncpg.Record) -> WaitlistRow:
    series_id = r["series_id"]
    return WaitlistRow(
        patient_id=r["patient_id"],
        site_id=r["site_id"],
        purpose=r["purpose"],
        reason=r["reason"],
        preferences=r["preferences"],
        not_before=r["not_before"],
        place=None if series_id is None else Place(series_id, r["sequence"], r["kind"]),
        since=r["since"],
        attempts=r["attempts"],
    )


async def add(
    conn: Conn,
    patient_id: str,
    site_id: str,
    purpose: str,
    reason: str,
    preferences: dict[str, Any] | None,
    not_before: datetime | None,
    place: Place | None = None,
) -> bool:
    """Add or refresh a waitlist entry; True when the patient was not waiting already."""
    first = await conn.fetchval(
        """
        INSERT INTO waitlist AS w (patient_id, site_id, purpose, reason, preferences, not_before,
                                   series_id, sequence, kind)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (patient_id, purpose, (coalesce(series_id, '')), (coalesce(sequence, 0)),
                     (coalesce(kind, ''))) DO UPDATE SET
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
        *place_values(place),
    )
    return bool(first)


_REMOVE = f"DELETE FROM waitlist WHERE {entry_at_place(patient=1, purpose=2, place=3)}"  # noqa: S608


async def remove(conn: Conn, patient_id: str, purpose: str, place: Place | None = None) -> None:
    """The patient's entry for ``purpose`` at ``place`` (None: the entry with no place,
    e.g. an induction or a new maintenance session)."""
    await conn.execute(_REMOVE, patient_id, purpose, *place_values(place))


async def remove_patient(conn: Conn, patient_id: str) -> None:
    """Every entry of the patient (discharged: nothing is waited for any more)."""
    await conn.execute("DELETE FROM waitlist WHERE patient_id = $1", patient_id)


async def waiting_sequences(conn: Conn, series_id: str) -> set[int]:
    """Sequences of a series with a replacement waiting for capacity (or a hold)."""
    rows = await conn.fetch(
        "SELECT sequence FROM waitlist WHERE series_id = $1 AND kind <> 'integration'", series_id
    )
    return {r["sequence"] for r in rows}


async def for_site(conn: Conn, site_id: str, limit: int) -> list[WaitlistRow]:
    """The oldest waiting patients of a site, locked so two workers don't retry the same.
    Held patients are left out: what they wait for is retried when their hold lifts."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM waitlist w WHERE site_id = $1 "  # noqa: S608
        "AND NOT EXISTS (SELECT 1 FROM holds h "
        "WHERE h.patient_id = w.patient_id AND h.resolved_at IS NULL) "
        "ORDER BY since LIMIT $2 FOR UPDATE SKIP LOCKED",
        site_id,
        limit,
    )
    return [_entry(r) for r in rows]


async def for_patient(conn: Conn, patient_id: str) -> list[WaitlistRow]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM waitlist WHERE patient_id = $1 "  # noqa: S608
        "ORDER BY since FOR UPDATE SKIP LOCKED",
        patient_id,
    )
    return [_entry(r) for r in rows]


async def sites(conn: Conn) -> list[str]:
    """Every site with someone waiting."""
    rows = await conn.fetch("SELECT DISTINCT site_id FROM waitlist")
    return [r["site_id"] for r in rows]


async def entries(conn: Conn, site_id: str | None) -> list[WaitlistRow]:
    """Every entry (optionally of one site), oldest first."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM waitlist "  # noqa: S608
        "WHERE $1::text IS NULL OR site_id = $1 ORDER BY since",
        site_id,
    )
    return [_entry(r) for r in rows]


async def count(conn: Conn, site_id: str) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM waitlist WHERE site_id = $1", site_id))
