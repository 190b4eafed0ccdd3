"""Scheduling's FHIR R4 read facade (docs/fhir.md): a patient's Appointments. Mounted
under /fhir/r4 by shared/fhir_web.py; clinicians only (shared/access.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from services.scheduling import fhir, queries
from services.scheduling.deps import Deps
from shared.fhir import BASE, PARAM_COUNT, PARAM_PATIENT, Served, patient_of, tokens
from shared.fhir_web import page, search_of

router = APIRouter(prefix=BASE, include_in_schema=False)

SERVED = (
    Served(
        "Appointment",
        (
            PARAM_PATIENT,
            ("status", "token", "proposed | booked | fulfilled | cancelled | noshow"),
            PARAM_COUNT,
        ),
    ),
)


def deps(request: Request) -> Deps:
    d: Deps = request.app.state.deps
    return d


@router.get("/Appointment")
async def appointments(request: Request) -> Response:
    """A patient we do not know has no appointments: an empty Bundle (intake, which
    holds the Patient, answers 404 for one)."""
    search = search_of(request, ("patient", "status"), ("patient",))
    wanted = tokens(search, "status", fhir.FHIR_STATUSES)
    rows = await queries.fhir_appointments(deps(request), patient_of(search.values["patient"]))
    found = [fhir.appointment(r) for r in rows]
    if wanted is not None:
        found = [a for a in found if a.status in wanted]
    return page(request, found, search)
