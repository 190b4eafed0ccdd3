"""Reads for scheduling's API and the ops dashboard's figures: sites, appointments, the
waitlist, holds, and per site the patients in induction, induction completion and
room/therapist utilisation."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from services.scheduling.deps import Deps
from services.scheduling.domain.rebooking import induction_complete
from services.scheduling.domain.utilisation import (
    Interval,
    local_day,
    local_week,
    open_intervals,
    utilisation,
)
from services.scheduling.repository import appointments, patients, series, sites, waitlist
from services.scheduling.rows import AppointmentRow, InductionRow, SiteRow, SpanRow
from services.scheduling.schemas import (
    AppointmentOut,
    HeldPatient,
    HoldOut,
    SiteBrief,
    SiteOut,
    SiteSummary,
    Use,
    WaitlistEntry,
    schedule_entry,
)
from shared.errors import NotFound


async def get_site(deps: Deps, site_id: str) -> SiteOut:
    async with deps.pool.acquire() as conn:
        row = await sites.get_site(conn, site_id)
    if row is None:
        raise NotFound(f"no site {site_id}")
    return SiteOut.from_row(row)


async def list_sites(deps: Deps) -> list[SiteBrief]:
    async with deps.pool.acquire() as conn:
        rows = await sites.list_sites(conn)
    return [SiteBrief.from_row(r) for r in rows]


async def patient_appointments(deps: Deps, patient_id: str) -> list[AppointmentOut]:
    async with deps.pool.acquire() as conn:
        rows = await appointments.patient_appointments(conn, patient_id)
    return [AppointmentOut.from_row(r) for r in rows]


async def waitlist_entries(deps: Deps, site_id: str | None) -> list[WaitlistEntry]:
    async with deps.pool.acquire() as conn:
        rows = await waitlist.entries(conn, site_id)
    return [WaitlistEntry.from_row(r) for r in rows]


async def site_schedule(
    deps: Deps, site_id: str, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """The site's appointments as plain values in ``AppointmentOut``'s shape
    (schemas.schedule_entry: not validated again, a busy week is thousands of rows)."""
    async with deps.pool.acquire() as conn:
        if await sites.get_site(conn, site_id) is None:
            raise NotFound(f"no site {site_id}")
        rows = await appointments.site_schedule(conn, site_id, since, until)
    return [schedule_entry(r) for r in rows]


async def patient_hold(deps: Deps, patient_id: str) -> HoldOut:
    async with deps.pool.acquire() as conn:
        if not await patients.knows_patient(conn, patient_id):
            raise NotFound(f"no patient {patient_id}")
        since = await patients.hold(conn, patient_id)
    return HoldOut(held=since is not None, since=since)


async def held_patients(deps: Deps, site_id: str | None) -> list[HeldPatient]:
    async with deps.pool.acquire() as conn:
        rows = await patients.site_holds(conn, site_id)
    return [HeldPatient.from_row(r) for r in rows]


# --- the dashboard's figures -----------------------------------------------------


async def site_summary(deps: Deps, site_id: str) -> SiteSummary:
    now = deps.clock()
    async with deps.pool.acquire() as conn:
        site = await sites.get_site(conn, site_id)
        if site is None:
            raise NotFound(f"no site {site_id}")
        tz = ZoneInfo(site.timezone)
        week = local_week(now.astimezone(tz).date(), tz)
        waitlisted = await waitlist.count(conn, site_id)
        in_induction, ended, completed = _inductions(await series.inductions(conn, site_id))
        booked = await appointments.booked_spans(conn, site_id, week[0], week[1])
    today = local_day(now.astimezone(tz).date(), tz)
    return SiteSummary(
        site_id=site_id,
        name=site.name,
        timezone=site.timezone,
        as_of=now,
        patients_in_induction=in_induction,
        waitlisted=waitlisted,
        inductions_ended=ended,
        inductions_completed=completed,
        induction_completion_rate=completed / ended if ended else None,
        utilisation_today=_use(site, tz, today, booked),
        utilisation_week=_use(site, tz, week, booked),
    )


def _inductions(rows: list[InductionRow]) -> tuple[int, int, int]:
    """(patients with induction doses still planned, inductions ended, ... completed)."""
    in_induction = len({r.patient_id for r in rows if r.live})
    ended = [r for r in rows if not r.live]
    done = sum(1 for r in ended if induction_complete(r.done, r.protocol))
    return in_induction, len(ended), done


def _use(site: SiteRow, tz: ZoneInfo, window: Interval, booked: list[SpanRow]) -> Use:
    hours: dict[str, tuple[time, time]] = {
        day: (time.fromisoformat(opens), time.fromisoformat(closes))
        for day, (opens, closes) in site.hours.items()
    }
    opened = open_intervals(hours, tz, window)

    def of(kinds: tuple[str, ...]) -> list[Interval]:
        return [(b.start, b.end) for b in booked if b.kind in kinds]

    rooms = utilisation(opened, of(("dosing", "maintenance")), site.treatment_rooms)
    therapists = utilisation(opened, of(("integration",)), site.therapists)
    return Use(rooms=rooms.fraction, therapists=therapists.fraction)


async def fhir_appointments(deps: Deps, patient_id: str) -> list[AppointmentRow]:
    """Every appointment of a patient, for the FHIR facade (none for an unknown one)."""
    async with deps.pool.acquire() as conn:
        return await appointments.patient_appointments(conn, patient_id)
