"""The FHIR facade's reads of intake's tables (docs/fhir.md): a patient's intakes, every
PHQ-9 they answered with its items, and the patient with their PHI decrypted. Beside
services/intake/repository.py (all other SQL), in its layer; plain rows out."""

from __future__ import annotations

from datetime import date

from services.intake.repository import intake_row
from services.intake.rows import IntakeRow, PatientPhi, PatientRecord, Phq9Row
from shared.crypto import PhiCipher
from shared.db import Conn


async def patient_intakes(conn: Conn, patient_id: str) -> list[IntakeRow]:
    """Every intake of the patient, oldest first (no PHI)."""
    rows = await conn.fetch(
        "SELECT * FROM intakes WHERE patient_id = $1 ORDER BY submitted_at, intake_id",
        patient_id,
    )
    return [intake_row(r) for r in rows]


async def phq9_answers(conn: Conn, patient_id: str) -> list[Phq9Row]:
    """Every PHQ-9 the patient answered, with its items, in the order of
    services/intake/repository.py ``measures`` (intakes, and the check-ins that carried one)."""
    rows = await conn.fetch(
        """
        SELECT source, id, at, items, total FROM (
            SELECT 'intake' AS source, intake_id AS id, submitted_at AS at, phq9 AS items,
                   phq9_total AS total, 0 AS rank, NULL::bigint AS arrival
            FROM intakes WHERE patient_id = $1
            UNION ALL
            SELECT 'checkin', checkin_id, submitted_at, phq9, phq9_total, 1, arrival
            FROM checkins WHERE patient_id = $1 AND phq9 IS NOT NULL
        ) m
        ORDER BY at, rank, arrival, id
        """,
        patient_id,
    )
    return [Phq9Row(r["source"], r["id"], r["at"], tuple(r["items"]), r["total"]) for r in rows]


async def patient_record(conn: Conn, patient_id: str, cipher: PhiCipher) -> PatientRecord | None:
    """The patient with their PHI decrypted (the FHIR Patient read: clinicians only)."""
    row = await conn.fetchrow(
        "SELECT patient_id, site_id, discharged_at, name, date_of_birth, phone, email "
        "FROM patients WHERE patient_id = $1",
        patient_id,
    )
    if row is None:
        return None
    phi = PatientPhi(
        name=cipher.decrypt(row["name"]) or "",
        date_of_birth=date.fromisoformat(cipher.decrypt(row["date_of_birth"]) or ""),
        phone=cipher.decrypt(row["phone"]),
        email=cipher.decrypt(row["email"]),
    )
    return PatientRecord(row["patient_id"], row["site_id"], row["discharged_at"], phi)
