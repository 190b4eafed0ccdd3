"""Load a small, living demo network into a running stack, through the public HTTP APIs only.

    make demo
    .venv/bin/python -m tools.demo [--intake URL] [--scheduling URL] [--alerts URL]

It creates three sites in three time zones (opening hours, rooms, therapists, and a
two-tier on-call policy paging ``http://127.0.0.1:9900/page`` and ``/page2``: watch the
pages with ``.venv/bin/python -m tools.page_receiver --port 9900``), then 40 patients
at different stages of their care:

- most are eligible and get an induction series proposed by the scheduling worker;
  some are left proposed, some have their first session(s) confirmed, others have
  dosing and integration sessions completed (which starts check-in monitoring) and
  send between-session check-ins: improving (response, remission), worsening (a
  ``worsening`` alert) or reporting suicidal ideation (a critical ``suicide_risk``);
- two no-shows and one dose deferred for high pre-dose blood pressure (warnings);
- a few ``needs_review`` intakes (PHQ-9 item 9 positive, which also raises a critical
  alert; C-SSRS moderate; high blood pressure; a relative contraindication that a
  clinician approves) and a few ``ineligible`` ones (contraindications, not TRD).

It needs the stack's dev clock (``DEV_CLOCK=1``, on by default for ``make up``; README
"Moving time: the dev clock") and moves it forward, about a week: the patients in care have
their intake now, then days pass; each session is completed (or missed) once it has
really ended, a pre-dose blood pressure is taken on the session's day, and every
check-in is stamped with the stack's time, one every 20 hours from the first completed
dose (the production cadence is a day, so nobody's check-in is missed). The patients
not yet in care have their intake at the end, so their sessions lie ahead.

One alert is acknowledged, so the board shows open and acknowledged alerts. Ids are
unique per run (patients ``demo-<run>-NN``, random ``run``): a second run adds a second
batch of patients to the same three sites. Nothing here touches the database or Kafka.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import math
import os
import secrets
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

import httpx

PAGE_RECEIVER = "http://127.0.0.1:9900"
SERIES_APPOINTMENTS = 12  # six dosing sessions, each with its integration session
SERIES_TIMEOUT_S = 30.0
ALERTS_TIMEOUT_S = 30.0
POLL_S = 0.25
CONCURRENCY = 8
CHECKIN_EVERY = timedelta(hours=20)  # under the production check-in interval (a day)
BATCH = timedelta(hours=6)  # what falls due within this is done after one clock move
CLOCK_TIMEOUT_S = 10.0
# The clock moves faster than events flow: a check-in (or a first dose) is seen by the
# alerts service before the clock passes its time + this, so no deadline passes unseen.
SETTLE = timedelta(hours=12)

T = TypeVar("T")


class DemoError(Exception):
    """Something the person running the demo must fix or know about; exit code 1."""


# --- the network --------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    site_id: str
    name: str
    timezone: str
    hours: dict[str, list[str]]
    treatment_rooms: int
    therapists: int
    phone_prefix: str
    oncall: tuple[str, str]  # tier 1, tier 2 recipient names

    def body(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "timezone": self.timezone,
            "hours": self.hours,
            "treatment_rooms": self.treatment_rooms,
            "therapists": self.therapists,
        }

    def oncall_body(self) -> dict[str, Any]:
        first, second = self.oncall
        return {
            "tiers": [
                {
                    "recipients": [{"name": first, "webhook_url": f"{PAGE_RECEIVER}/page"}],
                    "escalate_after_s": 900,
                },
                {"recipients": [{"name": second, "webhook_url": f"{PAGE_RECEIVER}/page2"}]},
            ]
        }


def _week(days: str, opening: str, closing: str) -> dict[str, list[str]]:
    return {d: [opening, closing] for d in days.split()}


SITES: tuple[Site, ...] = (
    Site(
        site_id="demo-brooklyn",
        name="Brooklyn Heights Clinic",
        timezone="America/New_York",
        hours={**_week("mon tue wed thu", "08:00", "19:00"), "fri": ["08:00", "17:00"]}
        | {"sat": ["09:00", "14:00"]},
        treatment_rooms=5,
        therapists=4,
        phone_prefix="+1-718-555-01",
        oncall=("Dr. Maya Okafor", "Dr. Samuel Reyes (medical director)"),
    ),
    Site(
        site_id="demo-denver",
        name="Denver Highlands Clinic",
        timezone="America/Denver",
        hours={**_week("mon tue wed thu", "07:30", "18:00"), "fri": ["07:30", "16:00"]},
        treatment_rooms=4,
        therapists=3,
        phone_prefix="+1-303-555-01",
        oncall=("Dr. Elena Novak", "Dr. James Whitfield (medical director)"),
    ),
    Site(
        site_id="demo-london",
        name="Marylebone Clinic, London",
        timezone="Europe/London",
        hours=_week("mon tue wed thu fri", "09:00", "17:30"),
        treatment_rooms=4,
        therapists=3,
        phone_prefix="+44-20-7946-00",
        oncall=("Dr. Aisha Rahman", "Dr. Oliver Grant (medical director)"),
    ),
)


# --- the patients -------------------------------------------------------------------------


class Stage(StrEnum):
    proposed = "proposed"  # series proposed, nothing else yet
    confirmed = "confirmed"  # first dose and integration confirmed
    improving = "improving"  # dose(s) completed, check-ins down to a response
    remission = "remission"  # three doses completed, check-ins down to remission
    worsening = "worsening"  # dose completed, check-ins rise >= 5 above the lowest
    ideation = "ideation"  # dose completed, a check-in reports suicidal ideation
    no_show = "no_show"  # confirmed first dose, not attended
    deferred = "deferred"  # confirmed first dose, deferred for pre-dose blood pressure
    review_item9 = "review_item9"  # PHQ-9 item 9 positive at intake (critical alert)
    review_cssrs = "review_cssrs"  # C-SSRS moderate
    review_bp = "review_bp"  # blood pressure over the intake limit
    review_approved = "review_approved"  # relative contraindication, approved by a clinician
    ineligible_pregnancy = "ineligible_pregnancy"
    ineligible_psychosis = "ineligible_psychosis"
    ineligible_not_trd = "ineligible_not_trd"


PLAN: tuple[tuple[Stage, int], ...] = (
    (Stage.proposed, 8),
    (Stage.confirmed, 5),
    (Stage.improving, 8),
    (Stage.remission, 3),
    (Stage.worsening, 3),
    (Stage.ideation, 2),
    (Stage.no_show, 2),
    (Stage.deferred, 1),
    (Stage.review_item9, 2),
    (Stage.review_cssrs, 1),
    (Stage.review_bp, 1),
    (Stage.review_approved, 1),
    (Stage.ineligible_pregnancy, 1),
    (Stage.ineligible_psychosis, 1),
    (Stage.ineligible_not_trd, 1),
)
REVIEW = frozenset({Stage.review_item9, Stage.review_cssrs, Stage.review_bp, Stage.review_approved})
INELIGIBLE = frozenset(
    {Stage.ineligible_pregnancy, Stage.ineligible_psychosis, Stage.ineligible_not_trd}
)
MONITORED = frozenset({Stage.improving, Stage.remission, Stage.worsening, Stage.ideation})
# In care during the days the clock is moved through (the others have their intake after).
IN_CARE = MONITORED | {Stage.no_show, Stage.deferred}

# fmt: off
FIRST_NAMES = (
    "Avery", "Jordan", "Riley", "Morgan", "Casey", "Quinn", "Rowan", "Harper", "Emerson",
    "Finley", "Sawyer", "Reese", "Dakota", "Hayden", "Parker", "Skyler", "Blake", "Cameron",
    "Drew", "Elliot",
)
LAST_NAMES = (
    "Abbott", "Bellamy", "Carver", "Dalton", "Ellery", "Fairbanks", "Galloway", "Hartley",
    "Inman", "Jessop", "Kendrick", "Lockwood", "Merriman", "Northcott", "Oakley", "Pemberton",
    "Quarles", "Radcliffe", "Stanton", "Thorne", "Underhill",
)
# fmt: on
CHECKIN_NOTES = (
    "slept better this week",
    "busy week at work, managing",
    "walked most mornings",
    "felt a bit flat midweek",
    "integration session was useful",
    "spent the weekend with family",
    "appetite back to normal",
    "tired but okay",
)


def expected_decision(stage: Stage) -> str:
    if stage in INELIGIBLE:
        return "ineligible"
    return "needs_review" if stage in REVIEW else "eligible"


@dataclass(frozen=True)
class Patient:
    number: int
    patient_id: str
    site: Site
    stage: Stage
    baseline: int  # intake PHQ-9 total
    intake_age: timedelta  # how long ago the intake was submitted


def phq9(total: int, item9: int = 0) -> list[int]:
    """Nine item scores adding up to ``total``, item 9 as given (0-3 each)."""
    items = [0] * 9
    items[8] = item9
    left = total - item9
    order = (0, 1, 3, 2, 5, 6, 4, 7)
    i = 0
    while left > 0:
        k = order[i % len(order)]
        if items[k] < 3:
            items[k] += 1
            left -= 1
        i += 1
        if i > 100:
            raise ValueError(f"PHQ-9 total {total} out of range")
    return items


def patients_for(run: str) -> list[Patient]:
    stages = [stage for stage, n in PLAN for _ in range(n)]
    return [
        Patient(
            number=i + 1,
            patient_id=f"demo-{run}-{i + 1:02d}",
            site=SITES[i % len(SITES)],
            stage=stage,
            baseline=17 + (i * 5) % 8,  # 17..24: moderately severe to severe
            intake_age=timedelta(days=12 + (i * 7) % 19, hours=(i * 5) % 9),
        )
        for i, stage in enumerate(stages)
    ]


def intake_body(p: Patient, run: str, now: datetime) -> dict[str, Any]:
    i = p.number
    first = FIRST_NAMES[i % len(FIRST_NAMES)]
    last = LAST_NAMES[(i * 7) % len(LAST_NAMES)]
    cssrs = {
        "wish_to_be_dead": False,
        "suicidal_thoughts": False,
        "method": False,
        "intent": False,
        "plan": False,
        "behavior_past_3_months": False,
        "behavior_ever": False,
    }
    trials: list[dict[str, Any]] = [
        {"medication": "sertraline", "adequate": True, "weeks": 8, "outcome": "no_response"},
        {"medication": "venlafaxine", "adequate": True, "weeks": 10, "outcome": "partial_response"},
    ]
    if i % 3 == 0:
        trials.append(
            {"medication": "bupropion", "adequate": True, "weeks": 6, "outcome": "partial_response"}
        )
    conditions: list[str] = ["controlled_hypertension"] if i % 4 == 0 else []
    vitals = {"systolic": 112 + (i * 3) % 24, "diastolic": 70 + (i * 2) % 14, "heart_rate": 64 + i}
    item9 = 0
    match p.stage:
        case Stage.review_item9:
            item9 = 1
        case Stage.review_cssrs:
            cssrs |= {"wish_to_be_dead": True, "suicidal_thoughts": True, "method": True}
        case Stage.review_bp:
            vitals |= {"systolic": 166, "diastolic": 98}
        case Stage.review_approved:
            conditions = ["bipolar_disorder"]
        case Stage.ineligible_pregnancy:
            conditions = ["pregnancy"]
        case Stage.ineligible_psychosis:
            conditions = ["active_psychosis"]
        case Stage.ineligible_not_trd:
            trials = [
                {"medication": "escitalopram", "adequate": True, "weeks": 8, "outcome": "response"}
            ]
    weekdays = [d for d in p.site.hours if d != "sat"] if i % 5 else list(p.site.hours)
    opening = min(h[0] for h in p.site.hours.values())
    closing = max(h[1] for h in p.site.hours.values())
    preferences: dict[str, Any] = {"weekdays": weekdays, "earliest": opening, "latest": closing}
    return {
        "intake_id": str(uuid.uuid4()),
        "site_id": p.site.site_id,
        "submitted_at": (now - p.intake_age).isoformat(),
        "patient": {
            "patient_id": p.patient_id,
            "name": f"{first} {last}",
            "date_of_birth": date(1962 + (i * 3) % 38, 1 + i % 12, 1 + (i * 11) % 28).isoformat(),
            "phone": f"{p.site.phone_prefix}{i:02d}",
            "email": f"{first}.{last}.{run}{i:02d}@example.org".lower(),
        },
        "phq9": phq9(p.baseline, item9),
        "cssrs": cssrs,
        "antidepressant_trials": trials,
        "conditions": conditions,
        "vitals": vitals,
        "preferences": preferences,
    }


def trajectory(p: Patient) -> list[tuple[int, bool]]:
    """(PHQ-9 total, suicidal ideation) of each check-in, oldest first."""
    b = p.baseline
    match p.stage:
        case Stage.improving:
            return [(b - 3, False), (b - 6, False), (b // 2, False)]  # a response
        case Stage.remission:
            return [(b - 5, False), (b // 2, False), (6, False), (3, False)]  # remission
        case Stage.worsening:
            return [(b - 4, False), (b - 8, False), (b - 2, False)]  # +6 over the lowest
        case Stage.ideation:
            return [(b - 2, False), (b - 3, True)]
    return []


def daily(points: list[tuple[int, bool]], n: int) -> list[tuple[int, bool]]:
    """``n`` check-ins ending in the trajectory's points (the first one held until then)."""
    return [points[0]] * (n - len(points)) + points if n > len(points) else points


