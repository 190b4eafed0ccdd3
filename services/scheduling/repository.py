"""All SQL of the scheduling service. Functions take a connection in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.scheduling.domain import lifecycle
from services.scheduling.schemas import SiteIn
from shared.db import Conn

LIVE = tuple(sorted(status.value for status in lifecycle.LIVE))
OCCUPYING = tuple(sorted(status.value for status in lifecycle.OCCUPYING))


async def upsert_site(
    conn: Conn,
    site_id: str,
    body: SiteIn,
    protocol: str,
    protocol_spec: Any,
    protocol_numbers: dict[str, Any],
) -> asyncpg.Record:
    """``protocol`` names the protocol (a preset, or ``custom``), ``protocol_spec`` is the
    body's protocol as given and ``protocol_numbers`` every number it resolves to."""
    row = await conn.fetchrow(
        """
        INSERT INTO sites (site_id, name, timezone, hours, treatment_rooms, therapists, protocol,
                           protocol_spec, protocol_numbers)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (site_id) DO UPDATE SET
            name = EXCLUDED.name, timezone = EXCLUDED.timezone, hours = EXCLUDED.hours,
            treatment_rooms = EXCLUDED.treatment_rooms, therapists = EXCLUDED.therapists,
            protocol = EXCLUDED.protocol, protocol_spec = EXCLUDED.protocol_spec,
            protocol_numbers = EXCLUDED.protocol_numbers, updated_at = now()
        RETURNING *
        """,
        site_id,
        body.name,
        body.timezone,
        {k: list(v) for k, v in body.hours.items()},
        body.treatment_rooms,
        body.therapists,
        protocol,
        protocol_spec,
        protocol_numbers,
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


@dataclass(frozen=True)
class NewSeries:
    """A series row to insert with its first sessions."""

    series_id: str
    patient_id: str
    site_id: str
    purpose: str
    protocol: str
    relaxed: Sequence[str]
    protocol_numbers: dict[str, Any] | None = None
    intake_id: str | None = None


# One statement, one round trip under the site's lock (services/scheduling/planner.py):
# the series (when new), its sessions, their events in the outbox (in order) and the
# patient's waitlist entry they answer. Foreign keys are checked at the statement's end,
# so the sessions may reference the series inserted beside them.
_BOOK = """
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
    DELETE FROM waitlist
    WHERE patient_id = $2 AND purpose = $4
      AND series_id IS NOT DISTINCT FROM $21::text AND sequence IS NOT DISTINCT FROM $22::int
      AND kind IS NOT DISTINCT FROM $23::text
)
INSERT INTO outbox (event_id, topic, key, value)
SELECT o.id, o.topic, o.key, o.value
FROM unnest($17::uuid[], $18::text[], $19::text[], $20::bytea[])
     WITH ORDINALITY AS o(id, topic, key, value, n)
ORDER BY o.n
"""


async def book(
    conn: Conn,
    series: NewSeries,
    *,
    new: bool,
    sessions: Sequence[tuple[str, str, int, datetime, datetime, str, str | None]],
    events: Sequence[tuple[str, str, str, bytes]],
    place: tuple[str, int, str] | None = None,
) -> None:
    """Insert ``sessions`` (id, kind, sequence, start, end, resource, replaces) of
    ``series`` (the series row too when ``new``) and their outbox ``events``; the
    patient's waitlist entry for the series' purpose at ``place`` goes (see
    ``waitlist_remove``).

    Raises asyncpg.ExclusionViolationError when another transaction booked an overlap.
    """
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
        [x[0] for x in sessions],
        [x[1] for x in sessions],
        [x[2] for x in sessions],
        [x[3] for x in sessions],
        [x[4] for x in sessions],
        [x[5] for x in sessions],
        [x[6] for x in sessions],
        [e[0] for e in events],
        [e[1] for e in events],
        [e[2] for e in events],
        [e[3] for e in events],
        *(place or (None, None, None)),
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
        "SELECT sequence, status, start_at, end_at FROM appointments "
        "WHERE series_id = $1 AND kind <> 'integration'",
        series_id,
    )


async def series_dose(conn: Conn, series_id: str, sequence: int) -> asyncpg.Record | None:
    """The dose at ``sequence`` of a series that was or will be given, if any (the latest
    of a rebooked sequence)."""
    return await conn.fetchrow(
        "SELECT appointment_id, status, start_at, end_at FROM appointments "
        "WHERE series_id = $1 AND sequence = $2 AND kind <> 'integration' "
        "AND status = ANY($3::text[]) ORDER BY created_at DESC LIMIT 1",
        series_id,
        sequence,
        list(OCCUPYING),
    )


async def released_integration(conn: Conn, series_id: str, sequence: int) -> asyncpg.Record | None:
    """The latest cancelled or missed integration at ``sequence`` of a series."""
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM appointments WHERE series_id = $1 AND sequence = $2 "  # noqa: S608
        "AND kind = 'integration' AND NOT (status = ANY($3::text[])) "
        "ORDER BY created_at DESC LIMIT 1",
        series_id,
        sequence,
        list(OCCUPYING),
    )


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


