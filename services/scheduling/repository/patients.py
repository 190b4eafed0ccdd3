"""Patients as scheduling knows them from intake's and alerts' events: their site and
preferences, their latest intake and its review, their course, their holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from services.scheduling.rows import CourseStanding, HeldRow, PatientRow, StandingRow
from shared.db import Conn

_COLUMNS = (
    "patient_id, site_id, preferences, discharged_at, intake_id, intake_submitted_at, "
    "decision, course_started_at"
)


async def serialize_patient(conn: Conn, patient_id: str) -> None:
    """Take the patient's transaction lock (held to commit) before reading anything about
    them: events of one patient arrive on several topics and may be handled at once by
    different workers; this makes them take turns, each seeing what the other committed."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('scheduling.patient'), hashtext($1))", patient_id
    )


async def get_patient(conn: Conn, patient_id: str) -> PatientRow | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM patients WHERE patient_id = $1", patient_id)  # noqa: S608
    return None if row is None else PatientRow(*row)


async def lock_patient(conn: Conn, patient_id: str) -> PatientRow | None:
    """The patient's row, locked: one worker at a time decides for a patient."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM patients WHERE patient_id = $1 FOR UPDATE",  # noqa: S608
        patient_id,
    )
    return None if row is None else PatientRow(*row)


# The patient's advisory lock (``serialize_patient``) is taken while the row to insert
# is produced, so before the upsert looks at the table: the same order as the two
# statements, in one round trip. A sub-select with a volatile function in its target
# list is never flattened into the outer query, so the lock is always taken.
_SERIALIZED_LOCKED = (
    "INSERT INTO patients (patient_id, site_id) "  # noqa: S608 (constants)
    "SELECT $1, $2 FROM (SELECT pg_advisory_xact_lock(hashtext('scheduling.patient'), "
    "hashtext($1))) AS serialized "
    "ON CONFLICT (patient_id) DO UPDATE SET site_id = patients.site_id "
    f"RETURNING {_COLUMNS}"
)


async def serialized_locked_patient(conn: Conn, patient_id: str, site_id: str) -> PatientRow:
    """``serialize_patient``, then the patient's row, created at ``site_id`` when new,
    locked (as ``lock_patient``): one statement (an upsert that changes nothing locks the
    row it finds)."""
    row = await conn.fetchrow(_SERIALIZED_LOCKED, patient_id, site_id)
    assert row is not None
    return PatientRow(*row)


# The patient's standing (``standing``) from ``{source}``: the table, or a CTE of the row.
_STANDING_OF = """
    SELECT p.patient_id, p.site_id, p.preferences, p.discharged_at, p.decision,
           r.outcome AS review,
           (SELECT min(h.since) FROM holds h
             WHERE h.patient_id = p.patient_id AND h.resolved_at IS NULL) AS held_since
    FROM {source} p LEFT JOIN intake_reviews r ON r.intake_id = p.intake_id
    WHERE p.patient_id = $1
"""
_STANDING = _STANDING_OF.format(source="patients")
# ``_STANDING_OF`` and whether the patient has an induction series (``CourseStanding``)
_COURSE_STANDING_OF = _STANDING_OF.replace(
    "AS held_since",
    "AS held_since, EXISTS (SELECT 1 FROM series s WHERE s.patient_id = p.patient_id "
    "AND s.purpose = 'induction') AS has_induction",
)
_TAKE_INTAKE = """
    WITH p AS (
        UPDATE patients SET site_id = $2, preferences = $3, intake_id = $4,
                            intake_submitted_at = $5, decision = $6
        WHERE patient_id = $1
        RETURNING patient_id, site_id, preferences, discharged_at, decision, intake_id
    )
    """ + _COURSE_STANDING_OF.format(source="p")  # noqa: S608 (constants)


def _course_standing(row: asyncpg.Record) -> CourseStanding:
    *standing, has_induction = row
    return CourseStanding(StandingRow(*standing), bool(has_induction))


async def take_intake(
    conn: Conn,
    patient_id: str,
    site_id: str,
    preferences: dict[str, Any] | None,
    intake_id: str,
    submitted_at: datetime,
    decision: str,
) -> CourseStanding:
    """The patient's latest intake (the caller has checked that it is the latest and
    holds the patient's row): its site, preferences and decision. Never touches the
    discharge. Returns the patient's standing as it now is (``course_standing``), read by
    the same statement."""
    row = await conn.fetchrow(
        _TAKE_INTAKE,
        patient_id,
        site_id,
        preferences,
        intake_id,
        submitted_at,
        decision,
    )
    assert row is not None, "take_intake: the caller holds the patient's row"
    return _course_standing(row)


async def course_standing(conn: Conn, patient_id: str) -> CourseStanding | None:
    """``standing``, and whether the patient has an induction series, by one read."""
    row = await conn.fetchrow(_COURSE_STANDING_OF.format(source="patients"), patient_id)
    return None if row is None else _course_standing(row)


_START_COURSE = """
    WITH p AS (
        UPDATE patients SET discharged_at = NULL, course_started_at = $2
        WHERE patient_id = $1
        RETURNING patient_id, site_id, preferences, discharged_at, decision, intake_id
    )
    """ + _STANDING_OF.format(source="p")  # noqa: S608 (constants)


async def start_course(conn: Conn, patient_id: str, started_at: datetime) -> StandingRow:
    """A new course of treatment: the discharge (if any) is over. Returns the patient's
    standing as it now is (``standing``), read by the same statement."""
    row = await conn.fetchrow(_START_COURSE, patient_id, started_at)
    assert row is not None, "start_course: the caller holds the patient's row"
    return StandingRow(*row)


async def discharge(conn: Conn, patient_id: str, at: datetime) -> None:
    """Mark discharged (the waitlist entries and the future sessions are the caller's:
    waitlist.remove_patient, appointments.future_live)."""
    await conn.execute(
        "UPDATE patients SET discharged_at = $2 WHERE patient_id = $1", patient_id, at
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


async def standing(conn: Conn, patient_id: str) -> StandingRow | None:
    """The patient with their latest intake's review and the start of any hold."""
    row = await conn.fetchrow(_STANDING, patient_id)
    return None if row is None else StandingRow(*row)


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


async def site_holds(conn: Conn, site_id: str | None) -> list[HeldRow]:
    """Held patients (optionally of one site), longest held first."""
    rows = await conn.fetch(
        "SELECT patient_id, site_id, min(since) AS since FROM holds "
        "WHERE resolved_at IS NULL AND ($1::text IS NULL OR site_id = $1) "
        "GROUP BY patient_id, site_id ORDER BY since",
        site_id,
    )
    return [HeldRow(*r) for r in rows]


async def knows_patient(conn: Conn, patient_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM patients WHERE patient_id = $1) "
            "OR EXISTS (SELECT 1 FROM holds WHERE patient_id = $1)",
            patient_id,
        )
    )
