"""HTTP entry points of on-call people (services/alerts/rosters.py) and of acknowledging
from a page (services/alerts/acks.py)."""

from __future__ import annotations

import html
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from services.alerts import acks, rosters
from services.alerts.channels import TWILIO_SIGNATURE_HEADER, verify_twilio_signature
from services.alerts.deps import Deps
from services.alerts.roster_schemas import (
    ClinicianIn,
    ClinicianOut,
    GapOut,
    HandoffOut,
    OncallAt,
    OncallNow,
    OverrideIn,
    OverrideOut,
    ScheduleIn,
    ScheduleOut,
)
from services.alerts.schemas import AlertOut
from shared.validation import IsoInstantText
from shared.web import ERRORS, SiteId

router = APIRouter()  # included by services/alerts/api.py under /v1

# no bearer token: the link's token or Twilio's signature is the proof (app.py RULES)
PUBLIC_OPERATION: dict[str, Any] = {"security": []}

At = Annotated[
    IsoInstantText | None, Query(description="an instant with its UTC offset; default now")
]


def deps(request: Request) -> Deps:
    d: Deps = request.app.state.deps
    return d


# --- clinicians ---------------------------------------------------------------------------


@router.put(
    "/clinicians/{clinician_id}",
    response_model=ClinicianOut,
    responses=ERRORS,
    tags=["on-call people"],
    summary="A clinician who can be paged: contact methods, notification rules, quiet hours",
)
async def put_clinician(clinician_id: SiteId, body: ClinicianIn, request: Request) -> ClinicianOut:
    return await rosters.put_clinician(deps(request), clinician_id, body)


@router.get(
    "/clinicians/{clinician_id}",
    response_model=ClinicianOut,
    responses=ERRORS,
    tags=["on-call people"],
    summary="A clinician",
)
async def get_clinician(clinician_id: str, request: Request) -> ClinicianOut:
    return await rosters.get_clinician(deps(request), clinician_id)


@router.get(
    "/clinicians",
    response_model=list[ClinicianOut],
    responses=ERRORS,
    tags=["on-call people"],
    summary="Every clinician",
)
async def list_clinicians(request: Request) -> list[ClinicianOut]:
    return await rosters.list_clinicians(deps(request))


# --- schedules ----------------------------------------------------------------------------


@router.put(
    "/schedules/{schedule_id}",
    response_model=ScheduleOut,
    responses=ERRORS,
    tags=["on-call people"],
    summary="A schedule: rotations of clinicians with a handoff in the schedule's zone",
)
async def put_schedule(schedule_id: SiteId, body: ScheduleIn, request: Request) -> ScheduleOut:
    return await rosters.put_schedule(deps(request), schedule_id, body)


@router.get(
    "/schedules/{schedule_id}",
    response_model=ScheduleOut,
    responses=ERRORS,
    tags=["on-call people"],
    summary="A schedule, with its overrides not yet over",
)
async def get_schedule(schedule_id: str, request: Request) -> ScheduleOut:
    return await rosters.get_schedule(deps(request), schedule_id)


@router.get(
    "/schedules",
    response_model=list[ScheduleOut],
    responses=ERRORS,
    tags=["on-call people"],
    summary="Every schedule",
)
async def list_schedules(request: Request) -> list[ScheduleOut]:
    return await rosters.list_schedules(deps(request))


@router.post(
    "/schedules/{schedule_id}/overrides",
    response_model=OverrideOut,
    status_code=201,
    responses=ERRORS,
    tags=["on-call people"],
    summary="An override: a clinician added, or standing in for another, for a window",
)
async def add_override(schedule_id: str, body: OverrideIn, request: Request) -> OverrideOut:
    return await rosters.add_override(deps(request), schedule_id, body)


@router.delete(
    "/schedules/{schedule_id}/overrides/{override_id}",
    status_code=204,
    responses=ERRORS,
    tags=["on-call people"],
    summary="Remove an override",
)
async def delete_override(schedule_id: str, override_id: str, request: Request) -> Response:
    await rosters.delete_override(deps(request), schedule_id, override_id)
    return Response(status_code=204)


@router.get(
    "/schedules/{schedule_id}/oncall",
    response_model=OncallAt,
    responses=ERRORS,
    tags=["on-call people"],
    summary="Who a schedule puts on call at an instant",
)
async def schedule_oncall(schedule_id: str, request: Request, at: At = None) -> OncallAt:
    return await rosters.schedule_oncall(deps(request), schedule_id, at)


@router.get(
    "/schedules/{schedule_id}/handoffs",
    response_model=list[HandoffOut],
    responses=ERRORS,
    tags=["on-call people"],
    summary="A schedule's handoffs: each instant who is on call changes (default: 7 days)",
    description="`from` defaults to now, `to` to 7 days after `from` and is capped at 92 "
    "days after it; a `to` not after `from` is an empty window: no handoffs.",
)
async def schedule_handoffs(
    schedule_id: str,
    request: Request,
    from_: Annotated[IsoInstantText | None, Query(alias="from")] = None,
    to: Annotated[IsoInstantText | None, Query()] = None,
) -> list[HandoffOut]:
    return await rosters.schedule_handoffs(deps(request), schedule_id, from_, to)


