"""Intake's FHIR R4 read facade (docs/fhir.md): PHQ-9 Observations and
QuestionnaireResponses, C-SSRS RiskAssessments, the Patient. Mounted under /fhir/r4 by
shared/fhir_web.py; clinicians only (shared/access.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from services.intake import fhir, queries
from services.intake.deps import Deps
from shared.fhir import (
    BASE,
    LOINC,
    MAX_ID,
    PARAM_COUNT,
    PARAM_PATIENT,
    FhirError,
    Served,
    patient_fhir_id,
    patient_of,
)
from shared.fhir_web import FhirResponse, page, search_of

router = APIRouter(prefix=BASE, include_in_schema=False)

SERVED = (
    Served(
        "Observation",
        (PARAM_PATIENT, ("code", "token", f"{LOINC}|{fhir.TOTAL} (the PHQ-9 total)"), PARAM_COUNT),
        fhir.OBSERVATION_PROFILE,
    ),
    Served("QuestionnaireResponse", (PARAM_PATIENT, PARAM_COUNT), fhir.QR_PROFILE),
    Served("RiskAssessment", (PARAM_PATIENT, PARAM_COUNT)),
    Served("Patient", (), fhir.PATIENT_PROFILE, read=True),
)
# What ``code`` may name to find the PHQ-9 totals (any other code finds nothing).
TOTAL_CODES = frozenset({fhir.TOTAL, f"{LOINC}|{fhir.TOTAL}"})


def deps(request: Request) -> Deps:
    d: Deps = request.app.state.deps
    return d


@router.get("/Observation")
async def observations(request: Request) -> Response:
    search = search_of(request, ("patient", "code"), ("patient",))
    pid = patient_of(search.values["patient"])
    rows = await queries.fhir_phq9(deps(request), pid)
    code = search.get("code")
    if code is not None and not TOTAL_CODES.intersection(code.split(",")):
        rows = []
    return page(request, [fhir.phq9_observation(pid, r) for r in rows], search)


@router.get("/QuestionnaireResponse")
async def questionnaire_responses(request: Request) -> Response:
    search = search_of(request, ("patient",), ("patient",))
    pid = patient_of(search.values["patient"])
    rows = await queries.fhir_phq9(deps(request), pid)
    return page(request, [fhir.phq9_response(pid, r) for r in rows], search)


@router.get("/RiskAssessment")
async def risk_assessments(request: Request) -> Response:
    search = search_of(request, ("patient",), ("patient",))
    rows = await queries.fhir_intakes(deps(request), patient_of(search.values["patient"]))
    return page(request, [fhir.risk_assessment(r) for r in rows], search)


@router.get("/Patient/{fhir_id}")
async def read_patient(fhir_id: str, request: Request) -> Response:
    search_of(request, (), ())  # only _format
    pid = patient_of(fhir_id)
    record = await queries.fhir_patient(deps(request), pid)
    if len(patient_fhir_id(pid)) > MAX_ID:  # a client may choose up to 128 characters
        raise FhirError(422, "not-supported", "this patient's id is too long for a FHIR id")
    return FhirResponse(fhir.patient(record))
