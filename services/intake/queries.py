"""Intake's reads: an intake's decision and a patient's PHQ-9 history (never PHI), and
the FHIR facade's (its Patient read is the one read with PHI)."""

from __future__ import annotations

from services.intake import history
from services.intake import repository as repo
from services.intake.deps import Deps
from services.intake.rows import IntakeRow, PatientRecord, Phq9Row
from services.intake.schemas import IntakeOut, Measure, PatientMeasures
from shared.db import Conn
from shared.errors import NotFound
from shared.fhir import FhirError


async def get_intake(deps: Deps, intake_id: str) -> IntakeOut:
    async with deps.pool.acquire() as conn:
        row = await repo.find_intake(conn, intake_id)
    if row is None:
        raise NotFound(f"no intake {intake_id}")
    return IntakeOut.from_row(row)


async def patient_measures(deps: Deps, patient_id: str) -> PatientMeasures:
    async with deps.pool.acquire() as conn:
        patient = await repo.find_patient(conn, patient_id)
        if patient is None:
            raise NotFound(f"no patient {patient_id}")
        rows = await repo.measures(conn, patient_id)
    return PatientMeasures(
        patient_id=patient_id,
        site_id=patient.site_id,
        baseline_total=patient.baseline_total,
        discharged_at=patient.discharged_at,
        measures=[Measure.from_row(r) for r in rows],
    )


# --- the FHIR facade (docs/fhir.md; services/intake/fhir.py maps, shared/fhir.py pages) ---


async def fhir_phq9(deps: Deps, patient_id: str) -> list[Phq9Row]:
    """Every PHQ-9 of a known patient (FhirError 404 for an unknown one)."""
    async with deps.pool.acquire() as conn:
        await _known(conn, patient_id)
        return await history.phq9_answers(conn, patient_id)


async def fhir_intakes(deps: Deps, patient_id: str) -> list[IntakeRow]:
    async with deps.pool.acquire() as conn:
        await _known(conn, patient_id)
        return await history.patient_intakes(conn, patient_id)


async def fhir_patient(deps: Deps, patient_id: str) -> PatientRecord:
    async with deps.pool.acquire() as conn:
        record = await history.patient_record(conn, patient_id, deps.cipher)
    if record is None:
        raise FhirError(404, "not-found", "no such patient")
    return record


async def _known(conn: Conn, patient_id: str) -> None:
    # the service that holds Patient answers 404 for a search about an unknown one
    if await repo.find_patient(conn, patient_id) is None:
        raise FhirError(404, "not-found", "no such patient")
