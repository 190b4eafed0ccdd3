"""The dashboard's pages and the actions taken from them (htmx partials)."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.dashboard import oncall, queries
from services.dashboard.deps import deps, may_edit_oncall, up
from services.dashboard.upstream import Down, Refused

router = APIRouter(include_in_schema=False)


def _render(request: Request, template: str, ctx: dict[str, object]) -> HTMLResponse:
    return deps(request).templates.TemplateResponse(request, template, ctx)


@router.get("/", response_class=HTMLResponse)
async def overview_page(request: Request) -> HTMLResponse:
    b, s = await asyncio.gather(
        queries.board_context(up(request)), queries.sites_context(up(request))
    )
    return _render(request, "overview.html", {**b, **s, "refresh_s": deps(request).refresh_s})


@router.get("/partials/board", response_class=HTMLResponse)
async def board_partial(request: Request) -> HTMLResponse:
    return _render(request, "_board.html", await queries.board_context(up(request)))


@router.get("/partials/sites", response_class=HTMLResponse)
async def sites_partial(request: Request) -> HTMLResponse:
    return _render(request, "_sites.html", await queries.sites_context(up(request)))


@router.get("/partials/alerts/{alert_id}/pages", response_class=HTMLResponse)
async def pages_partial(alert_id: str, request: Request) -> HTMLResponse:
    return _render(request, "_pages.html", await queries.pages_context(up(request), alert_id))


@router.post("/actions/alerts/{alert_id}/{step}", response_class=HTMLResponse)
async def alert_action(alert_id: str, step: str, request: Request) -> HTMLResponse:
    form = parse_qs((await request.body()).decode(errors="replace"))
    by = (form.get("by") or [""])[0].strip()
    note = request.headers.get("HX-Prompt") or None
    if step not in ("acknowledge", "resolve"):
        message = {"kind": "error", "text": f"unknown action {step!r}"}
    elif not by:
        message = {"kind": "error", "text": "Type your name in “Acting as” first."}
    else:
        result = await up(request).post(
            "alerts", f"/v1/alerts/{alert_id}/{step}", {"by": by, "note": note}
        )
        verb = "acknowledged" if step == "acknowledge" else "resolved"
        done = f"{result['kind']} alert {verb} by {by}." if isinstance(result, dict) else ""
        message = queries.outcome(result, "alerts", "The board", done)
    ctx = await queries.board_context(up(request))
    return _render(request, "_board.html", {**ctx, "message": message})


@router.get("/sites/{site_id}", response_class=HTMLResponse)
async def site_page(request: Request, site_id: str, week: str | None = None) -> HTMLResponse:
    return _render(request, "site.html", await queries.week_context(up(request), site_id, week))


@router.post("/actions/appointments/{appointment_id}/{action}", response_class=HTMLResponse)
async def appointment_action(
    appointment_id: str, action: str, request: Request, site: str, week: str | None = None
) -> HTMLResponse:
    if action not in ("confirm", "cancel", "complete", "no-show"):
        message = {"kind": "error", "text": f"unknown action {action!r}"}
    else:
        result = await up(request).post(
            "scheduling", f"/v1/appointments/{appointment_id}/{action}", {}
        )
        done = (
            f"{result['kind']} {result['sequence']} of {result['patient_id']} "
            f"is {result['status'].replace('_', ' ')}."
            if isinstance(result, dict)
            else ""
        )
        message = queries.outcome(result, "scheduling", "The week", done)
    ctx = await queries.week_context(up(request), site, week)
    return _render(request, "_week.html", {**ctx, "message": message})


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
async def patient_page(request: Request, patient_id: str) -> HTMLResponse:
    return _render(request, "patient.html", await queries.patient_context(up(request), patient_id))


# --- on-call people (docs/domain.md "On-call people") -------------------------------------


@router.get("/oncall", response_class=HTMLResponse)
async def oncall_page(request: Request, sites: str | None = None) -> HTMLResponse:
    ctx = await queries.oncall_context(up(request), oncall.site_ids(sites))
    return _render(request, "oncall.html", {**ctx, "can_edit": may_edit_oncall(request)})


async def _form(request: Request) -> dict[str, str]:
    raw = parse_qs((await request.body()).decode(errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in raw.items() if v}


async def _oncall_answer(
    request: Request, form: dict[str, str], key: str, result: object, done: str
) -> HTMLResponse:
    """The on-call panel again, with the outcome beside the form that sent it."""
    errors: dict[str, list[dict[str, str]]] = {}
    message = None
    if isinstance(result, Refused):
        errors[key] = list(result.errors) or [{"field": "", "message": result.detail}]
    elif isinstance(result, Down):
        errors[key] = [{"field": "", "message": f"Not done: {result.service} {result.reason}."}]
    elif isinstance(result, list):  # the form itself could not be read: nothing sent
        errors[key] = result
    else:
        message = {"kind": "ok", "text": done}
    ctx = await queries.oncall_context(up(request), oncall.site_ids(form.get("sites")))
    return _render(
        request,
        "_oncall.html",
        {**ctx, "can_edit": True, "errors": errors, "message": message, "changed": key},
    )


def _refused(request: Request) -> Response | None:
    """Edits need the scheduler or clinician role, and come from the page itself (htmx sets
    ``HX-Request``, which a cross-site form cannot; the cookie is SameSite=Strict too)."""
    if not request.headers.get("HX-Request"):
        return Response("on-call edits come from the dashboard's page", status_code=400)
    if not may_edit_oncall(request):
        return Response("the scheduler or clinician role edits on-call people", status_code=403)
    return None


@router.post("/actions/oncall/clinicians", response_class=HTMLResponse)
async def put_clinician(request: Request) -> Response:
    if (no := _refused(request)) is not None:
        return no
    form = await _form(request)
    cid = form.get("clinician_id", "").strip()
    key = f"clinician:{form.get('form_id', cid)}"
    body, errors = oncall.clinician_body(form)
    if not oncall.is_id(cid):
        errors.insert(0, {"field": "clinician_id", "message": "an id, e.g. c-rivera"})
    result: object = errors or await up(request).put("alerts", f"/v1/clinicians/{cid}", body)
    return await _oncall_answer(request, form, key, result, f"Clinician {cid} saved.")


@router.post("/actions/oncall/schedules", response_class=HTMLResponse)
async def put_schedule(request: Request) -> Response:
    if (no := _refused(request)) is not None:
        return no
    form = await _form(request)
    sid = form.get("schedule_id", "").strip()
    key = f"schedule:{form.get('form_id', sid)}"
    body, errors = oncall.schedule_body(form)
    if not oncall.is_id(sid):
        errors.insert(0, {"field": "schedule_id", "message": "an id, e.g. psychiatry"})
    result: object = errors or await up(request).put("alerts", f"/v1/schedules/{sid}", body)
    return await _oncall_answer(request, form, key, result, f"Schedule {sid} saved.")


@router.post("/actions/oncall/schedules/{schedule_id}/overrides", response_class=HTMLResponse)
async def add_override(schedule_id: str, request: Request) -> Response:
    if (no := _refused(request)) is not None:
        return no
    form = await _form(request)
    body, errors = oncall.override_body(form, form.get("timezone", "UTC"))
    result: object = errors or await up(request).post(
        "alerts", f"/v1/schedules/{schedule_id}/overrides", body
    )
    done = f"Override added to {schedule_id}."
    return await _oncall_answer(request, form, f"override:{schedule_id}", result, done)


@router.post(
    "/actions/oncall/schedules/{schedule_id}/overrides/{override_id}/delete",
    response_class=HTMLResponse,
)
async def delete_override(schedule_id: str, override_id: str, request: Request) -> Response:
    if (no := _refused(request)) is not None:
        return no
    form = await _form(request)
    result = await up(request).delete(
        "alerts", f"/v1/schedules/{schedule_id}/overrides/{override_id}"
    )
    done = f"Override removed from {schedule_id}."
    return await _oncall_answer(request, form, f"override:{schedule_id}", result, done)
