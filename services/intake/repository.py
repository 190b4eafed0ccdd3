"""All SQL of the intake service. Functions take a connection inside the caller's transaction.

PHI (name, birth date, phone, e-mail, every free-text note) is encrypted here, with the
service's PhiCipher, before it reaches a statement: the database only ever holds Fernet
tokens for it (migration 0002; shared/crypto.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from services.intake.rows import (
    CheckinContext,
    CheckinRow,
    IntakeRow,
    MeasureRow,
    NewCheckin,
    NewIntake,
    PatientRow,
)
from shared import outbox
from shared.crypto import PhiCipher
from shared.db import Conn
from shared.events import CloudEvent


def intake_row(r: asyncpg.Record) -> IntakeRow:
    return IntakeRow(
        intake_id=r["intake_id"],
        patient_id=r["patient_id"],
        site_id=r["site_id"],
        submitted_at=r["submitted_at"],
        digest=bytes(r["body_hash"]),
        decision=r["decision"],
        reasons=tuple(r["reasons"]),
        phq9_total=r["phq9_total"],
        phq9_severity=r["phq9_severity"],
        suicide_risk=r["suicide_risk"],
        phq9_item9_positive=r["phq9_item9_positive"],
        preferences=r["preferences"],
        review_outcome=r["review_outcome"],
        reviewed_by=r["reviewed_by"],
        reviewed_at=r["reviewed_at"],
    )


def _checkin(r: asyncpg.Record) -> CheckinRow:
    return CheckinRow(
        checkin_id=r["checkin_id"],
        patient_id=r["patient_id"],
        submitted_at=r["submitted_at"],
        phq9_total=r["phq9_total"],
        suicidal_ideation=r["suicidal_ideation"],
        response=r["response"],
        remission=r["remission"],
        worsening=r["worsening"],
        worsening_reasons=tuple(r["worsening_reasons"]),
    )


async def find_intake(conn: Conn, intake_id: str, *, for_update: bool = False) -> IntakeRow | None:
    sql = "SELECT * FROM intakes WHERE intake_id = $1"
    row = await conn.fetchrow(sql + (" FOR UPDATE" if for_update else ""), intake_id)
    return intake_row(row) if row is not None else None


# The intake, its patient (PHI encrypted) and its events, in one atomic statement.
_CREATE_INTAKE = f"""
    WITH i AS (
        INSERT INTO intakes (intake_id, patient_id, site_id, submitted_at, body_hash, phq9,
            phq9_total, phq9_severity, phq9_item9_positive, suicide_risk, decision,
            reasons, conditions, preferences)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        ON CONFLICT (intake_id) DO NOTHING
        RETURNING intake_id
    ), p AS (
        INSERT INTO patients AS cur (patient_id, site_id, name, date_of_birth, phone, email,
            baseline_intake_id, baseline_total, treatment_started_at)
        SELECT $2, $3, $15, $16, $17, $18, $1, $7, $4 FROM i
        ON CONFLICT (patient_id) DO UPDATE SET
            name = EXCLUDED.name, date_of_birth = EXCLUDED.date_of_birth,
            phone = EXCLUDED.phone, email = EXCLUDED.email, updated_at = now(),
            legacy_name = NULL, legacy_date_of_birth = NULL, legacy_phone = NULL,
            legacy_email = NULL,
            site_id = CASE WHEN EXCLUDED.treatment_started_at >= cur.treatment_started_at
                THEN EXCLUDED.site_id ELSE cur.site_id END,
            baseline_intake_id = CASE
                WHEN EXCLUDED.treatment_started_at >= cur.treatment_started_at
                THEN EXCLUDED.baseline_intake_id ELSE cur.baseline_intake_id END,
            baseline_total = CASE WHEN EXCLUDED.treatment_started_at >= cur.treatment_started_at
                THEN EXCLUDED.baseline_total ELSE cur.baseline_total END,
            discharged_at = CASE WHEN EXCLUDED.treatment_started_at >= cur.treatment_started_at
                THEN NULL ELSE cur.discharged_at END,
            treatment_started_at = GREATEST(cur.treatment_started_at,
                                            EXCLUDED.treatment_started_at),
            version = cur.version + 1
        RETURNING 1
    ), o AS (
        {outbox.insert_sql(19, only_with="i")}
    )
    SELECT count(*) FROM i
    """  # noqa: S608 (our own fragment, no input)


async def create_intake(
    conn: Conn,
    intake: NewIntake,
    announce: Sequence[tuple[CloudEvent, int]],
    cipher: PhiCipher,
) -> bool:
    """Store the intake, the patient's PHI (encrypted) and its events (each with its
    outbox priority, in order) in one atomic statement: on a connection outside a
    transaction it commits on its own, one round trip in all.

    Returns False (and changes nothing) when the intake id already exists, so a
    racing duplicate never overwrites the patient. The latest intake by submission
    time is the patient's baseline; a late older one does not start a new course.
    """
    phi, score, verdict = intake.phi, intake.score, intake.verdict
    inserted = await conn.fetchval(
        _CREATE_INTAKE,
        intake.intake_id,
        intake.patient_id,
        intake.site_id,
        intake.submitted_at,
        intake.digest,
        list(intake.phq9),
        score.total,
        str(score.severity),
        score.item9_positive,
        str(verdict.suicide_risk),
        str(verdict.decision),
        list(verdict.reasons),
        list(intake.conditions),
        intake.preferences,
        cipher.encrypt(phi.name),
        cipher.encrypt(phi.date_of_birth),
        cipher.encrypt(phi.phone),
        cipher.encrypt(phi.email),
        *outbox.arrays(announce),
    )
    return bool(inserted)


async def record_review(
    conn: Conn,
    intake_id: str,
    outcome: str,
    by: str,
    note: str | None,
    at: datetime,
    cipher: PhiCipher,
) -> None:
    await conn.execute(
        "UPDATE intakes SET review_outcome = $2, reviewed_by = $3, review_note = $4, "
        "reviewed_at = $5 WHERE intake_id = $1",
        intake_id,
        outcome,
        by,
        cipher.encrypt(note),
        at,
    )


async def find_patient(
    conn: Conn, patient_id: str, *, for_update: bool = False
) -> PatientRow | None:
    sql = (
        "SELECT patient_id, site_id, baseline_total, treatment_started_at, discharged_at "
        "FROM patients WHERE patient_id = $1"
    )
    row = await conn.fetchrow(sql + (" FOR UPDATE" if for_update else ""), patient_id)
    return PatientRow(**dict(row)) if row is not None else None


async def lock_patient(conn: Conn, patient_id: str) -> None:
    """Hold the patient's row until the caller's transaction ends: check-ins of the
    patient (and intakes starting a new course) wait for it."""
    await conn.execute("SELECT 1 FROM patients WHERE patient_id = $1 FOR UPDATE", patient_id)


async def find_checkin(conn: Conn, checkin_id: str) -> CheckinRow | None:
    row = await conn.fetchrow("SELECT * FROM checkins WHERE checkin_id = $1", checkin_id)
    return _checkin(row) if row is not None else None


_CHECKIN_CONTEXT = (
    "SELECT p.patient_id, p.site_id, p.baseline_total, p.treatment_started_at, "
    "p.discharged_at, p.version, "
    "(SELECT body_hash FROM checkins WHERE checkin_id = $1) AS existing, "
    "ARRAY(SELECT c.phq9_total FROM checkins c WHERE c.patient_id = p.patient_id "
    "AND c.phq9_total IS NOT NULL AND c.submitted_at >= p.treatment_started_at "
    "AND c.submitted_at <= $3 ORDER BY c.submitted_at, c.arrival) AS prior "
    "FROM patients p WHERE p.patient_id = $2"
)


async def checkin_context(
    conn: Conn, checkin_id: str, patient_id: str, submitted_at: datetime
) -> CheckinContext | None:
    """What a new check-in's verdict depends on, in one consistent read (one statement,
    one snapshot; None: no such patient): the patient, their version (migration 0004),
    the body hash of a stored check-in with this id (None: it is new), and the PHQ-9
    totals of the check-ins earlier than the new one in this course of treatment, oldest
    first.

    Check-ins are ordered by submission time, then arrival (migration 0003): earlier
    means submitted earlier, or at the same instant and received earlier. Every
    check-in this read sees was received before the new one, so those at exactly
    ``submitted_at`` count too; one committed after it changed the version, and
    ``insert_checkin`` then stores nothing.
    """
    row = await conn.fetchrow(
        _CHECKIN_CONTEXT,
        checkin_id,
        patient_id,
        submitted_at,
    )
    if row is None:
        return None
    existing = row["existing"]
    return CheckinContext(
        patient=PatientRow(
            patient_id=row["patient_id"],
            site_id=row["site_id"],
            baseline_total=row["baseline_total"],
            treatment_started_at=row["treatment_started_at"],
            discharged_at=row["discharged_at"],
        ),
        version=row["version"],
        existing=bytes(existing) if existing is not None else None,
        prior=list(row["prior"]),
    )


_INSERT_CHECKIN = f"""
    WITH v AS (
        UPDATE patients SET version = version + 1
        WHERE patient_id = $2 AND version = $19
        RETURNING 1
    ), c AS (
        INSERT INTO checkins (checkin_id, patient_id, submitted_at, body_hash, phq9,
            phq9_total, phq9_item9_positive, suicidal_ideation, note, response, remission,
            worsening, worsening_reasons)
        SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 FROM v
        RETURNING *
    ), o AS (
        {outbox.insert_sql(14, only_with="c")}
    )
    SELECT * FROM c
    """  # noqa: S608 (our own fragment, no input)


# What the API runs on every intake and check-in: each pool connection parses them at
# start (shared/db.py warm_pool).
HOT_STATEMENTS = (_CREATE_INTAKE, _CHECKIN_CONTEXT, _INSERT_CHECKIN)


class CheckinTaken(Exception):
    """A check-in with this id is stored already (for another patient, or raced in)."""


async def insert_checkin(
    conn: Conn,
    checkin: NewCheckin,
    version: int,
    cipher: PhiCipher,
    announce: Sequence[tuple[CloudEvent, int]],
) -> CheckinRow | None:
    """The check-in and its events (each with its outbox priority, in order) in one
    statement that commits on its own, if the patient is still at ``version`` (and then
    one version on); the stored row, or None (nothing stored) when the patient changed
    since ``checkin_context`` read it. CheckinTaken when a check-in with this id was
    stored meanwhile."""
    assessment = checkin.assessment
    try:
        row = await conn.fetchrow(
            _INSERT_CHECKIN,
            checkin.checkin_id,
            checkin.patient_id,
            checkin.submitted_at,
            checkin.digest,
            list(checkin.phq9) if checkin.phq9 is not None else None,
            checkin.phq9_total,
            checkin.item9_positive,
            checkin.suicidal_ideation,
            cipher.encrypt(checkin.note),
            assessment.response,
            assessment.remission,
            assessment.worsening,
            list(assessment.worsening_reasons),
            *outbox.arrays(announce),
            version,
        )
    except asyncpg.UniqueViolationError as exc:
        raise CheckinTaken(checkin.checkin_id) from exc
    return _checkin(row) if row is not None else None


async def discharge(
    conn: Conn,
    patient_id: str,
    at: datetime,
    by: str | None,
    note: str | None,
    cipher: PhiCipher,
) -> None:
    await conn.execute(
        "UPDATE patients SET discharged_at = $2, discharged_by = $3, discharge_note = $4, "
        "updated_at = now() WHERE patient_id = $1",
        patient_id,
        at,
        by,
        cipher.encrypt(note),
    )


async def measures(conn: Conn, patient_id: str) -> list[MeasureRow]:
    """Every PHQ-9 score of the patient, intakes and check-ins, oldest first (no notes).

    Check-ins in the order prior_totals uses (submission time, then arrival); at one
    instant an intake comes before the check-ins, as it is their baseline.
    """
    rows = await conn.fetch(
        """
        SELECT source, id, at, phq9_total, phq9_item9_positive, suicidal_ideation, response,
               remission, worsening
        FROM (
            SELECT 'intake' AS source, intake_id AS id, submitted_at AS at, phq9_total,
                   phq9_item9_positive, NULL::boolean AS suicidal_ideation,
                   NULL::boolean AS response, NULL::boolean AS remission,
                   NULL::boolean AS worsening, 0 AS rank, NULL::bigint AS arrival
            FROM intakes WHERE patient_id = $1
            UNION ALL
            SELECT 'checkin', checkin_id, submitted_at, phq9_total, phq9_item9_positive,
                   suicidal_ideation, response, remission, worsening, 1, arrival
            FROM checkins WHERE patient_id = $1
        ) m
        ORDER BY at, rank, arrival, id
        """,
        patient_id,
    )
    return [MeasureRow(**dict(r)) for r in rows]