# --- HTTP ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Urls:
    intake: str
    scheduling: str
    alerts: str


class Api:
    """The three services' public APIs; every unexpected answer is a ``DemoError``."""

    def __init__(self, client: httpx.AsyncClient, urls: Urls) -> None:
        self.client = client
        self.urls = urls

    async def call(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        ok: Sequence[int] = (200, 201, 202),
    ) -> Any:
        try:
            r = await self.client.request(method, url, json=json, params=params)
        except httpx.HTTPError as exc:
            raise DemoError(f"{method} {url} failed: {exc!r}") from None
        if r.status_code not in ok:
            raise DemoError(f"{method} {url} -> {r.status_code}: {r.text[:500]}")
        return r.json() if r.content else None

    async def intake(self, method: str, path: str, **kw: Any) -> Any:
        return await self.call(method, self.urls.intake + path, **kw)

    async def scheduling(self, method: str, path: str, **kw: Any) -> Any:
        return await self.call(method, self.urls.scheduling + path, **kw)

    async def alerts(self, method: str, path: str, **kw: Any) -> Any:
        return await self.call(method, self.urls.alerts + path, **kw)


class Clock:
    """The stack's dev clock (``/v1/dev/clock``): read, and moved forward for everyone."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.started: datetime | None = None

    async def now(self) -> datetime:
        answer = await self.api.scheduling("GET", "/v1/dev/clock", ok=(200, 404))
        if answer.get("error") == "not_found" or "now" not in answer:
            raise DemoError(
                "the demo moves the stack's clock, and this stack has none: start it with "
                "DEV_CLOCK=1 (`make up` and `make start` do, unless DEV_CLOCK=0)"
            )
        now = datetime.fromisoformat(answer["now"])
        if self.started is None:
            self.started = now
        return now

    async def advance_to(self, when: datetime) -> datetime:
        """The stack's time, at least ``when`` (every service told before it returns)."""
        now = await self.now()
        if now >= when:
            return now
        seconds = math.ceil((when - now).total_seconds()) + 1
        moved = await self.api.scheduling("POST", "/v1/dev/clock", json={"advance_s": seconds})
        target = moved["offset_s"]
        deadline = time.monotonic() + CLOCK_TIMEOUT_S
        while True:
            seen = await asyncio.gather(
                self.api.intake("GET", "/v1/dev/clock"), self.api.alerts("GET", "/v1/dev/clock")
            )
            if all(s["offset_s"] >= target for s in seen):
                return datetime.fromisoformat(moved["now"])
            if time.monotonic() > deadline:
                raise DemoError(
                    f"the services did not all follow the clock within {CLOCK_TIMEOUT_S:.0f}s"
                )
            await asyncio.sleep(0.02)


