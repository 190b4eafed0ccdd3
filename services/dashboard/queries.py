"""What each page shows, read from the services' APIs while rendering: a service that is
down shows as down (services/dashboard/upstream.py), never as an empty "all clear"."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from services.dashboard import board, oncall, overview, patient, schedule
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


async def _site_oncall(up: Upstream, site_id: str) -> tuple[Any, Any, Any]:
    policy, now, gaps = await asyncio.gather(
        up.get("alerts", f"/v1/sites/{site_id}/oncall"),
        up.get("alerts", f"/v1/sites/{site_id}/oncall/now"),
        up.get("alerts", f"/v1/sites/{site_id}/oncall/gaps"),  # the next 14 days
    )
    return policy, now, gaps


async def oncall_context(up: Upstream, site_ids: list[str]) -> dict[str, Any]:
    """The on-call page: ``site_ids`` only when given, else every site scheduling knows."""
    sites, clinicians, schedules = await asyncio.gather(
        up.get("scheduling", "/v1/sites"),
        up.get("alerts", "/v1/clinicians"),
        up.get("alerts", "/v1/schedules"),
    )
    for result in (clinicians, schedules):
        if isinstance(result, Down | Refused):
            return {"down": result if isinstance(result, Down) else Down("alerts", result.detail)}
    known = {s["site_id"]: s for s in sites} if isinstance(sites, list) else {}
    ids = site_ids or sorted(known)
    names = {c["clinician_id"]: c["name"] for c in clinicians}
    schedule_names = {s["schedule_id"]: s["name"] for s in schedules}
    per_site, handoffs = await asyncio.gather(
        asyncio.gather(*(_site_oncall(up, i) for i in ids)),
        asyncio.gather(
            *(up.get("alerts", f"/v1/schedules/{s['schedule_id']}/handoffs") for s in schedules)
        ),
    )
    site_rows = []
    for site_id, (policy, now, gaps) in zip(ids, per_site, strict=True):
        info = known.get(site_id, {})
        row: dict[str, Any] = {"site_id": site_id, "name": info.get("name"), "tiers": None}
        row["timezone"] = info.get("timezone") or "UTC"
        bad = next((r for r in (policy, now, gaps) if isinstance(r, Down | Refused)), None)
        if isinstance(bad, Refused):
            row["missing"] = bad.detail  # no on-call policy for the site
        elif isinstance(bad, Down):
            row["down"] = bad
        else:
            row["tiers"] = oncall.site_tiers(
                policy, now, gaps, names, schedule_names, oncall.zone(row["timezone"])
            )
        site_rows.append(row)
    schedule_rows = []
    for s, h in zip(schedules, handoffs, strict=True):
        tz = oncall.zone(s["timezone"])
        schedule_rows.append(
            {
                **s,
                "rotation_lines": [oncall.rotation_line(r, names) for r in s["rotations"]],
                "rotations_text": oncall.rotations_text(s),
                "handoffs": oncall.handoff_lines(h, names, tz) if isinstance(h, list) else None,
                "handoffs_down": h if isinstance(h, Down | Refused) else None,
                "override_rows": [
                    {
                        "override_id": o["override_id"],
                        "window": oncall.window(o["from"], o["to"], tz),
                        "who": oncall.name_of(names, o["clinician_id"]),
                        "replaces": oncall.name_of(names, o["replaces"]) if o["replaces"] else None,
                    }
                    for o in s["overrides"]
                ],
            }
        )
    clinician_rows = [
        {
            **c,
            "rules": oncall.rule_lines(c),
            "methods_text": oncall.methods_text(c),
            "rules_text": oncall.rules_text(c),
        }
        for c in clinicians
    ]
    return {
        "down": None,
        "sites": site_rows,
        "sites_down": sites if isinstance(sites, Down) and not site_ids else None,
        "site_filter": ",".join(site_ids),
        "schedules": schedule_rows,
        "clinicians": clinician_rows,
    }
