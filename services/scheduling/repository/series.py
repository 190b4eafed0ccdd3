"""Series: a patient's planned sessions of one purpose, and booking them (one statement)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from services.scheduling.domain.lifecycle import Status
from services.scheduling.domain.model import stored_protocol
from services.scheduling.repository.appointments import LIVE
from services.scheduling.repository.waitlist import entry_at_place, place_values
from services.scheduling.rows import (
    InductionRow,
    NewSeries,
    NewSession,
    Place,
    SeriesRow,
    SlotTaken,
)
from shared.db import Conn

# One statement, one round trip under the site's lock (services/scheduling/planner/booking.py):
# the series (when new), its sessions, their events in the outbox (in order) and the
# patient's waitlist entry they answer. Foreign keys are checked at the statement's end,
# so the sessions may reference the series inserted beside them.
_BOOK = f"""
WITH new_series AS (
    INSERT INTO series (series_id, patient_id, site_id, purpose, protocol, relaxed,
                        protocol_numbers, intake_id)
    SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text[], $7::jsonb, $8::text
    WHERE $9::boolean
), sessions AS (
    INSERT INTO appointments (appointment_id, series_id, patient_id, site_id, kind, sequence,
                              status, start_at, end_at, resource, reason, replaces)
    SELECT u.id, $1, $2, $3, u.kind, u.seq, 'proposed', u.s, u.e, u.res, $4, u.rep
    FROM unnest($10::text[], $11::text[], $12::int[], $13::timestamptz[], $14::timestamptz[],
                $15::text[], $16::text[]) AS u(id, kind, seq, s, e, res, rep)
), answered AS (
    DELETE FROM waitlist WHERE {entry_at_place(patient=2, purpose=4, place=21)}
)
INSERT INTO outbox (event_id, topic, key, value)
SELECT o.id, o.topic, o.key, o.value
FROM unnest($17::uuid[], $18::text[], $19::text[], $20::bytea[])
     WITH ORDINALITY AS o(id, topic, key, value, n)
ORDER BY o.n
"""  # noqa: S608


async def book(
    conn: Conn,
    series: NewSeries,
    *,
    new: bool,
    sessions: Sequence[NewSession],
    events: Sequence[tuple[str, str, str, bytes]],
    place: Place | None = None,
) -> None:
    """Insert ``sessions`` of ``series`` (the series row too when ``new``) and their
    outbox ``events`` (shared.outbox.row); the patient's waitlist entry for the series'
    purpose at ``place`` goes (the entry ``waitlist.remove`` would delete).

    Raises SlotTaken (rows.py) when another transaction booked an overlap.
    """
    try:
        await conn.execute(
            _BOOK,
            series.series_id,
            series.patient_id,
            series.site_id,
            series.purpose,
            series.protocol,
            list(series.relaxed),
            series.protocol_numbers,
            series.intake_id,
            new,
            [s.appointment_id for s in sessions],
            [s.kind for s in sessions],
            [s.sequence for s in sessions],
            [s.start for s in sessions],
            [s.end for s in sessions],
            [s.resource for s in sessions],
            [s.replaces for s in sessions],
            [e[0] for e in events],
            [e[1] for e in events],
            [e[2] for e in events],
            [e[3] for e in events],
            *place_values(place),
        )
    except asyncpg.ExclusionViolationError as exc:
        raise SlotTaken(str(exc)) from exc


async def get_series(conn: Conn, series_id: str) -> SeriesRow | None:
    row = await conn.fetchrow(
        "SELECT series_id, patient_id, site_id, purpose, protocol, protocol_numbers "
        "FROM series WHERE series_id = $1",
        series_id,
    )
    return None if row is None else SeriesRow(*row)


async def inductions(conn: Conn, site_id: str) -> list[InductionRow]:
    """The site's induction series: whether a dose is still planned, which were completed."""
    rows = await conn.fetch(
        """
        SELECT s.patient_id, s.protocol, s.protocol_numbers,
               EXISTS (SELECT 1 FROM appointments a WHERE a.series_id = s.series_id
                       AND a.kind = 'dosing' AND a.status = ANY($2::text[])) AS live,
               ARRAY(SELECT DISTINCT a.sequence FROM appointments a
                     WHERE a.series_id = s.series_id
                       AND a.kind = 'dosing' AND a.status = $3) AS done
        FROM series s
        WHERE s.site_id = $1 AND s.purpose = 'induction'
        """,
        site_id,
        list(LIVE),
        Status.completed.value,
    )
    return [
        InductionRow(
            patient_id=r["patient_id"],
            protocol=stored_protocol(r["protocol"], r["protocol_numbers"]),
            live=r["live"],
            done=tuple(r["done"]),
        )
        for r in rows
    ]
