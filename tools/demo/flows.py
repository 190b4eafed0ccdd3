"""Each patient's care as the demo plays it, and the alerts it raises."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tools.demo.api import Api, Clock, Settle, gather_all
from tools.demo.network import (
    ALERTS_TIMEOUT_S,
    BATCH,
    CHECKIN_EVERY,
    CHECKIN_NOTES,
    MONITORED,
    POLL_S,
    SERIES_APPOINTMENTS,
    SERIES_TIMEOUT_S,
    SITES,
    DemoError,
    Patient,
    Stage,
    daily,
    intake_body,
    phq9,
    trajectory,
)

# --- the flows -----------------------------------------------------------------------------


@dataclass
class Outcome:
    patient: Patient
    intake_id: str
    decision: str
    reasons: list[str]
    approved: bool = False
    scheduled: bool = False
    waitlisted: str | None = None  # the scheduling worker's reason
    checkins: int = 0
    expected_alerts: set[str] = field(default_factory=set)  # alert kinds
    steps: list[Step] = field(default_factory=list)  # what is done once its time has come
    next_dose: dict[str, Any] | None = None  # confirmed at the end if still ahead


Act = Callable[[datetime], Awaitable[None]]
_ORDER = itertools.count()


@dataclass(order=True)
class Step:
    """Something a patient's care does once the stack's time is ``at`` (and, when given,
    before ``latest``): complete a session that has ended, send a check-in..."""

    at: datetime
    order: int = field(default_factory=lambda: next(_ORDER))
    latest: datetime | None = field(default=None, compare=False)
    patient_id: str = field(default="", compare=False)
    act: Act | None = field(default=None, compare=False, repr=False)


@dataclass
class Tally:
    confirmed: int = 0
    completed: int = 0
    no_shows: int = 0
    deferred: int = 0
    checkins: int = 0


async def wait_for_series(api: Api, p: Patient) -> list[dict[str, Any]] | str:
    """The patient's appointments once the scheduling worker has proposed the whole induction
    series, or the reason it waitlisted the patient (the sites are full after many runs)."""
    started = time.monotonic()
    while True:
        appts: list[dict[str, Any]] = await api.scheduling(
            "GET", f"/v1/patients/{p.patient_id}/appointments"
        )
        series = [a for a in appts if a["reason"] == "induction"]
        if len(series) >= SERIES_APPOINTMENTS:
            return appts
        waited = time.monotonic() - started
        if waited > 2:  # usually proposed within a second: is it waitlisted?
            waiting = await api.scheduling(
                "GET", "/v1/waitlist", params={"site_id": p.site.site_id}
            )
            entry = next((w for w in waiting if w["patient_id"] == p.patient_id), None)
            if entry is not None:
                return str(entry["reason"])
        if waited > SERIES_TIMEOUT_S:
            raise DemoError(
                f"{p.patient_id} at {p.site.site_id}: {len(series)} of {SERIES_APPOINTMENTS} "
                f"induction appointments after {SERIES_TIMEOUT_S:.0f}s, and not waitlisted; "
                "are the scheduling worker and the intake relay running? "
                "(`make status`, logs in .state/logs/)"
            )
        await asyncio.sleep(POLL_S)


def session(appts: list[dict[str, Any]], kind: str, sequence: int) -> dict[str, Any]:
    """The proposed induction session of that kind and sequence number."""
    for a in appts:
        if a["kind"] == kind and a["sequence"] == sequence and a["status"] == "proposed":
            return a
    pid = appts[0]["patient_id"] if appts else "?"
    raise DemoError(f"{pid}: no proposed {kind} session #{sequence} in its series")


async def act(api: Api, appt: dict[str, Any], action: str) -> None:
    await api.scheduling("POST", f"/v1/appointments/{appt['appointment_id']}/{action}")


def time_of(a: dict[str, Any], key: str) -> datetime:
    return datetime.fromisoformat(a[key])


def later(
    api: Api,
    p: Patient,
    appt: dict[str, Any],
    action: str,
    tally: Tally,
    what: str,
    settle: Settle | None,
) -> Step:
    """``action`` on a session once it has ended (never a session completed in the future)."""

    async def run(now: datetime) -> None:
        await act(api, appt, action)
        setattr(tally, what, getattr(tally, what) + 1)
        if action == "complete" and appt["kind"] == "dosing" and settle is not None:
            settle.note(p.patient_id, "monitored", now)

    return Step(at=time_of(appt, "end"), patient_id=p.patient_id, act=run)


async def care(
    api: Api, p: Patient, out: Outcome, tally: Tally, now: datetime, settle: Settle | None
) -> None:
    """Put a scheduled patient on the way through their stage: what can be done now is
    (confirmations), the rest becomes ``out.steps`` for when its time has come."""
    appts = await wait_for_series(api, p)
    if isinstance(appts, str):
        out.waitlisted = appts
        return
    out.scheduled = True
    stage = p.stage
    if stage is Stage.confirmed:
        for kind in ("dosing", "integration"):
            await act(api, session(appts, kind, 1), "confirm")
            tally.confirmed += 1
    elif stage is Stage.no_show:
        dose = session(appts, "dosing", 1)
        await act(api, dose, "confirm")
        tally.confirmed += 1
        out.steps.append(later(api, p, dose, "no-show", tally, "no_shows", settle))
        out.expected_alerts.add("no_show")
    elif stage is Stage.deferred:
        dose = session(appts, "dosing", 1)
        await act(api, dose, "confirm")
        tally.confirmed += 1
        start = time_of(dose, "start")

        async def pre_dose(now: datetime) -> None:  # on the session's day, before it
            vitals = {"systolic": 172, "diastolic": 104, "heart_rate": 92}
            answer = await api.scheduling(
                "POST",
                f"/v1/appointments/{dose['appointment_id']}/vitals",
                json={**vitals, "taken_at": now.isoformat()},
            )
            if answer["deferred"]:
                tally.deferred += 1
                out.expected_alerts.add("dose_deferred")

        out.steps.append(
            Step(
                at=max(start - timedelta(hours=2), now),
                latest=start - timedelta(minutes=1),
                patient_id=p.patient_id,
                act=pre_dose,
            )
        )
    elif stage in MONITORED:
        doses = {Stage.remission: 3, Stage.improving: 1 + p.number % 2}.get(stage, 1)
        for seq in range(1, doses + 1):
            for kind in ("dosing", "integration"):
                a = session(appts, kind, seq)
                await act(api, a, "confirm")
                tally.confirmed += 1
                out.steps.append(later(api, p, a, "complete", tally, "completed", settle))
        out.next_dose = session(appts, "dosing", doses + 1)


def checkin_steps(
    api: Api, out: Outcome, tally: Tally, rounds: list[datetime], settle: Settle
) -> list[Step]:
    """A monitored patient's check-ins, one each round after their first completed dose."""
    p = out.patient
    first = min(s.at for s in out.steps)
    mine = [r for r in rounds if r > first + timedelta(hours=1)]
    steps = []
    for n, (total, ideation) in enumerate(daily(trajectory(p), len(mine))):
        at = mine[n] if n < len(mine) else rounds[-1]

        async def send(
            now: datetime, total: int = total, ideation: bool = ideation, n: int = n
        ) -> None:
            body = {
                "checkin_id": str(uuid.uuid4()),
                "patient_id": p.patient_id,
                "submitted_at": now.isoformat(),
                "phq9": phq9(total, 1 if ideation else 0),
                "suicidal_ideation": ideation,
                "note": "hard few days" if ideation else CHECKIN_NOTES[(p.number + n) % 8],
            }
            answer = await api.intake("POST", "/v1/checkins", json=body)
            out.checkins += 1
            tally.checkins += 1
            settle.note(p.patient_id, "checkin", now)
            if ideation:
                out.expected_alerts.add("suicide_risk")
            if answer["assessment"]["worsening"]:
                out.expected_alerts.add("worsening")

        steps.append(Step(at=at, patient_id=p.patient_id, act=send))
    return steps


