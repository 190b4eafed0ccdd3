"""The network overview: one row per site from the scheduling and alerts APIs' figures,
and the time-to-acknowledge of critical alerts. Missing figures stay None ("unknown"),
never 0, when the service that owns them is down."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def pct(value: float | None) -> str:
    return "—" if value is None else f"{round(value * 100)}%"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def site_rows(
    sites: Sequence[dict[str, Any]] | None,
    summaries: dict[str, dict[str, Any]],
    counts: dict[str, Any] | None,
    monitoring: Sequence[dict[str, Any]] | None,
) -> list[dict[str, Any]]:
    """Sites known to scheduling or to alerts, those with open critical alerts first."""
    by_site: dict[str, dict[str, Any]] = {}
    for s in sites or []:
        by_site[s["site_id"]] = {
            "site_id": s["site_id"],
            "name": s["name"],
            "timezone": s["timezone"],
        }
    for c in (counts or {}).get("sites", []):
        by_site.setdefault(c["site_id"], {"site_id": c["site_id"], "name": None, "timezone": None})
    watched = {m["site_id"]: m for m in monitoring or []}
    rows = []
    for site_id, row in by_site.items():
        summary = summaries.get(site_id)
        open_ = next(
            (c["open"] for c in (counts or {}).get("sites", []) if c["site_id"] == site_id), None
        )
        acked = next(
            (
                c["acknowledged"]["total"]
                for c in (counts or {}).get("sites", [])
                if c["site_id"] == site_id
            ),
            0 if counts is not None else None,
        )
        m = watched.get(site_id)
        rows.append(
            {
                **row,
                "in_induction": summary["patients_in_induction"] if summary else None,
                "waitlisted": summary["waitlisted"] if summary else None,
                "completion": summary["induction_completion_rate"] if summary else None,
                "completion_n": summary["inductions_ended"] if summary else None,
                "rooms_today": summary["utilisation_today"]["rooms"] if summary else None,
                "rooms_week": summary["utilisation_week"]["rooms"] if summary else None,
                "therapists_today": summary["utilisation_today"]["therapists"] if summary else None,
                "therapists_week": summary["utilisation_week"]["therapists"] if summary else None,
                "monitored": (m["monitored"] if m else 0) if monitoring is not None else None,
                "critical": open_["critical"] if open_ else (0 if counts is not None else None),
                "high": open_["high"] if open_ else (0 if counts is not None else None),
                "warning": open_["warning"] if open_ else (0 if counts is not None else None),
                "acknowledged": acked,
            }
        )
    return sorted(rows, key=lambda r: (-(r["critical"] or 0), -(r["high"] or 0), r["site_id"]))


def ack_rows(
    week: Sequence[dict[str, Any]], month: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Network first, then each site: p50/p90 over 7 and 30 days."""
    keys = [r["site_id"] for r in month]
    w = {r["site_id"]: r for r in week}
    m = {r["site_id"]: r for r in month}
    return [
        {
            "site_id": k,
            "week": w.get(k),
            "month": m.get(k),
        }
        for k in sorted(keys, key=lambda k: (k is not None, k or ""))
    ]
