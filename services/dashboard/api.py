"""The dashboard's pages and the actions taken from them (htmx partials)."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.dashboard import queries
from services.dashboard.deps import deps, up

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
