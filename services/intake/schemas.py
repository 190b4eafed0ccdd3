"""HTTP request and response bodies of the intake service (the public contract).

Validation here names every bad field in one 422: types are strict where a
client could be silently misread (``false`` is not ``0``, ``"3"`` is not ``3``).
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)

from services.intake.domain.model import KNOWN_CONDITIONS, TrialOutcome
from services.intake.rows import CheckinRow, IntakeRow, MeasureRow
from shared.clock import utcnow
from shared.validation import (
    ID_MAX_LENGTH,
    ID_PATTERN,
    TIME_ZONE_SCHEMA,
    IsoDate,
    IsoInstant,
    NoNul,
    Text,
    WholeNumber,
)

# A client clock a little ahead of ours is not "the future".
CLOCK_SKEW = timedelta(minutes=5)
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

Id = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN),
]
Note = Annotated[str, StringConstraints(strict=True, max_length=5000), NoNul]
Phq9Item = Annotated[int, Field(strict=True, ge=0, le=3), WholeNumber]


def _not_future(value: datetime) -> datetime:
    if value > utcnow() + CLOCK_SKEW:
        raise ValueError("must not be in the future")
    return value


def _date_not_future(value: date) -> date:
    if value > (utcnow() + CLOCK_SKEW).date():
        raise ValueError("must not be in the future")
    return value


def _known_condition(code: str) -> str:
    if code not in KNOWN_CONDITIONS:
        raise ValueError(
            f"unknown condition code {code!r}; known: {', '.join(sorted(KNOWN_CONDITIONS))}"
        )
    return code


def _hhmm(value: str) -> str:
    if not _HHMM.match(value):
        raise ValueError("must be a time of day as HH:MM (00:00-23:59)")
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (an IANA name such as America/New_York)"
        ) from None
    if value not in _ZONES:
        raise ValueError(f"unknown time zone {value!r} (an IANA name such as America/New_York)")
    return value


# "localtime" is this machine's zone file, not an IANA name
_ZONES = available_timezones() - {"localtime"}

PastInstant = Annotated[IsoInstant, AfterValidator(_not_future)]
PastDate = Annotated[IsoDate, AfterValidator(_date_not_future)]
Condition = Annotated[
    str,
    StringConstraints(strict=True),
    AfterValidator(_known_condition),
    Field(json_schema_extra={"enum": sorted(KNOWN_CONDITIONS)}),
]
TimeOfDay = Annotated[
    str,
    StringConstraints(strict=True),
    AfterValidator(_hhmm),
    Field(json_schema_extra={"pattern": _HHMM.pattern}),
]
TimeZone = Annotated[
    str,
    StringConstraints(strict=True),
    AfterValidator(_timezone),
    Field(json_schema_extra=TIME_ZONE_SCHEMA),
]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


EXAMPLE_PREFERENCES: Any = {
    "weekdays": ["mon", "tue", "wed", "thu", "fri"],
    "earliest": "08:00",
    "latest": "18:00",
    "timezone": "America/New_York",
}
EXAMPLE_INTAKE: Any = {
    "intake_id": "8c1d6f2e-0000-4000-8000-000000000001",
    "site_id": "site-a",
    "submitted_at": "2026-11-23T14:05:00Z",
    "patient": {
        "patient_id": "p-0042",
        "name": "Ada Example",
        "date_of_birth": "1981-04-02",
        "phone": "+1-555-0100",
        "email": "ada@example.org",
    },
    "phq9": [3, 3, 2, 3, 2, 3, 2, 2, 0],
    "cssrs": {
        "wish_to_be_dead": False,
        "suicidal_thoughts": False,
        "method": False,
        "intent": False,
        "plan": False,
        "behavior_past_3_months": False,
    },
    "antidepressant_trials": [
        {"medication": "sertraline", "adequate": True, "weeks": 8, "outcome": "no_response"},
        {"medication": "venlafaxine", "adequate": True, "weeks": 10, "outcome": "partial_response"},
    ],
    "conditions": ["controlled_hypertension"],
    "vitals": {"systolic": 128, "diastolic": 82, "heart_rate": 74},
    "preferences": EXAMPLE_PREFERENCES,
}
EXAMPLE_CHECKIN: Any = {
    "checkin_id": "5f0c3a9e-0000-4000-8000-000000000002",
    "patient_id": "p-0042",
    "submitted_at": "2026-11-30T09:00:00Z",
    "phq9": [1, 1, 1, 0, 1, 1, 0, 0, 0],
    "suicidal_ideation": False,
    "note": "slept better",
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def digest(self) -> bytes:
        """The body's hash: a replay with the same id must carry the same body."""
        return hashlib.sha256(self.model_dump_json().encode()).digest()


