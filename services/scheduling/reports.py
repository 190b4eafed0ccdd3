"""Read-only figures for the ops dashboard: the sites, and per site the patients in
induction, the waitlist, induction completion and room/therapist utilisation."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from services.scheduling import repository as repo
from services.scheduling.domain.lifecycle import Status
from services.scheduling.domain.rebooking import induction_complete
from services.scheduling.domain.utilisation import (
    Interval,
    local_day,
    local_week,
    open_intervals,
    utilisation,
)
from services.scheduling.handlers import Deps
from services.scheduling.planner import to_protocol
from shared.db import Conn
from shared.errors import NotFound


class SiteBrief(BaseModel):
    site_id: str
    name: str
    timezone: str
    treatment_rooms: int
    therapists: int
    protocol: str


class Use(BaseModel):
    rooms: float | None = Field(description="booked room time / open room time (0-1)")
    therapists: float | None = Field(description="booked therapist time / open therapist time")


class SiteSummary(BaseModel):
    site_id: str
    name: str
    timezone: str
    as_of: datetime
    patients_in_induction: int = Field(description="patients with induction doses still planned")
    waitlisted: int
    inductions_ended: int = Field(description="induction series with no dose left planned")
    inductions_completed: int = Field(description="... of which every dose was completed")
    induction_completion_rate: float | None
    utilisation_today: Use
    utilisation_week: Use


async def list_sites(deps: Deps) -> list[SiteBrief]:
    async with deps.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT site_id, name, timezone, treatment_rooms, therapists, protocol "
            "FROM sites ORDER BY site_id"
        )
    return [SiteBrief.model_validate(dict(r)) for r in rows]


async def site_summary(deps: Deps, site_id: str) -> SiteSummary:
    now = deps.clock()
    async with deps.pool.acquire() as conn:
        site = await conn.fetchrow("SELECT * FROM sites WHERE site_id = $1", site_id)
        if site is None:
            raise NotFound(f"no site {site_id}")
        tz = ZoneInfo(site["timezone"])
        week = local_week(now.astimezone(tz).date(), tz)
        waitlisted = await conn.fetchval(
            "SELECT count(*) FROM waitlist WHERE site_id = $1", site_id
        )
        in_induction, ended, completed = await _inductions(conn, site_id)
        booked = await conn.fetch(
            "SELECT kind, start_at, end_at FROM appointments WHERE site_id = $1 "
            "AND status <> 'cancelled' AND start_at < $3 AND end_at > $2",
            site_id,
            week[0],
            week[1],
        )
    hours = {
        d: (time.fromisoformat(v[0]), time.fromisoformat(v[1])) for d, v in site["hours"].items()
    }
    today = local_day(now.astimezone(tz).date(), tz)
    return SiteSummary(
        site_id=site_id,
        name=site["name"],
        timezone=site["timezone"],
        as_of=now,
        patients_in_induction=in_induction,
        waitlisted=waitlisted,
        inductions_ended=ended,
        inductions_completed=completed,
        induction_completion_rate=completed / ended if ended else None,
        utilisation_today=_use(site, hours, tz, today, booked),
        utilisation_week=_use(site, hours, tz, week, booked),
    )


async def _inductions(conn: Conn, site_id: str) -> tuple[int, int, int]:
    """(patients with induction doses still planned, inductions ended, ... completed)."""
    rows = await conn.fetch(
        """
        SELECT s.patient_id, s.protocol, s.protocol_numbers,
               EXISTS (SELECT 1 FROM appointments a WHERE a.series_id = s.series_id
                       AND a.kind = 'dosing' AND a.status = ANY($2::text[])) AS live,
               ARRAY(SELECT DISTINCT a.sequence FROM appointments a
                     WHERE a.series_id = s.series_id
                       AND a.kind = 'dosing' AND a.status = $3) AS done
        FROM series s
        WHERE s.site_id = $1 AND s.purpose = 'induction'
        """,
        site_id,
        list(repo.LIVE),
        Status.completed.value,
    )
    in_induction = len({r["patient_id"] for r in rows if r["live"]})
    ended = [r for r in rows if not r["live"]]
    done = sum(
        1
        for r in ended
        if induction_complete(r["done"], to_protocol(r["protocol"], r["protocol_numbers"]))
    )
    return in_induction, len(ended), done


def _use(
    site: Any, hours: dict[str, tuple[time, time]], tz: ZoneInfo, window: Interval, booked: Any
) -> Use:
    opened = open_intervals(hours, tz, window)

    def of(kinds: tuple[str, ...]) -> list[Interval]:
        return [(b["start_at"], b["end_at"]) for b in booked if b["kind"] in kinds]

    rooms = utilisation(opened, of(("dosing", "maintenance")), site["treatment_rooms"])
    therapists = utilisation(opened, of(("integration",)), site["therapists"])
    return Use(rooms=rooms.fraction, therapists=therapists.fraction)
