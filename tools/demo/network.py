"""The demo network: its sites, its patients and what each of them goes through."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

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
    return {
        "intake_id": str(uuid.uuid4()),
        "site_id": p.site.site_id,
        "submitted_at": (now - p.intake_age).isoformat(),
        "patient": _identity(p, run),
        **_screening(p),
        "preferences": _preferences(p),
    }


def _identity(p: Patient, run: str) -> dict[str, Any]:
    """The patient's name, birth date and contacts: made up from their number."""
    i = p.number
    first = FIRST_NAMES[i % len(FIRST_NAMES)]
    last = LAST_NAMES[(i * 7) % len(LAST_NAMES)]
    return {
        "patient_id": p.patient_id,
        "name": f"{first} {last}",
        "date_of_birth": date(1962 + (i * 3) % 38, 1 + i % 12, 1 + (i * 11) % 28).isoformat(),
        "phone": f"{p.site.phone_prefix}{i:02d}",
        "email": f"{first}.{last}.{run}{i:02d}@example.org".lower(),
    }


def _screening(p: Patient) -> dict[str, Any]:
    """The intake's clinical answers: an eligible patient's, but for what the patient's
    stage needs (a positive item 9 or C-SSRS, high blood pressure, a condition, no TRD)."""
    i = p.number
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
    return {
        "phq9": phq9(p.baseline, item9),
        "cssrs": cssrs,
        "antidepressant_trials": trials,
        "conditions": conditions,
        "vitals": vitals,
    }


def _preferences(p: Patient) -> dict[str, Any]:
    """Within the site's hours; Saturdays only for every fifth patient."""
    weekdays = [d for d in p.site.hours if d != "sat"] if p.number % 5 else list(p.site.hours)
    opening = min(h[0] for h in p.site.hours.values())
    closing = max(h[1] for h in p.site.hours.values())
    return {"weekdays": weekdays, "earliest": opening, "latest": closing}


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