class Patient(Strict):
    patient_id: Id
    name: Text
    date_of_birth: PastDate
    phone: Annotated[str, StringConstraints(strict=True, max_length=40), NoNul] | None = None
    email: (
        Annotated[
            str,
            StringConstraints(strict=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
            NoNul,
        ]
        | None
    ) = None


class CssrsIn(Strict):
    wish_to_be_dead: StrictBool
    suicidal_thoughts: StrictBool
    method: StrictBool
    intent: StrictBool
    plan: StrictBool
    behavior_past_3_months: StrictBool
    behavior_ever: StrictBool = False


class TrialIn(Strict):
    medication: Text
    adequate: StrictBool
    weeks: Annotated[float, Field(strict=True, ge=0, le=520)]
    outcome: TrialOutcome


class VitalsIn(Strict):
    systolic: Annotated[int, Field(strict=True, ge=50, le=300), WholeNumber]
    diastolic: Annotated[int, Field(strict=True, ge=20, le=200), WholeNumber]
    heart_rate: Annotated[int, Field(strict=True, ge=20, le=250), WholeNumber]


class PreferencesIn(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_PREFERENCES]})
    weekdays: Annotated[list[Weekday], Field(min_length=1, max_length=7)] | None = None
    earliest: TimeOfDay | None = None
    latest: TimeOfDay | None = None
    timezone: TimeZone | None = None

    @model_validator(mode="after")
    def _window(self) -> PreferencesIn:
        if self.earliest and self.latest and self.earliest >= self.latest:
            raise ValueError("preferences.earliest must be before preferences.latest")
        return self


class IntakeIn(Strict):
    """``earliest`` before ``latest``, ``date_of_birth`` not after ``submitted_at`` and
    neither in the future: rules JSON Schema cannot state, each a 422 naming the field."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_INTAKE]})
    intake_id: Id
    site_id: Id
    submitted_at: PastInstant
    patient: Patient
    phq9: Annotated[list[Phq9Item], Field(min_length=9, max_length=9)]
    cssrs: CssrsIn
    antidepressant_trials: Annotated[list[TrialIn], Field(max_length=50)]
    conditions: Annotated[list[Condition], Field(max_length=50)] = []
    vitals: VitalsIn
    preferences: PreferencesIn | None = None

    @model_validator(mode="after")
    def _born_before_submission(self) -> IntakeIn:
        if self.patient.date_of_birth > self.submitted_at.date():
            raise ValueError("patient.date_of_birth must be before submitted_at")
        return self


class Review(Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"by": "Dr. Rivera", "note": "cleared by phone"}]}
    )
    by: Text
    note: Note | None = None


class DischargeIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"by": "Dr. Rivera", "note": "series completed"}]}
    )
    by: Text | None = None
    note: Note | None = None


class CheckinIn(Strict):
    """``submitted_at`` must not be in the future (a 422): JSON Schema cannot say it."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_CHECKIN]})
    checkin_id: Id
    patient_id: Id
    submitted_at: PastInstant
    phq9: Annotated[list[Phq9Item], Field(min_length=9, max_length=9)] | None
    suicidal_ideation: StrictBool
    note: Note | None = None


# --- responses ---------------------------------------------------------------


class ReviewOut(BaseModel):
    outcome: Literal["approved", "declined"]
    by: str
    at: datetime


class IntakeOut(BaseModel):
    intake_id: str
    patient_id: str
    site_id: str
    decision: Literal["eligible", "needs_review", "ineligible"]
    reasons: list[str]
    phq9_total: int
    phq9_severity: Literal["none_minimal", "mild", "moderate", "moderately_severe", "severe"]
    suicide_risk: Literal["none", "low", "moderate", "high"]
    phq9_item9_positive: bool
    submitted_at: datetime
    review: ReviewOut | None = None

    @classmethod
    def from_row(cls, row: IntakeRow) -> IntakeOut:
        review = None
        if row.review_outcome:
            review = ReviewOut.model_validate(
                {"outcome": row.review_outcome, "by": row.reviewed_by, "at": row.reviewed_at}
            )
        return cls.model_validate(
            {
                "intake_id": row.intake_id,
                "patient_id": row.patient_id,
                "site_id": row.site_id,
                "decision": row.decision,
                "reasons": list(row.reasons),
                "phq9_total": row.phq9_total,
                "phq9_severity": row.phq9_severity,
                "suicide_risk": row.suicide_risk,
                "phq9_item9_positive": row.phq9_item9_positive,
                "submitted_at": row.submitted_at,
                "review": review,
            }
        )


class AssessmentOut(BaseModel):
    response: bool
    remission: bool
    worsening: bool
    worsening_reasons: list[str]


class CheckinOut(BaseModel):
    checkin_id: str
    patient_id: str
    submitted_at: datetime
    phq9_total: int | None
    suicidal_ideation: bool
    assessment: AssessmentOut

    @classmethod
    def from_row(cls, row: CheckinRow) -> CheckinOut:
        return cls(
            checkin_id=row.checkin_id,
            patient_id=row.patient_id,
            submitted_at=row.submitted_at,
            phq9_total=row.phq9_total,
            suicidal_ideation=row.suicidal_ideation,
            assessment=AssessmentOut(
                response=row.response,
                remission=row.remission,
                worsening=row.worsening,
                worsening_reasons=list(row.worsening_reasons),
            ),
        )


class DischargeOut(BaseModel):
    patient_id: str
    status: Literal["discharged"]
    discharged_at: datetime


class Measure(BaseModel):
    """One PHQ-9 score of a patient: the intake (baseline) or a check-in. No notes."""

    source: Literal["intake", "checkin"]
    id: str
    at: datetime
    phq9_total: int | None
    phq9_item9_positive: bool
    suicidal_ideation: bool | None
    response: bool | None
    remission: bool | None
    worsening: bool | None

    @classmethod
    def from_row(cls, row: MeasureRow) -> Measure:
        return cls.model_validate(row, from_attributes=True)


class PatientMeasures(BaseModel):
    patient_id: str
    site_id: str
    baseline_total: int | None = Field(description="the first intake's PHQ-9 total")
    discharged_at: datetime | None
    measures: list[Measure] = Field(description="intakes and check-ins, oldest first")
