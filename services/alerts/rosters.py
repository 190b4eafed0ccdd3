"""On-call people over HTTP: clinicians, schedules, overrides, and who is on call now or
when (docs/domain.md "On-call people"). What needs other rows is checked here (a
participant, target or override naming nobody known: 422 naming the field, nothing
stored); the rules themselves are services/alerts/domain/rosters.py's."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from services.alerts import repository as repo
from services.alerts.alerting.people import load_roster
from services.alerts.deps import Deps
from services.alerts.domain import rosters
from services.alerts.domain.paging import host_allowed
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
    TierNow,
)
from services.alerts.schemas import OncallIn
from shared import metrics
from shared.db import Conn
from shared.errors import InvalidInput, NotFound
from shared.logging import get_logger

log = get_logger(__name__)

GAPS_MAX = timedelta(days=92)  # the longest window /oncall/gaps looks at
HANDOFFS_MAX = timedelta(days=92)  # the longest window /handoffs looks at


# --- clinicians -------------------------------------------------------------------------


@metrics.counted_on_commit
async def put_clinician(deps: Deps, clinician_id: str, body: ClinicianIn) -> ClinicianOut:
    problems = body.problems() + [
        {
            "field": f"contact_methods[{i}].address",
            "message": "the host is not in PAGE_ALLOWED_HOSTS",
        }
        for i, m in enumerate(body.contact_methods)
        if m.type == "webhook" and not host_allowed(m.address, deps.allowed_hosts)
    ]
    if problems:
        raise InvalidInput(problems)
    fields = {
        "name": body.name,
        "timezone": body.timezone,
        "contact_methods": [m.model_dump() for m in body.contact_methods],
        "notification_rules": [r.model_dump() for r in body.notification_rules],
        "quiet_hours": body.quiet_hours.model_dump() if body.quiet_hours else None,
    }
    async with deps.pool.acquire() as conn:
        row = await repo.put_clinician(conn, clinician_id, fields, deps.clock())
    # no name, no contact detail in the log: staff details stay in the database
    log.info("clinician_updated", clinician_id=clinician_id, version=row.version)
    return ClinicianOut.from_row(row)


async def get_clinician(deps: Deps, clinician_id: str) -> ClinicianOut:
    async with deps.pool.acquire() as conn:
        row = await repo.get_clinician(conn, clinician_id)
    if row is None:
        raise NotFound(f"no clinician {clinician_id}")
    return ClinicianOut.from_row(row)


async def list_clinicians(deps: Deps) -> list[ClinicianOut]:
    async with deps.pool.acquire() as conn:
        return [ClinicianOut.from_row(r) for r in await repo.list_clinicians(conn)]


# --- schedules --------------------------------------------------------------------------


async def _unknown(conn: Conn, named: list[tuple[str, str]]) -> list[dict[str, str]]:
    """(field, clinician id) pairs naming nobody known, as 422 errors."""
    known = await repo.known_clinicians(conn, {cid for _, cid in named})
    return [
        {"field": f, "message": f"no clinician {cid!r} (PUT /v1/clinicians/{cid} first)"}
        for f, cid in named
        if cid not in known
    ]


@metrics.counted_on_commit
async def put_schedule(deps: Deps, schedule_id: str, body: ScheduleIn) -> ScheduleOut:
    named = [
        (f"rotations[{i}].participants[{j}]", cid)
        for i, r in enumerate(body.rotations)
        for j, cid in enumerate(r.participants)
    ]
    fields = {
        "name": body.name,
        "timezone": body.timezone,
        "rotations": [r.model_dump(mode="json") for r in body.rotations],
    }
    now = deps.clock()
    async with deps.pool.acquire() as conn, conn.transaction():
        problems = await _unknown(conn, named)
        if problems:
            raise InvalidInput(problems)
        row = await repo.put_schedule(conn, schedule_id, fields, now)
        overrides = (await repo.overrides_of(conn, [schedule_id], now)).get(schedule_id, [])
    log.info("schedule_updated", schedule_id=schedule_id, version=row.version)
    return ScheduleOut.from_row(row, overrides)


async def get_schedule(deps: Deps, schedule_id: str) -> ScheduleOut:
    now = deps.clock()
    async with deps.pool.acquire() as conn:
        row = await repo.get_schedule(conn, schedule_id)
        if row is None:
            raise NotFound(f"no schedule {schedule_id}")
        overrides = (await repo.overrides_of(conn, [schedule_id], now)).get(schedule_id, [])
    return ScheduleOut.from_row(row, overrides)


async def list_schedules(deps: Deps) -> list[ScheduleOut]:
    now = deps.clock()
    async with deps.pool.acquire() as conn:
        rows = await repo.list_schedules(conn)
        overrides = await repo.overrides_of(conn, [r.schedule_id for r in rows], now)
    return [ScheduleOut.from_row(r, overrides.get(r.schedule_id, [])) for r in rows]


@metrics.counted_on_commit
async def add_override(deps: Deps, schedule_id: str, body: OverrideIn) -> OverrideOut:
    named = [("clinician_id", body.clinician_id)]
    if body.replaces is not None:
        named.append(("replaces", body.replaces))
    async with deps.pool.acquire() as conn, conn.transaction():
        if await repo.get_schedule(conn, schedule_id) is None:
            raise NotFound(f"no schedule {schedule_id}")
        problems = await _unknown(conn, named)
        if problems:
            raise InvalidInput(problems)
        row = await repo.insert_override(
            conn,
            schedule_id,
            body.from_,
            body.to,
            body.clinician_id,
            body.replaces,
            deps.clock(),
        )
    log.info("override_added", schedule_id=schedule_id, override_id=str(row.override_id))
    return OverrideOut.from_row(row)


@metrics.counted_on_commit
async def delete_override(deps: Deps, schedule_id: str, override_id: str) -> None:
    try:
        oid = uuid.UUID(override_id)
    except ValueError:
        raise NotFound(f"no override {override_id}") from None
    async with deps.pool.acquire() as conn:
        if not await repo.delete_override(conn, schedule_id, oid):
            raise NotFound(f"no override {override_id} on schedule {schedule_id}")
    log.info("override_deleted", schedule_id=schedule_id, override_id=override_id)


async def schedule_oncall(deps: Deps, schedule_id: str, at: datetime | None) -> OncallAt:
    when = at or deps.clock()
    async with deps.pool.acquire() as conn:
        row = await repo.get_schedule(conn, schedule_id)
        if row is None:
            raise NotFound(f"no schedule {schedule_id}")
        overrides = (await repo.overrides_of(conn, [schedule_id], when)).get(schedule_id, [])
    return OncallAt(clinician_ids=list(rosters.oncall_at(row.schedule(overrides), when)))


async def schedule_handoffs(
    deps: Deps, schedule_id: str, start: datetime | None, end: datetime | None
) -> list[HandoffOut]:
    """Every instant in [from, to) at which who the schedule puts on call changes (its
    rotations' handoffs and its overrides' edges); ``from`` defaults to now, ``to`` to 7 days
    after it, capped at 92."""
    frm = start or deps.clock()
    to = min(end or frm + timedelta(days=7), frm + HANDOFFS_MAX)
    if to <= frm:
        return []
    async with deps.pool.acquire() as conn:
        row = await repo.get_schedule(conn, schedule_id)
        if row is None:
            raise NotFound(f"no schedule {schedule_id}")
        # an override ending exactly at ``from`` still decides who was on just before it
        just_before = frm - timedelta(microseconds=1)
        overrides = (await repo.overrides_of(conn, [schedule_id], just_before)).get(schedule_id, [])
    return [
        HandoffOut(at=h.at, before=list(h.before), after=list(h.after))
        for h in rosters.handoffs(row.schedule(overrides), frm, to)
    ]


# --- a site's tiers ---------------------------------------------------------------------


async def check_targets(conn: Conn, body: OncallIn) -> None:
    """Every schedule and clinician a tier targets exists (else 422 naming each)."""
    named_c: list[tuple[str, str]] = []
    named_s: list[tuple[str, str]] = []
    for i, t in enumerate(body.tiers):
        for j, x in enumerate(t.targets):
            d: dict[str, Any] = x.model_dump()
            if "schedule_id" in d:
                named_s.append((f"tiers[{i}].targets[{j}].schedule_id", d["schedule_id"]))
            else:
                named_c.append((f"tiers[{i}].targets[{j}].clinician_id", d["clinician_id"]))
    problems = await _unknown(conn, named_c) if named_c else []
    if named_s:
        found = await repo.schedules_by_id(conn, {sid for _, sid in named_s})
        problems += [
            {"field": f, "message": f"no schedule {sid!r} (PUT /v1/schedules/{sid} first)"}
            for f, sid in named_s
            if sid not in found
        ]
    if problems:
        raise InvalidInput(problems)


async def site_oncall_now(deps: Deps, site_id: str, at: datetime | None) -> OncallNow:
    when = at or deps.clock()
    async with deps.pool.acquire() as conn:
        row = await repo.get_oncall(conn, site_id)
        if row is None:
            raise NotFound(f"no on-call policy for site {site_id}")
        policy = row.policy()
        roster = await load_roster(conn, policy, when)
    tiers = []
    for tier in policy.tiers:
        on = roster.on_call(tier, when)
        reached = {d.clinician_id for d in roster.deliveries(tier, "critical", when)}
        tiers.append(
            TierNow(
                clinician_ids=list(on),
                reachable=[c for c in on if c in reached],
                recipients=[
                    {"name": r.name, "webhook_url": r.webhook_url} for r in tier.recipients
                ],
            )
        )
    return OncallNow(site_id=site_id, at=when, tiers=tiers)


async def site_gaps(
    deps: Deps, site_id: str, start: datetime | None, end: datetime | None
) -> list[GapOut]:
    """Windows in which a tier resolves to nobody who can be paged (docs/domain.md)."""
    frm = start or deps.clock()
    to = min(end or frm + timedelta(days=14), frm + GAPS_MAX)
    if to <= frm:
        return []  # an empty window has no gap
    async with deps.pool.acquire() as conn:
        row = await repo.get_oncall(conn, site_id)
        if row is None:
            raise NotFound(f"no on-call policy for site {site_id}")
        policy = row.policy()
        roster = await load_roster(conn, policy, frm)
    gaps = rosters.coverage_gaps(
        [t.targets for t in policy.tiers],
        roster.schedules,
        roster.clinicians,
        frm,
        to,
        tiers_with_recipients={i for i, t in enumerate(policy.tiers) if t.recipients},
    )
    return [GapOut(from_=g.start, to=g.end, tier=g.tier) for g in gaps]
