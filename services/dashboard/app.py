"""The ops dashboard: server-rendered pages over the services' APIs, htmx for the rest.

It owns no data: every figure comes from an API call made while rendering, so a
service that is down shows as down (never as an empty list that reads "all clear").
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from services.dashboard import board, overview, patient, schedule
from services.dashboard.settings import DashboardSettings
from services.dashboard.upstream import Down, Refused, Upstream
from shared import devclock
from shared.auth import TokenBook
from shared.clock import utcnow
from shared.web import install_observability

HERE = Path(__file__).parent
VENDOR = HERE / "web" / "node_modules"
COOKIE = "interval_token"


def outcome(result: Any, service: str, refreshed: str, done: str) -> dict[str, str]:
    """What an action on the page says: done, refused (the 409 in words), or not reached."""
    if isinstance(result, Down):
        return {"kind": "error", "text": f"Not done: {service} service {result.reason}."}
    if isinstance(result, Refused):
        return {
            "kind": "error",
            "text": f"Not done ({result.status}): {result.detail}. {refreshed} is refreshed.",
        }
    return {"kind": "ok", "text": done}


def create_app(settings: DashboardSettings) -> FastAPI:
    devclock.refuse_unless_loopback(settings, "dashboard")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # DEV_CLOCK=1: the pages' "now" is the stack's (its row in the stack's database)
        await devclock.watch(settings, "dashboard")
        try:
            async with httpx.AsyncClient(timeout=settings.upstream_timeout_s) as http:
                app.state.upstream = Upstream(http, settings.upstreams())
                yield
        finally:
            await devclock.unwatch()

    app = FastAPI(title="Interval ops dashboard", version="1.0.0", lifespan=lifespan)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(pct=overview.pct, duration=overview.duration)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.mount("/vendor/htmx", StaticFiles(directory=VENDOR / "htmx.org" / "dist", check_dir=False))
    app.mount(
        "/vendor/chart.js", StaticFiles(directory=VENDOR / "chart.js" / "dist", check_dir=False)
    )

    async def readiness() -> dict[str, str]:
        return {"dashboard": "ok"}

    install_observability(app, readiness)

    def up(request: Request) -> Upstream:
        u: Upstream = request.app.state.upstream
        return u.acting_as(request.cookies.get(COOKIE)) if book is not None else u

    # --- sign-in (only with API_TOKENS_FILE) -------------------------------------------

    book = TokenBook.load(settings.api_tokens_file) if settings.api_tokens_file else None
    templates.env.globals["auth_enabled"] = book is not None
    open_paths = ("/signin", "/static/", "/vendor/", "/healthz", "/readyz", "/metrics")

    @app.middleware("http")
    async def signed_in(request: Request, call_next: Any) -> Any:
        path = request.url.path
        if book is None or path.startswith(open_paths):
            return await call_next(request)
        token = request.cookies.get(COOKIE)
        if token and book.find(token) is not None:
            return await call_next(request)
        target = "/signin?" + urlencode({"next": path})
        if request.headers.get("HX-Request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.get("/signin", response_class=HTMLResponse, include_in_schema=False)
    async def signin_page(request: Request, next: str = "/") -> HTMLResponse:
        return templates.TemplateResponse(request, "signin.html", {"next": next, "error": None})

    @app.post("/signin", include_in_schema=False)
    async def signin(request: Request) -> Any:
        form = parse_qs((await request.body()).decode(errors="replace"))
        token = (form.get("token") or [""])[0].strip()
        target = (form.get("next") or ["/"])[0]
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        who = book.find(token) if book is not None and token else None
        if who is None:
            return templates.TemplateResponse(
                request, "signin.html", {"next": target, "error": "That token is not valid."}, 401
            )
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=12 * 3600)
        return response

    @app.get("/signout", include_in_schema=False)
    async def signout() -> Any:
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    async def board_context(request: Request) -> dict[str, Any]:
        open_, acked = await asyncio.gather(
            up(request).get("alerts", "/v1/alerts", {"status": "open", "limit": 500}),
            up(request).get("alerts", "/v1/alerts", {"status": "acknowledged", "limit": 500}),
        )
        for result in (open_, acked):
            if isinstance(result, Down | Refused):
                return {"down": result if isinstance(result, Down) else Down("alerts", "refused")}
        now = utcnow()
        alerts = board.board_order([*open_, *acked])
        for a in alerts:
            a["age"] = board.age(a["raised_at"], now)
        return {"alerts": alerts, "critical_ids": board.critical_open(alerts), "down": None}

    async def sites_context(request: Request) -> dict[str, Any]:
        u = up(request)
        sites, counts, monitoring, week, month = await asyncio.gather(
            u.get("scheduling", "/v1/sites"),
            u.get("alerts", "/v1/alerts/counts"),
            u.get("alerts", "/v1/monitoring/counts"),
            u.get("alerts", "/v1/alerts/ack-times", {"severity": "critical", "days": 7}),
            u.get("alerts", "/v1/alerts/ack-times", {"severity": "critical", "days": 30}),
        )
        downs = [r for r in (sites, counts, monitoring, week, month) if isinstance(r, Down)]
        ok_sites = sites if isinstance(sites, list) else None
        summaries: dict[str, dict[str, Any]] = {}
        if ok_sites:
            found = await asyncio.gather(
                *(u.get("scheduling", f"/v1/sites/{s['site_id']}/summary") for s in ok_sites)
            )
            summaries = {
                s["site_id"]: f for s, f in zip(ok_sites, found, strict=True) if isinstance(f, dict)
            }
        rows = overview.site_rows(
            ok_sites,
            summaries,
            counts if isinstance(counts, dict) else None,
            monitoring if isinstance(monitoring, list) else None,
        )
        acks = (
            overview.ack_rows(week, month)
            if isinstance(week, list) and isinstance(month, list)
            else None
        )
        return {"sites": rows, "acks": acks, "downs": {d.service: d for d in downs}}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def overview_page(request: Request) -> HTMLResponse:
        b, s = await asyncio.gather(board_context(request), sites_context(request))
        return templates.TemplateResponse(
            request, "overview.html", {**b, **s, "refresh_s": settings.board_refresh_s}
        )

    @app.get("/partials/board", response_class=HTMLResponse, include_in_schema=False)
    async def board_partial(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "_board.html", await board_context(request))

    @app.get("/partials/sites", response_class=HTMLResponse, include_in_schema=False)
    async def sites_partial(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "_sites.html", await sites_context(request))

    @app.get(
        "/partials/alerts/{alert_id}/pages", response_class=HTMLResponse, include_in_schema=False
    )
    async def pages_partial(alert_id: str, request: Request) -> HTMLResponse:
        detail = await up(request).get("alerts", f"/v1/alerts/{alert_id}")
        if isinstance(detail, Down | Refused):
            down = detail if isinstance(detail, Down) else Down("alerts", detail.detail)
            return templates.TemplateResponse(request, "_pages.html", {"down": down})
        return templates.TemplateResponse(
            request, "_pages.html", {"pages": detail["pages"], "down": None}
        )

    @app.post(
        "/actions/alerts/{alert_id}/{step}", response_class=HTMLResponse, include_in_schema=False
    )
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
            message = outcome(result, "alerts", "The board", done)
        ctx = await board_context(request)
        return templates.TemplateResponse(request, "_board.html", {**ctx, "message": message})

    # --- a site's week ---------------------------------------------------------------

    async def week_context(request: Request, site_id: str, week: str | None) -> dict[str, Any]:
        site = await up(request).get("scheduling", f"/v1/sites/{site_id}")
        if isinstance(site, Down):
            return {"down": site, "site_id": site_id}
        if isinstance(site, Refused):
            return {"missing": site.detail, "site_id": site_id}
        try:
            day = (
                date.fromisoformat(week)
                if week
                else utcnow().astimezone(ZoneInfo(site["timezone"])).date()
            )
        except ValueError:
            day = utcnow().astimezone(ZoneInfo(site["timezone"])).date()
        start = schedule.week_start(day)
        begin, end = schedule.bounds(site, start)
        appts = await up(request).get(
            "scheduling",
            f"/v1/sites/{site_id}/schedule",
            {"from": begin.isoformat(), "to": end.isoformat()},
        )
        if isinstance(appts, Down | Refused):
            down = appts if isinstance(appts, Down) else Down("scheduling", appts.detail)
            return {"down": down, "site_id": site_id, "site": site}
        wk = schedule.build_week(site, appts, start)
        holds = await up(request).get("scheduling", "/v1/holds", {"site_id": site_id})
        return {
            "week": wk,
            "site": site,
            "site_id": site_id,
            "down": None,
            "holds": holds if isinstance(holds, list) else None,
            "holds_down": holds if isinstance(holds, Down | Refused) else None,
        }

    @app.get("/sites/{site_id}", response_class=HTMLResponse, include_in_schema=False)
    async def site_page(request: Request, site_id: str, week: str | None = None) -> HTMLResponse:
        ctx = await week_context(request, site_id, week)
        return templates.TemplateResponse(request, "site.html", ctx)

    @app.post(
        "/actions/appointments/{appointment_id}/{action}",
        response_class=HTMLResponse,
        include_in_schema=False,
    )
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
            message = outcome(result, "scheduling", "The week", done)
        ctx = await week_context(request, site, week)
        return templates.TemplateResponse(request, "_week.html", {**ctx, "message": message})

    # --- a patient -----------------------------------------------------------------------

    @app.get("/patients/{patient_id}", response_class=HTMLResponse, include_in_schema=False)
    async def patient_page(request: Request, patient_id: str) -> HTMLResponse:
        measures, appts, alerts, monitoring, hold = await asyncio.gather(
            up(request).get("intake", f"/v1/patients/{patient_id}/measures"),
            up(request).get("scheduling", f"/v1/patients/{patient_id}/appointments"),
            up(request).get("alerts", "/v1/alerts", {"patient_id": patient_id, "limit": 200}),
            up(request).get("alerts", f"/v1/patients/{patient_id}/monitoring"),
            up(request).get("scheduling", f"/v1/patients/{patient_id}/hold"),
        )
        ctx: dict[str, Any] = {"patient_id": patient_id, "now": utcnow()}
        ctx["measures_down"] = measures if isinstance(measures, Down) else None
        ctx["unknown"] = isinstance(measures, Refused)
        if isinstance(measures, dict):
            ctx["chart"] = patient.phq9_chart(measures)
            ctx["measures"] = measures
        ctx["appts_down"] = appts if isinstance(appts, Down) else None
        if isinstance(appts, list):
            ctx["appointments"] = sorted(appts, key=lambda a: a["start"])
            ctx["progress"] = patient.series_progress(appts)
        ctx["alerts_down"] = alerts if isinstance(alerts, Down) else None
        if isinstance(alerts, list):
            ctx["alerts"] = alerts
        ctx["monitoring"] = monitoring if isinstance(monitoring, dict) else None
        ctx["monitoring_down"] = monitoring if isinstance(monitoring, Down) else None
        # held while at risk (docs/domain.md, "Hold while at risk"): shown, never hidden
        ctx["hold"] = hold if isinstance(hold, dict) and hold.get("held") else None
        ctx["hold_down"] = hold if isinstance(hold, Down) else None
        return templates.TemplateResponse(request, "patient.html", ctx)

    return app