async def pending_maintenance(conn: Conn, patient_id: str, now: datetime) -> asyncpg.Record | None:
    """The patient's next live maintenance session not started yet, if any (locked)."""
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM appointments WHERE patient_id = $1 "  # noqa: S608
        "AND kind = 'maintenance' AND status = ANY($2::text[]) AND start_at > $3 "
        "ORDER BY start_at LIMIT 1 FOR UPDATE",
        patient_id,
        list(LIVE),
        now,
    )


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


async def patient_doses(conn: Conn, patient_id: str, ignoring: str | None = None) -> list[datetime]:
    """Starts of every dose of the patient that was or will be given (lifecycle.OCCUPYING:
    proposed, confirmed, completed; every series, maintenance included), but ``ignoring``
    (a dose about to be moved): the spacing rule counts them all."""
    rows = await conn.fetch(
        "SELECT start_at FROM appointments WHERE patient_id = $1 AND kind <> 'integration' "
        "AND status = ANY($2::text[]) AND appointment_id IS DISTINCT FROM $3 ORDER BY start_at",
        patient_id,
        list(OCCUPYING),
        ignoring,
    )
    return [r["start_at"] for r in rows]


async def upsert_patient(
    conn: Conn, patient_id: str, site_id: str, preferences: dict[str, Any] | None
) -> None:
    """Create the patient, or take the site and preferences of their latest intake
    (the caller has checked that it is the latest). Never touches the discharge."""
    await conn.execute(
        "INSERT INTO patients (patient_id, site_id, preferences) VALUES ($1, $2, $3) "
        "ON CONFLICT (patient_id) DO UPDATE SET site_id = EXCLUDED.site_id, "
        "preferences = EXCLUDED.preferences",
        patient_id,
        site_id,
        preferences,
    )


async def ensure_patient(conn: Conn, patient_id: str, site_id: str) -> None:
    await conn.execute(
        "INSERT INTO patients (patient_id, site_id) VALUES ($1, $2) "
        "ON CONFLICT (patient_id) DO NOTHING",
        patient_id,
        site_id,
    )


async def serialize_patient(conn: Conn, patient_id: str) -> None:
    """Take the patient's transaction lock (held to commit) before reading anything about
    them: events of one patient arrive on several topics and may be handled at once by
    different workers; this makes them take turns, each seeing what the other committed."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('scheduling.patient'), hashtext($1))", patient_id
    )


async def serialize_site(conn: Conn, site_id: str) -> None:
    """Take the site's booking lock (held to commit), always after the patient's: one
    transaction at a time plans and books at a site. Concurrent bookings at one site
    (a worker's partitions are handled at once) waited on each other's rows through
    the exclusion constraints and deadlocked; planning on a calendar nobody else is
    changing also never loses a race."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('scheduling.site'), hashtext($1))", site_id
    )


async def lock_patient(conn: Conn, patient_id: str) -> asyncpg.Record | None:
    """The patient's row, locked: one worker at a time decides for a patient."""
    return await conn.fetchrow(
        "SELECT * FROM patients WHERE patient_id = $1 FOR UPDATE", patient_id
    )


async def set_latest_intake(
    conn: Conn, patient_id: str, intake_id: str, submitted_at: datetime, decision: str
) -> None:
    await conn.execute(
        "UPDATE patients SET intake_id = $2, intake_submitted_at = $3, decision = $4 "
        "WHERE patient_id = $1",
        patient_id,
        intake_id,
        submitted_at,
        decision,
    )


async def start_course(conn: Conn, patient_id: str, started_at: datetime) -> None:
    """A new course of treatment: the discharge (if any) is over."""
    await conn.execute(
        "UPDATE patients SET discharged_at = NULL, course_started_at = $2 WHERE patient_id = $1",
        patient_id,
        started_at,
    )


async def record_review(
    conn: Conn, intake_id: str, patient_id: str, outcome: str, at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO intake_reviews (intake_id, patient_id, outcome, reviewed_at) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (intake_id) DO NOTHING",
        intake_id,
        patient_id,
        outcome,
        at,
    )


STANDING = """
    SELECT p.patient_id, p.site_id, p.preferences, p.discharged_at, p.decision,
           p.intake_id, p.course_started_at, r.outcome AS review,
           (SELECT min(h.since) FROM holds h
             WHERE h.patient_id = p.patient_id AND h.resolved_at IS NULL) AS held_since
    FROM patients p LEFT JOIN intake_reviews r ON r.intake_id = p.intake_id
    WHERE p.patient_id = $1
"""


async def standing(conn: Conn, patient_id: str) -> asyncpg.Record | None:
    """The patient with their latest intake's review and the start of any hold."""
    return await conn.fetchrow(STANDING, patient_id)