@dataclass
class Settle:
    """What the alerts service must have seen before the clock moves on (see SETTLE):
    (patient id, "monitored" | "checkin", the stack's time it was done)."""

    api: Api
    pending: list[tuple[str, str, datetime]] = field(default_factory=list)

    def note(self, patient_id: str, what: str, at: datetime) -> None:
        self.pending.append((patient_id, what, at))

    async def before(self, target: datetime) -> None:
        due = [w for w in self.pending if w[2] + SETTLE < target]
        deadline = time.monotonic() + ALERTS_TIMEOUT_S
        while due:
            states = await asyncio.gather(
                *(
                    self.api.alerts("GET", f"/v1/patients/{pid}/monitoring", ok=(200, 404))
                    for pid, _, _ in due
                )
            )
            due = [w for w, s in zip(due, states, strict=True) if not _seen(w, s)]
            if due and time.monotonic() > deadline:
                raise DemoError(
                    f"the alerts service has not seen {len(due)} completed dose(s) or "
                    f"check-in(s) after {ALERTS_TIMEOUT_S:.0f}s; are the relays and the "
                    "alerts worker running? (`make status`)"
                )
            if due:
                await asyncio.sleep(0.05)
        self.pending = [w for w in self.pending if w[2] + SETTLE >= target]


