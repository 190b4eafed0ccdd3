"""Read-only figures for the ops dashboard: patients monitored per site, and how long
critical (or any severity's) alerts waited for a human to acknowledge them."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field

from services.alerts.deps import Deps


class SiteMonitoring(BaseModel):
    site_id: str
    monitored: int = Field(description="patients whose check-ins are being watched")
    missing_checkins: int = Field(description="... of whom with at least one miss in a row")


class AckTimes(BaseModel):
    site_id: str | None = Field(description="null for the whole network")
    severity: str
    days: int
    raised: int
    acknowledged: int
    p50_s: float | None = Field(description="median time from raise to acknowledgement")
    p90_s: float | None


async def monitoring_counts(deps: Deps) -> list[SiteMonitoring]:
    async with deps.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT site_id, count(*) AS monitored, "
            "count(*) FILTER (WHERE consecutive_misses > 0) AS missing_checkins "
            "FROM patients WHERE deadline_at IS NOT NULL GROUP BY site_id ORDER BY site_id"
        )
    return [SiteMonitoring.model_validate(dict(r)) for r in rows]


async def ack_times(deps: Deps, severity: str, days: int) -> list[AckTimes]:
    """Per site and for the whole network (``site_id`` null), over the last ``days``."""
    since = deps.clock() - timedelta(days=days)
    async with deps.pool.acquire() as conn:
        rows = await conn.fetch(
            """
            SELECT site_id, count(*) AS raised, count(acknowledged_at) AS acknowledged,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM
                       acknowledged_at - raised_at)) AS p50_s,
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM
                       acknowledged_at - raised_at)) AS p90_s
            FROM alerts WHERE severity = $1 AND raised_at >= $2
            GROUP BY GROUPING SETS ((site_id), ())
            ORDER BY site_id NULLS FIRST
            """,
            severity,
            since,
        )
    return [AckTimes.model_validate({**dict(r), "severity": severity, "days": days}) for r in rows]
