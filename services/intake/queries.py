"""Intake's reads: an intake's decision and a patient's PHQ-9 history (never PHI)."""

from __future__ import annotations

from services.intake import repository as repo
from services.intake.deps import Deps
from services.intake.schemas import IntakeOut, Measure, PatientMeasures
from shared.errors import NotFound


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