def check_in_rounds(start: datetime, outcomes: list[Outcome]) -> list[datetime]:
    """Every CHECKIN_EVERY from ``start`` until the last session is done and every
    monitored patient has had room for their whole trajectory."""
    last = max((s.at for o in outcomes for s in o.steps), default=start)
    n = math.ceil((last - start) / CHECKIN_EVERY) + 1
    for o in outcomes:
        if o.patient.stage in MONITORED and o.steps:
            first = min(s.at for s in o.steps)
            before = math.ceil((first + timedelta(hours=1) - start) / CHECKIN_EVERY)
            n = max(n, before + len(trajectory(o.patient)))
    return [start + CHECKIN_EVERY * k for k in range(1, n + 1)]


async def live_through(
    clock: Clock, steps: list[Step], gate: asyncio.Semaphore, settle: Settle
) -> datetime:
    """Move the clock through the steps' times, doing each once its time has come: a
    patient's steps in order, patients side by side; one move per BATCH of due steps."""
    pending = list(steps)
    heapq.heapify(pending)
    now = await clock.now()
    while pending:
        horizon = pending[0].at + BATCH
        batch = [s for s in pending if s.at <= horizon]
        target = max(
            min([horizon, *(s.latest for s in batch if s.latest is not None)]), pending[0].at
        )
        await settle.before(target)
        now = await clock.advance_to(target)
        due: list[Step] = []
        while pending and pending[0].at <= now:
            due.append(heapq.heappop(pending))
        by_patient: dict[str, list[Step]] = {}
        for s in due:
            by_patient.setdefault(s.patient_id, []).append(s)

        async def one(mine: list[Step], now: datetime = now) -> None:
            async with gate:
                for s in mine:
                    assert s.act is not None
                    await s.act(now)

        await gather_all([one(mine) for mine in by_patient.values()])
    return now