@router.get(
    "/sites/{site_id}/oncall/now",
    response_model=OncallNow,
    responses=ERRORS,
    tags=["on-call people"],
    summary="A site's tiers resolved to people at an instant (default now)",
)
async def site_oncall_now(site_id: str, request: Request, at: At = None) -> OncallNow:
    return await rosters.site_oncall_now(deps(request), site_id, at)


@router.get(
    "/sites/{site_id}/oncall/gaps",
    response_model=list[GapOut],
    responses=ERRORS,
    tags=["on-call people"],
    summary="Coverage gaps: windows in which a tier resolves to nobody (default: 14 days)",
    description="`from` defaults to now, `to` to 14 days after `from` and is capped at 92 "
    "days after it; a `to` not after `from` is an empty window: no gaps.",
)
async def site_gaps(
    site_id: str,
    request: Request,
    from_: Annotated[IsoInstantText | None, Query(alias="from")] = None,
    to: Annotated[IsoInstantText | None, Query()] = None,
) -> list[GapOut]:
    return await rosters.site_gaps(deps(request), site_id, from_, to)


# --- acknowledging from the page ----------------------------------------------------------


@router.post(
    "/ack/{token}",
    response_model=AlertOut,
    responses={**ERRORS, 410: {"description": "The link was used, or the alert is resolved"}},
    tags=["acknowledge from the page"],
    openapi_extra=PUBLIC_OPERATION,
    summary="Acknowledge as the page's recipient (the link every page carries; one use)",
    description="Needs no bearer token: the link is the credential. Audited as the recipient.",
)
async def ack_link(token: str, request: Request) -> AlertOut:
    return await acks.by_link(deps(request), token)


@router.get(
    "/ack/{token}",
    response_class=HTMLResponse,
    responses={404: {"description": "No such link"}},
    tags=["acknowledge from the page"],
    openapi_extra=PUBLIC_OPERATION,
    summary="The link opened in a browser: what it acknowledges, and a button to do it",
)
async def ack_page(token: str, request: Request) -> HTMLResponse:
    page, alert = await acks.link_state(deps(request), token)
    done = page.ack_used_at is not None or alert.status == "resolved"
    state = (
        "This link was used, or the alert is resolved."
        if done
        else f"Status: {html.escape(alert.status)}."
    )
    button = (
        ""
        if done
        else f'<form method="post" action="{html.escape(acks.LINK_ROUTE.format(token=token))}" '
        'id="ack"><button type="submit">Acknowledge</button></form>'
        "<script>document.getElementById('ack').addEventListener('submit', async e => {"
        "e.preventDefault(); const r = await fetch(e.target.action, {method: 'POST'});"
        "document.body.insertAdjacentText('beforeend', r.ok ? 'Acknowledged.' : "
        "'Not acknowledged (' + r.status + ').');});</script>"
    )
    text = (
        f"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' "
        f"content='width=device-width'><title>Interval alert</title></head><body>"
        f"<h1>{html.escape(alert.severity)} {html.escape(alert.kind)} alert</h1>"
        f"<p>Site {html.escape(alert.site_id)}, alert {html.escape(str(alert.alert_id))}.</p>"
        f"<p>{state}</p>{button}</body></html>"
    )
    return HTMLResponse(text)


def _twiml(text: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Message>'
        f"{html.escape(text)}</Message></Response>"
    )
    return Response(body, media_type="application/xml")


@router.post(
    "/sms/inbound",
    response_class=Response,
    responses={
        200: {"description": "TwiML: the SMS answered", "content": {"application/xml": {}}},
        403: {"description": "The X-Twilio-Signature does not verify"},
    },
    tags=["acknowledge from the page"],
    openapi_extra=PUBLIC_OPERATION,
    summary="A staff SMS reply, as Twilio posts it (form-encoded, signed): `4a` acknowledges",
)
async def sms_inbound(request: Request) -> Response:
    d = deps(request)
    raw = (await request.body()).decode("utf-8", errors="replace")
    form = dict(parse_qsl(raw, keep_blank_values=True))
    url = d.public_url + acks.SMS_ROUTE
    token = d.sms_auth_token
    signature = request.headers.get(TWILIO_SIGNATURE_HEADER)
    if not token or not verify_twilio_signature(token, url, form, signature):
        return Response(
            b'{"error": "forbidden", "detail": "bad X-Twilio-Signature", "errors": []}',
            status_code=403,
            media_type="application/json",
        )
    reply = await acks.by_sms(d, form)
    return _twiml(reply.text)