def _seen(what: tuple[str, str, datetime], state: Any) -> bool:
    _, kind, at = what
    if not isinstance(state, dict) or not state.get("monitored"):
        return False
    if kind == "monitored":
        return True
    last = state.get("last_checkin_at")
    return last is not None and datetime.fromisoformat(last) >= at


async def check_reachable(client: httpx.AsyncClient, urls: Urls) -> None:
    async def one(name: str, url: str) -> None:
        try:
            r = await client.get(f"{url}/readyz", timeout=5)
        except httpx.HTTPError as exc:
            raise DemoError(
                f"the {name} service is not reachable at {url} ({type(exc).__name__}): "
                "run `make up` or `make start` first"
            ) from None
        if r.status_code != 200:
            raise DemoError(
                f"the {name} service at {url} is not ready ({r.status_code}: {r.text[:200]}); "
                "is the stack still starting? (`make status`, logs in .state/logs/)"
            )

    await asyncio.gather(
        one("intake", urls.intake), one("scheduling", urls.scheduling), one("alerts", urls.alerts)
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


def _time(a: dict[str, Any], key: str) -> datetime:
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

    return Step(at=_time(appt, "end"), patient_id=p.patient_id, act=run)


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
        start = _time(dose, "start")

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

        await _gather([one(mine) for mine in by_patient.values()])
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


# --- the run -------------------------------------------------------------------------------


@dataclass
class Summary:
    run: str
    seconds: float
    sites: list[dict[str, Any]]
    outcomes: list[Outcome]
    tally: Tally
    appointments: Counter[str]
    alerts: list[dict[str, Any]]
    acknowledged: dict[str, Any] | None
    dashboard_url: str
    clock_from: datetime | None = None
    clock_to: datetime | None = None

    @property
    def decisions(self) -> Counter[str]:
        return Counter(o.decision for o in self.outcomes)

    def patients(self, *stages: Stage) -> list[str]:
        return [o.patient.patient_id for o in self.outcomes if o.patient.stage in stages]

    def lines(self) -> list[str]:
        d = self.decisions
        approved = sum(o.approved for o in self.outcomes)
        n = len(self.outcomes)
        t = self.tally
        appts = self.appointments
        statuses = ("proposed", "confirmed", "completed", "no_show", "cancelled")
        by = Counter((a["site_id"], a["severity"], a["status"]) for a in self.alerts)

        def count(site: str | None, sev: str, status: str) -> int:
            return sum(
                v
                for (si, se, st), v in by.items()
                if se == sev and st == status and site in (None, si)
            )

        sevs = ("critical", "high", "warning")
        table = [
            f"    {'site':<14} {'time zone':<17} {'rooms':>5} {'ther.':>5} {'pts':>4}"
            "  open: crit high warn   ack: crit high warn"
        ]
        for s in self.sites:
            site = s["site_id"]
            pts = sum(o.patient.site.site_id == site for o in self.outcomes)
            opened = " ".join(f"{count(site, sev, 'open'):>4}" for sev in sevs)
            acked = " ".join(f"{count(site, sev, 'acknowledged'):>4}" for sev in sevs)
            table.append(
                f"    {site:<14} {s['timezone']:<17} {s['treatment_rooms']:>5} "
                f"{s['therapists']:>5} {pts:>4}        {opened}        {acked}"
            )
        by_status = "; ".join(
            f"{status} "
            + ", ".join(
                f"{sev} {count(None, sev, status)}" for sev in sevs if count(None, sev, status)
            )
            for status in ("open", "acknowledged", "resolved")
            if any(count(None, sev, status) for sev in sevs)
        )
        kinds = Counter(a["kind"] for a in self.alerts)
        monitored = sum(1 for o in self.outcomes if o.checkins)
        ack = self.acknowledged
        surprises = [
            f"  note: {o.patient.patient_id} ({o.patient.stage}) was {o.decision} "
            f"({', '.join(o.reasons) or 'no reasons'}), not "
            f"{expected_decision(o.patient.stage)}: is the clinic configured differently?"
            for o in self.outcomes
            if o.decision != expected_decision(o.patient.stage)
        ]
        waitlisted = Counter(o.waitlisted for o in self.outcomes if o.waitlisted)
        if waitlisted:
            surprises += [
                f"  note: {sum(waitlisted.values())} patients waitlisted by scheduling ("
                + ", ".join(f"{k} {v}" for k, v in waitlisted.items())
                + "):",
                "        the demo sites fill up after about ten runs; a fresh stack has room",
            ]
        return [
            "",
            f"Interval demo, run {self.run}: loaded in {self.seconds:.1f} s",
            f"  sites        {len(self.sites)}, each with two on-call tiers "
            f"({PAGE_RECEIVER}/page, then /page2 after 15 min)",
            *table,
            f"  patients     {n} (demo-{self.run}-01..{n:02d}): eligible {d['eligible']}, "
            f"needs_review {d['needs_review']} ({approved} approved), "
            f"ineligible {d['ineligible']}",
            f"  appointments {sum(appts.values())}: "
            + ", ".join(f"{k} {appts[k]}" for k in statuses if appts[k]),
            f"               this run: confirmed {t.confirmed}, completed {t.completed}, "
            f"no-shows {t.no_shows}, doses deferred for blood pressure {t.deferred}",
            f"  check-ins    {t.checkins} from {monitored} monitored patients",
            f"  alerts       {len(self.alerts)} (this run): "
            + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())),
            f"               {by_status}",
            (
                f"  acknowledged {ack['kind']} ({ack['severity']}) of {ack['patient_id']} "
                f"at {ack['site_id']}, by {ack['acknowledged_by']}"
                if ack
                else "  acknowledged nothing (no open alert)"
            ),
            (
                f"  clock        moved {_span(self.clock_to - self.clock_from)} forward, to "
                f"{self.clock_to:%Y-%m-%d %H:%M} UTC (GET /v1/dev/clock)"
                if self.clock_from and self.clock_to
                else "  clock        not moved"
            ),
            f"  dashboard    {self.dashboard_url}",
            "  pages        .venv/bin/python -m tools.page_receiver --port 9900  (to watch them)",
            *surprises,
        ]


