"""The alerts service's FHIR R4 read facade (docs/fhir.md): a Flag per suicide-risk alert,
active while it is unresolved. Mounted under /fhir/r4 by shared/fhir_web.py; clinicians
only (shared/access.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from services.alerts import fhir, queries
from services.alerts.deps import Deps
from shared.fhir import BASE, PARAM_COUNT, PARAM_PATIENT, Served, patient_of, tokens
from shared.fhir_web import page, search_of

router = APIRouter(prefix=BASE, include_in_schema=False)

SERVED = (
    Served(
        "Flag",
        (
            PARAM_PATIENT,
            ("status", "token", "active (an unresolved suicide_risk alert) | inactive"),
            PARAM_COUNT,
        ),
    ),
)


def deps(request: Request) -> Deps:
    d: Deps = request.app.state.deps
    return d


@router.get("/Flag")
async def flags(request: Request) -> Response:
    """A patient we do not know has no Flag: an empty Bundle (intake, which holds the
    Patient, answers 404 for one)."""
    search = search_of(request, ("patient", "status"), ("patient",))
    wanted = tokens(search, "status", fhir.FLAG_STATUSES)
    rows = await queries.fhir_suicide_risk_alerts(
        deps(request), patient_of(search.values["patient"])
    )
    found = [f for f in map(fhir.flag, rows) if f is not None]
    if wanted is not None:
        found = [f for f in found if f.status in wanted]
    return page(request, found, search)