async def patient_flow(
    api: Api,
    p: Patient,
    run: str,
    tally: Tally,
    now: datetime,
    gate: asyncio.Semaphore,
    settle: Settle | None = None,
) -> Outcome:
    async with gate:
        body = intake_body(p, run, now)
        result = await api.intake("POST", "/v1/intakes", json=body)
        out = Outcome(p, result["intake_id"], result["decision"], result["reasons"])
        if result["suicide_risk"] == "high" or result.get("phq9_item9_positive"):
            out.expected_alerts.add("suicide_risk")
        if out.decision == "needs_review" and p.stage is Stage.review_approved:
            await api.intake(
                "POST",
                f"/v1/intakes/{out.intake_id}/approve",
                json={
                    "by": p.site.oncall[1].split(" (")[0],
                    "note": "stable on a mood stabiliser; specialist protocol",
                },
            )
            out.approved = True
        if out.decision == "eligible" or out.approved:
            await care(api, p, out, tally, now, settle)
        return out


# --- alerts --------------------------------------------------------------------------------


async def run_alerts(api: Api, run: str) -> list[dict[str, Any]]:
    """Every alert of this run's patients, read back per site."""
    prefix = f"demo-{run}-"
    found: list[dict[str, Any]] = []
    for site in SITES:
        rows = await api.alerts(
            "GET", "/v1/alerts", params={"site_id": site.site_id, "limit": 1000}
        )
        found += [a for a in rows if a["patient_id"].startswith(prefix)]
    return found


async def wait_for_alerts(api: Api, run: str, outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Wait until the alerts service has raised every alert the flows should have raised."""
    expected = {(o.patient.patient_id, k) for o in outcomes for k in o.expected_alerts}
    deadline = time.monotonic() + ALERTS_TIMEOUT_S
    while True:
        alerts = await run_alerts(api, run)
        missing = expected - {(a["patient_id"], a["kind"]) for a in alerts}
        if not missing:
            return alerts
        if time.monotonic() > deadline:
            shown = ", ".join(f"{k} for {pid}" for pid, k in sorted(missing)[:5])
            raise DemoError(
                f"{len(missing)} expected alert(s) not raised after {ALERTS_TIMEOUT_S:.0f}s "
                f"({shown}); are the alerts worker and the relays running? (`make status`)"
            )
        await asyncio.sleep(POLL_S * 2)


async def acknowledge_one(api: Api, alerts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Acknowledge the oldest open critical alert (else any open one), as its site's tier 1."""
    open_ = [a for a in alerts if a["status"] == "open"]
    open_.sort(key=lambda a: (a["severity"] != "critical", a["raised_at"]))
    if not open_:
        return None
    alert = open_[0]
    site = next(s for s in SITES if s.site_id == alert["site_id"])
    body = {"by": site.oncall[0], "note": "called the patient; reviewing the safety plan"}
    acked: dict[str, Any] = await api.alerts(
        "POST", f"/v1/alerts/{alert['alert_id']}/acknowledge", json=body
    )
    return acked
