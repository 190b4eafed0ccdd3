"""Thin HTTP entry points of the alerts service: parse, call one command
(services/alerts/commands.py) or query (services/alerts/queries.py), answer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.alerts import commands, queries, roster_api
from services.alerts.deps import Deps
from services.alerts.domain.lifecycle import Step
from services.alerts.domain.model import NETWORK_SITE
from services.alerts.schemas import (
    AckTimes,
    ActorIn,
    AlertCounts,
    AlertDetail,
    AlertOut,
    KindName,
    MonitoringOut,
    OncallIn,
    OncallOut,
    SeverityName,
    SiteMonitoring,
    StatusName,
)
from shared.access import principal_of
from shared.errors import NotFound
from shared.web import ERRORS, SiteId

router = APIRouter(prefix="/v1")


def deps(request: Request) -> Deps:
    d: Deps = request.app.state.deps
    return d


def _alert_id(alert_id: str) -> str:
    try:
        return str(uuid.UUID(alert_id))
    except ValueError:
        raise NotFound(f"no alert {alert_id}") from None


@router.put(
    "/sites/{site_id}/oncall",
    response_model=OncallOut,
    responses=ERRORS,
    summary="Who is paged at a site, tier by tier (alerts already open keep their policy)",
)
async def put_oncall(site_id: SiteId, body: OncallIn, request: Request) -> OncallOut:
    return await commands.put_oncall(deps(request), site_id, body)


@router.get(
    "/sites/{site_id}/oncall",
    response_model=OncallOut,
    responses=ERRORS,
    summary="A site's on-call",
)
async def get_oncall(site_id: str, request: Request) -> OncallOut:
    return await queries.get_oncall(deps(request), site_id)


@router.put(
    "/oncall/network",
    response_model=OncallOut,
    responses=ERRORS,
    summary="Who is paged for pipeline_stalled (the network ops on-call), tier by tier",
    description="The same body and rules as a site's on-call; site_id reads `_network`.",
)
async def put_network_oncall(body: OncallIn, request: Request) -> OncallOut:
    return await commands.put_oncall(deps(request), NETWORK_SITE, body)


@router.get(
    "/oncall/network",
    response_model=OncallOut,
    responses=ERRORS,
    summary="The network ops on-call (pipeline_stalled)",
)
async def get_network_oncall(request: Request) -> OncallOut:
    return await queries.get_oncall(deps(request), NETWORK_SITE)


@router.get(
    "/alerts",
    response_model=list[AlertOut],
    responses=ERRORS,
    summary="Alerts, newest first, filtered by site, patient, status, severity, kind",
)
async def list_alerts(
    request: Request,
    site_id: str | None = None,
    patient_id: str | None = None,
    status: StatusName | None = None,
    severity: SeverityName | None = None,
    kind: KindName | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AlertOut]:
    return await queries.list_alerts(
        deps(request),
        site_id=site_id,
        patient_id=patient_id,
        status=status,
        severity=severity,
        kind=kind,
        limit=limit,
    )


@router.get(
    "/alerts/counts",
    response_model=AlertCounts,
    responses=ERRORS,
    summary="Per site: alerts by status and severity (for the dashboard)",
)
async def alert_counts(request: Request, site_id: str | None = None) -> AlertCounts:
    return await queries.alert_counts(deps(request), site_id)


@router.get(
    "/alerts/ack-times",
    response_model=list[AckTimes],
    responses=ERRORS,
    summary="Time to acknowledge (median, p90) per site and network-wide, last N days",
)
async def ack_times(
    request: Request,
    severity: SeverityName = "critical",
    days: Annotated[int, Query(ge=1, le=365)] = 7,
) -> list[AckTimes]:
    return await queries.ack_times(deps(request), severity, days)


@router.get(
    "/monitoring/counts",
    response_model=list[SiteMonitoring],
    responses=ERRORS,
    summary="Per site: patients monitored, and those with a run of missed check-ins",
)
async def monitoring_counts(request: Request) -> list[SiteMonitoring]:
    return await queries.monitoring_counts(deps(request))


@router.get(
    "/alerts/{alert_id}",
    response_model=AlertDetail,
    responses=ERRORS,
    summary="An alert with its audit trail, policy snapshot, pages and delivery attempts",
    description="The acknowledge/resolve notes are shown to the clinician role only (every "
    "caller when no API_TOKENS_FILE is set); anyone else gets `note: null` with "
    "`note_withheld: true` where a note was left.",
)
async def get_alert(alert_id: str, request: Request) -> AlertDetail:
    clinician = "clinician" in principal_of(request).roles
    return await queries.get_alert(deps(request), _alert_id(alert_id), show_notes=clinician)


def _step_route(step: Step, summary: str) -> None:
    @router.post(
        f"/alerts/{{alert_id}}/{step.value}",
        response_model=AlertOut,
        responses=ERRORS,
        summary=summary,
        name=f"alert_{step.value}",
    )
    async def _route(alert_id: str, body: ActorIn, request: Request) -> AlertOut:
        return await commands.act(deps(request), _alert_id(alert_id), step, body)


_step_route(Step.acknowledge, "Acknowledge: escalation stops (a critical one re-pages if left)")
_step_route(Step.resolve, "Resolve: the alert closes; a new occurrence opens a new alert")


@router.get(
    "/patients/{patient_id}/monitoring",
    response_model=MonitoringOut,
    responses=ERRORS,
    summary="A patient's check-in monitoring: next due time, deadline, run of misses",
)
async def monitoring(patient_id: str, request: Request) -> MonitoringOut:
    return await queries.monitoring(deps(request), patient_id)


# on-call people and acknowledging from the page (services/alerts/roster_api.py)
router.include_router(roster_api.router)