async def record_hold(
    conn: Conn,
    alert_id: str,
    patient_id: str,
    site_id: str,
    since: datetime,
    resolved_at: datetime | None,
) -> None:
    """A suicide_risk alert seen in any state; a resolution, once seen, is never undone
    by an older event of the same alert arriving later."""
    await conn.execute(
        "INSERT INTO holds (alert_id, patient_id, site_id, since, resolved_at) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (alert_id) DO UPDATE SET "
        "resolved_at = coalesce(holds.resolved_at, EXCLUDED.resolved_at)",
        alert_id,
        patient_id,
        site_id,
        since,
        resolved_at,
    )


async def record_checkin_hold(
    conn: Conn, checkin_id: str, patient_id: str, site_id: str, since: datetime
) -> None:
    """A hold taken at once from a check-in's suicide-risk signal; already resolved if a
    suicide_risk alert of the patient was resolved at or after it (its event may be seen
    before the check-in's, on another topic)."""
    await conn.execute(
        "INSERT INTO holds (alert_id, patient_id, site_id, since, resolved_at) "
        "VALUES ($1, $2, $3, $4, (SELECT min(resolved_at) FROM holds WHERE patient_id = $2 "
        "AND alert_id NOT LIKE 'checkin:%' AND resolved_at >= $4)) "
        "ON CONFLICT (alert_id) DO NOTHING",
        f"checkin:{checkin_id}",
        patient_id,
        site_id,
        since,
    )


async def resolve_checkin_holds(conn: Conn, patient_id: str, at: datetime) -> None:
    """Holds taken at once from a check-in's suicide-risk signal (before its alert's event
    arrived) end when a suicide_risk alert of the patient is resolved after them."""
    await conn.execute(
        "UPDATE holds SET resolved_at = $2 WHERE patient_id = $1 AND resolved_at IS NULL "
        "AND alert_id LIKE 'checkin:%' AND since <= $2",
        patient_id,
        at,
    )


async def hold(conn: Conn, patient_id: str) -> datetime | None:
    """Since when the patient is held (None: not held)."""
    since: datetime | None = await conn.fetchval(
        "SELECT min(since) FROM holds WHERE patient_id = $1 AND resolved_at IS NULL", patient_id
    )
    return since


async def site_holds(conn: Conn, site_id: str | None) -> list[asyncpg.Record]:
    """Held patients (optionally of one site), longest held first."""
    return await conn.fetch(
        "SELECT patient_id, site_id, min(since) AS since FROM holds "
        "WHERE resolved_at IS NULL AND ($1::text IS NULL OR site_id = $1) "
        "GROUP BY patient_id, site_id ORDER BY since",
        site_id,
    )


async def knows_patient(conn: Conn, patient_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM patients WHERE patient_id = $1) "
            "OR EXISTS (SELECT 1 FROM holds WHERE patient_id = $1)",
            patient_id,
        )
    )


async def waitlist_for_patient(conn: Conn, patient_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM waitlist WHERE patient_id = $1 ORDER BY since FOR UPDATE SKIP LOCKED",
        patient_id,
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
        series_id,
        sequence,
        kind,
    )
    return bool(first)


async def waitlist_remove(
    conn: Conn, patient_id: str, purpose: str, place: tuple[str, int, str] | None = None
) -> None:
    """The patient's entry for ``purpose`` at ``place`` ((series, sequence, kind); None:
    the entry with no place, e.g. an induction or a new maintenance session)."""
    series_id, sequence, kind = place or (None, None, None)
    await conn.execute(
        "DELETE FROM waitlist WHERE patient_id = $1 AND purpose = $2 "
        "AND series_id IS NOT DISTINCT FROM $3 AND sequence IS NOT DISTINCT FROM $4 "
        "AND kind IS NOT DISTINCT FROM $5",
        patient_id,
        purpose,
        series_id,
        sequence,
        kind,
    )


async def waiting_sequences(conn: Conn, series_id: str) -> set[int]:
    """Sequences of a series with a replacement waiting for capacity (or a hold)."""
    rows = await conn.fetch(
        "SELECT sequence FROM waitlist WHERE series_id = $1 AND kind <> 'integration'", series_id
    )
    return {r["sequence"] for r in rows}


async def waitlist_for_site(conn: Conn, site_id: str, limit: int) -> list[asyncpg.Record]:
    """The oldest waiting patients of a site, locked so two workers don't retry the same.
    Held patients are left out: what they wait for is retried when their hold lifts."""
    return await conn.fetch(
        "SELECT * FROM waitlist w WHERE site_id = $1 AND NOT EXISTS (SELECT 1 FROM holds h "
        "WHERE h.patient_id = w.patient_id AND h.resolved_at IS NULL) "
        "ORDER BY since LIMIT $2 FOR UPDATE SKIP LOCKED",
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
