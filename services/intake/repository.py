"""All SQL of the intake service. Functions take a connection inside the caller's transaction.

PHI (name, birth date, phone, e-mail, every free-text note) is encrypted here, with the
service's PhiCipher, before it reaches a statement: the database only ever holds Fernet
tokens for it (migration 0002; shared/crypto.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from services.intake.domain.model import Verdict
from services.intake.domain.scoring import Phq9Score
from services.intake.schemas import CheckinIn, IntakeIn
from shared import outbox
from shared.crypto import PhiCipher
from shared.db import Conn
from shared.events import CloudEvent


def body_hash(body: IntakeIn | CheckinIn) -> bytes:
    return hashlib.sha256(body.model_dump_json().encode()).digest()


async def find_intake(
    conn: Conn, intake_id: str, *, for_update: bool = False
) -> asyncpg.Record | None:
    sql = "SELECT * FROM intakes WHERE intake_id = $1"
    return await conn.fetchrow(sql + (" FOR UPDATE" if for_update else ""), intake_id)


async def create_intake(
    conn: Conn,
    body: IntakeIn,
    digest: bytes,
    score: Phq9Score,
    verdict: Verdict,
    event: CloudEvent,
    cipher: PhiCipher,
) -> bool:
    """Store the intake, the patient's PHI (encrypted) and the outbox event in one atomic
    statement.

    Returns False (and changes nothing) when the intake id already exists, so a
    racing duplicate never overwrites the patient. The latest intake by submission
    time is the patient's baseline; a late older one does not start a new course.
    """
    p = body.patient
    inserted = await conn.fetchval(
        """
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
                                                EXCLUDED.treatment_started_at)
            RETURNING 1
        ), o AS (
            INSERT INTO outbox (event_id, topic, key, value)
            SELECT $19, $20, $21, $22 FROM i
        )
        SELECT count(*) FROM i
        """,
        body.intake_id,
        p.patient_id,
        body.site_id,
        body.submitted_at,
        digest,
        list(body.phq9),
        score.total,
        str(score.severity),
        score.item9_positive,
        str(verdict.suicide_risk),
        str(verdict.decision),
        list(verdict.reasons),
        list(body.conditions),
        body.preferences.model_dump(exclude_none=True) if body.preferences else None,
        cipher.encrypt(p.name),
        cipher.encrypt(p.date_of_birth),
        cipher.encrypt(p.phone),
        cipher.encrypt(p.email),
        *outbox.row(event),
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
) -> asyncpg.Record | None:
    sql = (
        "SELECT patient_id, site_id, baseline_total, treatment_started_at, discharged_at "
        "FROM patients WHERE patient_id = $1"
    )
    return await conn.fetchrow(sql + (" FOR UPDATE" if for_update else ""), patient_id)


async def find_checkin(conn: Conn, checkin_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM checkins WHERE checkin_id = $1", checkin_id)


async def checkin_context(
    conn: Conn, checkin_id: str, patient_id: str, since: datetime | None, submitted_at: datetime
) -> tuple[bytes | None, list[int]]:
    """In one round trip, under the patient's lock: the body hash of a stored check-in
    with this id (None: it is new), and the PHQ-9 totals of the check-ins earlier than
    the new one, in this course of treatment, oldest first.

    Check-ins are ordered by submission time, then arrival (migration 0003): earlier
    means submitted earlier, or at the same instant and received earlier. Every stored
    check-in was received before the new one (the caller holds the patient's lock, so
    this statement's snapshot, taken after it, sees every check-in committed before),
    so those at exactly ``submitted_at`` count too.
    """
    row = await conn.fetchrow(
        "SELECT (SELECT body_hash FROM checkins WHERE checkin_id = $1) AS existing, "
        "ARRAY(SELECT phq9_total FROM checkins WHERE patient_id = $2 "
        "AND phq9_total IS NOT NULL AND submitted_at >= $3 AND submitted_at <= $4 "
        "ORDER BY submitted_at, arrival) AS prior",
        checkin_id,
        patient_id,
        since,
        submitted_at,
    )
    assert row is not None
    existing = row["existing"]
    return (bytes(existing) if existing is not None else None), list(row["prior"])


async def insert_checkin(
    conn: Conn,
    body: CheckinIn,
    digest: bytes,
    total: int | None,
    item9: bool,
    assessment: Any,
    cipher: PhiCipher,
    announce: Sequence[tuple[CloudEvent, int]],
) -> asyncpg.Record:
    """The check-in and its events (each with its outbox priority, in order) in one
    statement; the stored row. A check-in with this id stored meanwhile for another
    patient (not serialised by that patient's lock) is a UniqueViolationError."""
    rows = [outbox.row(e) for e, _ in announce]
    row = await conn.fetchrow(
        """
        WITH c AS (
            INSERT INTO checkins (checkin_id, patient_id, submitted_at, body_hash, phq9,
                phq9_total, phq9_item9_positive, suicidal_ideation, note, response, remission,
                worsening, worsening_reasons)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            RETURNING *
        ), o AS (
            INSERT INTO outbox (event_id, topic, key, value, priority)
            SELECT e.id, e.topic, e.key, e.value, e.priority
            FROM unnest($14::uuid[], $15::text[], $16::text[], $17::bytea[], $18::smallint[])
                 WITH ORDINALITY AS e(id, topic, key, value, priority, n)
            ORDER BY e.n
        )
        SELECT * FROM c
        """,
        body.checkin_id,
        body.patient_id,
        body.submitted_at,
        digest,
        list(body.phq9) if body.phq9 is not None else None,
        total,
        item9,
        body.suicidal_ideation,
        cipher.encrypt(body.note),
        assessment.response,
        assessment.remission,
        assessment.worsening,
        list(assessment.worsening_reasons),
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [priority for _, priority in announce],
    )
    assert row is not None
    return row


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


async def measures(conn: Conn, patient_id: str) -> list[asyncpg.Record]:
    """Every PHQ-9 score of the patient, intakes and check-ins, oldest first (no notes).

    Check-ins in the order prior_totals uses (submission time, then arrival); at one
    instant an intake comes before the check-ins, as it is their baseline.
    """
    return await conn.fetch(
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
