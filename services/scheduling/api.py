"""Thin HTTP entry points of the scheduling service."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request

from services.scheduling import commands, queries
from services.scheduling.deps import Deps
from services.scheduling.domain.lifecycle import Action
from services.scheduling.schemas import (
    ActionIn,
    AppointmentOut,
    HeldPatient,
    HoldOut,
    SiteBrief,
    SiteIn,
    SiteOut,
    SiteSummary,
    VitalsIn,
    VitalsOut,
    WaitlistEntry,
)
from shared.errors import InvalidInput
from shared.web import ERRORS, JSONResponse, SiteId

router = APIRouter(prefix="/v1")


def deps(request: Request) -> Deps:
    d: Deps = request.app.state.deps
    return d


@router.put(
    "/sites/{site_id}",
    response_model=SiteOut,
    responses=ERRORS,
    summary="Create or replace a site (hours in its time zone, rooms, therapists)",
)
async def put_site(site_id: SiteId, body: SiteIn, request: Request) -> SiteOut:
    return await commands.put_site(deps(request), site_id, body)


@router.get(
    "/sites",
    response_model=list[SiteBrief],
    responses=ERRORS,
    summary="Every site (for the dashboard)",
)
async def list_sites(request: Request) -> list[SiteBrief]:
    return await queries.list_sites(deps(request))


@router.get(
    "/sites/{site_id}/summary",
    response_model=SiteSummary,
    responses=ERRORS,
    summary="Patients in induction, waitlist, induction completion, utilisation today/this week",
)
async def site_summary(site_id: str, request: Request) -> SiteSummary:
    return await queries.site_summary(deps(request), site_id)


@router.get("/sites/{site_id}", response_model=SiteOut, responses=ERRORS, summary="A site")
async def get_site(site_id: str, request: Request) -> SiteOut:
    return await queries.get_site(deps(request), site_id)


@router.get(
    "/patients/{patient_id}/appointments",
    response_model=list[AppointmentOut],
    responses=ERRORS,
    summary="Every appointment of a patient, in time order",
)
async def patient_appointments(patient_id: str, request: Request) -> list[AppointmentOut]:
    return await queries.patient_appointments(deps(request), patient_id)


@router.get(
    "/patients/{patient_id}/hold",
    response_model=HoldOut,
    responses=ERRORS,
    summary="Whether automatic proposals are held (an unresolved suicide_risk alert)",
)
async def patient_hold(patient_id: str, request: Request) -> HoldOut:
    return await queries.patient_hold(deps(request), patient_id)


@router.get(
    "/holds",
    response_model=list[HeldPatient],
    responses=ERRORS,
    summary="Patients held while at risk, longest held first (optionally of one site)",
)
async def holds(request: Request, site_id: str | None = None) -> list[HeldPatient]:
    return await queries.held_patients(deps(request), site_id)


@router.get(
    "/sites/{site_id}/schedule",
    response_model=list[AppointmentOut],
    responses=ERRORS,
    summary="The site's appointments overlapping [from, to)",
)
async def site_schedule(
    site_id: str,
    request: Request,
    from_: Annotated[datetime, Query(alias="from")],
    to: Annotated[datetime, Query()],
) -> JSONResponse:
    if from_.tzinfo is None or to.tzinfo is None:
        raise InvalidInput(
            [
                {
                    "field": "from" if from_.tzinfo is None else "to",
                    "message": "must include a UTC offset",
                }
            ]
        )
    if to <= from_:
        raise InvalidInput([{"field": "to", "message": "must be after from"}])
    appts = await queries.site_schedule(deps(request), site_id, from_, to)
    return JSONResponse(appts)


@router.get(
    "/waitlist",
    response_model=list[WaitlistEntry],
    responses=ERRORS,
    summary="Patients waiting for capacity or for their site, oldest first",
)
async def waitlist(request: Request, site_id: str | None = None) -> list[WaitlistEntry]:
    return await queries.waitlist_entries(deps(request), site_id)


def _action_route(path: str, action: Action, summary: str) -> None:
    @router.post(
        f"/appointments/{{appointment_id}}/{path}",
        response_model=AppointmentOut,
        responses=ERRORS,
        summary=summary,
        name=f"appointment_{action.value}",
    )
    async def _route(
        appointment_id: str,
        request: Request,
        body: Annotated[ActionIn | None, Body()] = None,
    ) -> AppointmentOut:
        return await commands.change_appointment(deps(request), appointment_id, action, body)


_action_route("confirm", Action.confirm, "Confirm a proposed appointment")
_action_route(
    "cancel",
    Action.cancel,
    "Cancel (a dose is rebooked in its window, an integration inside its 1-3 days, "
    'unless {"rebook": false})',
)
_action_route(
    "complete", Action.complete, "Mark a confirmed appointment completed (409 before it starts)"
)
_action_route(
    "no-show", Action.no_show, "Mark a no-show (409 before it starts; a missed dose is rebooked)"
)


@router.post(
    "/appointments/{appointment_id}/vitals",
    response_model=VitalsOut,
    responses=ERRORS,
    summary="Pre-dose vitals: over the limits the dose is deferred",
)
async def vitals(appointment_id: str, body: VitalsIn, request: Request) -> VitalsOut:
    return await commands.record_vitals(deps(request), appointment_id, body)