def _span(d: timedelta) -> str:
    hours = round(d.total_seconds() / 3600)
    return f"{hours // 24} days {hours % 24} h"


def _default_url(env: str, port: int) -> str:
    return f"http://127.0.0.1:{os.environ.get(env) or port}"


def dashboard_url() -> str:
    return _default_url("DASHBOARD_PORT", 8000) + "/"


async def main(
    intake_url: str,
    scheduling_url: str,
    alerts_url: str,
    *,
    run: str | None = None,
    echo: Callable[[str], object] = print,
) -> Summary:
    """Load one batch of demo data through the public APIs; returns what it did."""
    started = time.monotonic()
    run = run or secrets.token_hex(3)
    urls = Urls(intake_url.rstrip("/"), scheduling_url.rstrip("/"), alerts_url.rstrip("/"))
    limits = httpx.Limits(max_connections=3 * CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=15, limits=limits) as client:
        await check_reachable(client, urls)
        api = Api(client, urls)
        clock = Clock(api)
        await clock.now()  # before anything is written: a stack without the clock is refused
        echo(f"demo run {run}: {len(SITES)} sites, loading patients...")

        await _gather(
            [api.scheduling("PUT", f"/v1/sites/{s.site_id}", json=s.body()) for s in SITES]
            + [
                api.alerts("PUT", f"/v1/sites/{s.site_id}/oncall", json=s.oncall_body())
                for s in SITES
            ]
        )
        now = await clock.now()
        settle = Settle(api)
        tally = Tally()
        gate = asyncio.Semaphore(CONCURRENCY)
        everyone = patients_for(run)
        # in care: intake now, then the days pass (the clock moves) through their sessions
        in_care: list[Outcome] = await _gather(
            [
                patient_flow(api, p, run, tally, now, gate, settle)
                for p in everyone
                if p.stage in IN_CARE
            ]
        )
        rounds = check_in_rounds(now, in_care)
        steps = [s for o in in_care for s in o.steps]
        for o in in_care:
            if o.patient.stage in MONITORED and o.steps:
                steps += checkin_steps(api, o, tally, rounds, settle)
        now = await live_through(clock, steps, gate, settle)
        for o in in_care:  # the next dose, when it is still ahead
            if o.next_dose is not None and _time(o.next_dose, "start") > now:
                await act(api, o.next_dose, "confirm")
                tally.confirmed += 1
        # the others have their intake today: their sessions lie ahead
        rest: list[Outcome] = await _gather(
            [
                patient_flow(api, p, run, tally, now, gate)
                for p in everyone
                if p.stage not in IN_CARE
            ]
        )
        by_id = {o.patient.patient_id: o for o in (*in_care, *rest)}
        outcomes = [by_id[p.patient_id] for p in everyone]
        alerts = await wait_for_alerts(api, run, outcomes)
        acked = await acknowledge_one(api, alerts)
        alerts = await run_alerts(api, run)

        scheduled = [o.patient.patient_id for o in outcomes if o.scheduled]
        lists: list[list[dict[str, Any]]] = await _gather(
            [api.scheduling("GET", f"/v1/patients/{pid}/appointments") for pid in scheduled]
        )
        appointments = Counter(a["status"] for appts in lists for a in appts)
        sites: list[dict[str, Any]] = await _gather(
            [api.scheduling("GET", f"/v1/sites/{s.site_id}") for s in SITES]
        )
    summary = Summary(
        run=run,
        seconds=time.monotonic() - started,
        sites=sites,
        outcomes=outcomes,
        tally=tally,
        appointments=appointments,
        alerts=alerts,
        acknowledged=acked,
        dashboard_url=dashboard_url(),
        clock_from=clock.started,
        clock_to=now,
    )
    for line in summary.lines():
        echo(line)
    return summary


async def _gather(aws: Sequence[Awaitable[T]]) -> list[T]:
    """All of them; the first failure cancels the rest and is raised."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.demo",
        description="Load a small living demo network through the public APIs.",
    )
    parser.add_argument("--intake", default=_default_url("INTAKE_PORT", 8001))
    parser.add_argument("--scheduling", default=_default_url("SCHEDULING_PORT", 8002))
    parser.add_argument("--alerts", default=_default_url("ALERTS_PORT", 8003))
    args = parser.parse_args(argv)
    try:
        asyncio.run(main(args.intake, args.scheduling, args.alerts))
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(cli())
