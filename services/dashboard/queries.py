"""What each page shows, read from the services' APIs while rendering: a service that is
down shows as down (services/dashboard/upstream.py), never as an empty "all clear"."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from services.dashboard import board, overview, patient, schedule
from services.dashboard.upstream import Down, Refused, Upstream
from shared.clock import utcnow


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


async def board_context(up: Upstream) -> dict[str, Any]:
    open_, acked = await asyncio.gather(
        up.get("alerts", "/v1/alerts", {"status": "open", "limit": 500}),
        up.get("alerts", "/v1/alerts", {"status": "acknowledged", "limit": 500}),
    )
    for result in (open_, acked):
        if isinstance(result, Down | Refused):
            return {"down": result if isinstance(result, Down) else Down("alerts", "refused")}
    now = utcnow()
    alerts = board.board_order([*open_, *acked])
    for a in alerts:
        a["age"] = board.age(a["raised_at"], now)
    return {"alerts": alerts, "critical_ids": board.critical_open(alerts), "down": None}


async def sites_context(up: Upstream) -> dict[str, Any]:
    sites, counts, monitoring, week, month = await asyncio.gather(
        up.get("scheduling", "/v1/sites"),
        up.get("alerts", "/v1/alerts/counts"),
        up.get("alerts", "/v1/monitoring/counts"),
        up.get("alerts", "/v1/alerts/ack-times", {"severity": "critical", "days": 7}),
        up.get("alerts", "/v1/alerts/ack-times", {"severity": "critical", "days": 30}),
    )
    downs = [r for r in (sites, counts, monitoring, week, month) if isinstance(r, Down)]
    ok_sites = sites if isinstance(sites, list) else None
    summaries: dict[str, dict[str, Any]] = {}
    if ok_sites:
        found = await asyncio.gather(
            *(up.get("scheduling", f"/v1/sites/{s['site_id']}/summary") for s in ok_sites)
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


async def pages_context(up: Upstream, alert_id: str) -> dict[str, Any]:
    detail = await up.get("alerts", f"/v1/alerts/{alert_id}")
    if isinstance(detail, Down | Refused):
        return {"down": detail if isinstance(detail, Down) else Down("alerts", detail.detail)}
    return {"pages": detail["pages"], "down": None}


def _week_of(site: dict[str, Any], week: str | None) -> date:
    today = utcnow().astimezone(ZoneInfo(site["timezone"])).date()
    try:
        return date.fromisoformat(week) if week else today
    except ValueError:
        return today


async def week_context(up: Upstream, site_id: str, week: str | None) -> dict[str, Any]:
    site = await up.get("scheduling", f"/v1/sites/{site_id}")
    if isinstance(site, Down):
        return {"down": site, "site_id": site_id}
    if isinstance(site, Refused):
        return {"missing": site.detail, "site_id": site_id}
    start = schedule.week_start(_week_of(site, week))
    begin, end = schedule.bounds(site, start)
    appts = await up.get(
        "scheduling",
        f"/v1/sites/{site_id}/schedule",
        {"from": begin.isoformat(), "to": end.isoformat()},
    )
    if isinstance(appts, Down | Refused):
        down = appts if isinstance(appts, Down) else Down("scheduling", appts.detail)
        return {"down": down, "site_id": site_id, "site": site}
    wk = schedule.build_week(site, appts, start)
    holds = await up.get("scheduling", "/v1/holds", {"site_id": site_id})
    return {
        "week": wk,
        "site": site,
        "site_id": site_id,
        "down": None,
        "holds": holds if isinstance(holds, list) else None,
        "holds_down": holds if isinstance(holds, Down | Refused) else None,
    }


async def patient_context(up: Upstream, patient_id: str) -> dict[str, Any]:
    measures, appts, alerts, monitoring, hold = await asyncio.gather(
        up.get("intake", f"/v1/patients/{patient_id}/measures"),
        up.get("scheduling", f"/v1/patients/{patient_id}/appointments"),
        up.get("alerts", "/v1/alerts", {"patient_id": patient_id, "limit": 200}),
        up.get("alerts", f"/v1/patients/{patient_id}/monitoring"),
        up.get("scheduling", f"/v1/patients/{patient_id}/hold"),
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
    return ctx
