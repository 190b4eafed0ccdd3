"""Thin HTTP entry points of the intake service: parse, call a command or query, answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response

from services.intake import commands, queries
from services.intake.deps import Deps
from services.intake.schemas import (
    CheckinIn,
    CheckinOut,
    DischargeIn,
    DischargeOut,
    IntakeIn,
    IntakeOut,
    PatientMeasures,
    Review,
)
from shared.web import ERRORS, ErrorBody, JSONResponse

router = APIRouter(prefix="/v1")


def deps(request: Request) -> Deps:
    d: Deps = request.app.state.deps
    return d


@router.post(
    "/intakes",
    status_code=201,
    response_model=IntakeOut,
    responses={
        **ERRORS,
        200: {"model": IntakeOut, "description": "An identical replay"},
        503: {
            "model": ErrorBody,
            "description": "`overloaded`: too many intakes are waiting already "
            "(ROUTINE_QUEUE_MAX); nothing was read or stored; send it again after "
            "`Retry-After` seconds",
        },
    },
    summary="Submit an intake screen (201 new, 200 identical replay)",
)
async def submit_intake(body: IntakeIn, request: Request) -> Response:
    result, created = await commands.submit_intake(deps(request), body)
    return JSONResponse(result.model_dump(mode="json"), 201 if created else 200)


@router.get(
    "/intakes/{intake_id}",
    response_model=IntakeOut,
    responses=ERRORS,
    summary="An intake's decision (never the PHI)",
)
async def get_intake(intake_id: str, request: Request) -> IntakeOut:
    return await queries.get_intake(deps(request), intake_id)


@router.post(
    "/intakes/{intake_id}/approve",
    response_model=IntakeOut,
    responses=ERRORS,
    summary="A clinician approves a needs_review intake (it then schedules)",
)
async def approve(intake_id: str, body: Review, request: Request) -> IntakeOut:
    return await commands.review_intake(deps(request), intake_id, "approved", body)


@router.post(
    "/intakes/{intake_id}/decline",
    response_model=IntakeOut,
    responses=ERRORS,
    summary="A clinician declines a needs_review intake",
)
async def decline(intake_id: str, body: Review, request: Request) -> IntakeOut:
    return await commands.review_intake(deps(request), intake_id, "declined", body)


@router.post(
    "/checkins",
    status_code=202,
    response_model=CheckinOut,
    responses={**ERRORS, 200: {"model": CheckinOut, "description": "An identical replay"}},
    summary="Record a between-session check-in (202 new, 200 identical replay)",
)
async def record_checkin(body: CheckinIn, request: Request) -> Response:
    result, created = await commands.record_checkin(deps(request), body)
    return JSONResponse(result.model_dump(mode="json"), 202 if created else 200)


@router.post(
    "/patients/{patient_id}/discharge",
    response_model=DischargeOut,
    responses=ERRORS,
    summary="End monitoring for a patient (idempotent)",
)
async def discharge(
    patient_id: str, request: Request, body: Annotated[DischargeIn | None, Body()] = None
) -> DischargeOut:
    return await commands.discharge_patient(deps(request), patient_id, body or DischargeIn())


@router.get(
    "/patients/{patient_id}/measures",
    response_model=PatientMeasures,
    responses=ERRORS,
    summary="A patient's PHQ-9 scores over time: the intake baseline and every check-in",
)
async def measures(patient_id: str, request: Request) -> PatientMeasures:
    return await queries.patient_measures(deps(request), patient_id)
