"""HTTP bodies of the scheduling service (the public contract, extended), and how row
and domain values become them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from services.scheduling.domain.model import PRESETS, protocol_from, protocol_numbers
from services.scheduling.rows import (
    AppointmentRow,
    HeldRow,
    NewSite,
    SiteRow,
    WaitlistRow,
)
from shared.validation import (
    HHMM_PATTERN,
    IsoInstant,
    NoNul,
    Text,
    TimeZone,
    WholeNumber,
)

_HHMM = re.compile(HHMM_PATTERN)

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _hours(value: list[str]) -> list[str]:
    if len(value) != 2:
        raise ValueError("must be [opening, closing] as two HH:MM times")
    for v in value:
        if not _HHMM.match(v):
            raise ValueError(f"{v!r} is not a time of day as HH:MM")
    if value[0] >= value[1]:
        raise ValueError("closing must be after opening")
    return value


Hours = Annotated[
    list[Annotated[str, StringConstraints(strict=True)]],
    AfterValidator(_hours),
    Field(
        description="[opening, closing] as HH:MM, closing after opening",
        json_schema_extra={
            "minItems": 2,
            "maxItems": 2,
            "items": {"type": "string", "pattern": _HHMM.pattern},
        },
    ),
]


PresetName = Literal["standard", "retreat"]
_Count = Annotated[int, Field(strict=True, ge=1, le=100), WholeNumber]
_Minutes = Annotated[int, Field(strict=True, ge=5, le=1440), WholeNumber]
_Days = Annotated[int, Field(strict=True, ge=1, le=30), WholeNumber]


class ProtocolIn(BaseModel):
    """A site's own protocol numbers (docs/domain.md, "Protocols"): any subset,
    the rest from ``preset``. Checked together: the doses must fit inside the window
    with the gap and the weekly cap."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    preset: PresetName = Field(default="standard", description="the numbers not given")
    doses: _Count | None = None
    min_gap_hours: Annotated[float, Field(ge=0, le=24 * 30)] | None = None
    max_doses_per_7_days: _Count | None = None
    window_days: Annotated[float, Field(gt=0, le=365)] | None = None
    dosing_minutes: _Minutes | None = Field(default=None, description="chair time")
    integration_minutes: _Minutes | None = None
    integration_min_days: _Days | None = None
    integration_max_days: _Days | None = None
    maintenance_interval_days: Annotated[float, Field(gt=0, le=365)] | None = None

    def numbers(self) -> dict[str, int | float]:
        return self.model_dump(exclude={"preset"}, exclude_none=True)

    @model_validator(mode="after")
    def _consistent(self) -> ProtocolIn:
        protocol_from(PRESETS[self.preset], self.numbers())  # ValueError names the problem
        return self


class SiteIn(BaseModel):
    """Each day's closing after its opening, and protocol numbers that fit together: rules
    JSON Schema cannot state, each a 422 naming the field."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "name": "Downtown",
                    "timezone": "America/New_York",
                    "hours": {d: ["08:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
                    "treatment_rooms": 2,
                    "therapists": 2,
                }
            ]
        },
    )
    name: Text
    timezone: TimeZone
    hours: dict[Weekday, Hours] = Field(
        description="opening hours per weekday, site local time; at least one weekday",
        json_schema_extra={"minProperties": 1},
    )
    treatment_rooms: Annotated[int, Field(strict=True, ge=1, le=500), WholeNumber]
    therapists: Annotated[int, Field(strict=True, ge=1, le=500), WholeNumber]
    protocol: PresetName | ProtocolIn = Field(
        default="standard",
        description="a preset name, or an object of protocol numbers over a preset",
    )

    @field_validator("hours")
    @classmethod
    def _some_day_open(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        if not value:
            raise ValueError("the site must open on at least one weekday")
        return value

    def new_site(self) -> NewSite:
        """The site to store: its protocol by name (a preset, or ``custom``), as given,
        and every number it resolves to."""
        name: str
        spec: Any
        if isinstance(self.protocol, str):
            name, spec, protocol = self.protocol, self.protocol, PRESETS[self.protocol]
        else:
            name, spec = "custom", self.protocol.model_dump(exclude_none=True)
            base = PRESETS[self.protocol.preset]
            protocol = protocol_from(base, self.protocol.numbers(), name=name)
        return NewSite(
            name=self.name,
            timezone=self.timezone,
            hours={day: (v[0], v[1]) for day, v in self.hours.items()},
            treatment_rooms=self.treatment_rooms,
            therapists=self.therapists,
            protocol=name,
            protocol_spec=spec,
            protocol_numbers=protocol_numbers(protocol),
        )


class SiteOut(SiteIn):
    site_id: str
    updated_at: datetime
    protocol_numbers: dict[str, int | float] = Field(
        description="every protocol number the site schedules with (the preset's where "
        "the body gave none)"
    )

    @classmethod
    def from_row(cls, row: SiteRow) -> SiteOut:
        """The body's protocol as given (its name, for a site stored before 0005) and
        every number the site schedules with."""
        spec = row.protocol_spec
        return cls.model_validate(
            {
                "site_id": row.site_id,
                "name": row.name,
                "timezone": row.timezone,
                "hours": {day: list(v) for day, v in row.hours.items()},
                "treatment_rooms": row.treatment_rooms,
                "therapists": row.therapists,
                "protocol": row.protocol if spec is None else spec,
                "updated_at": row.updated_at,
                "protocol_numbers": row.protocol_numbers or protocol_numbers(row.as_protocol()),
            }
        )


class AppointmentOut(BaseModel):
    appointment_id: str
    patient_id: str
    site_id: str
    series_id: str
    kind: Literal["dosing", "integration", "maintenance"]
    sequence: int
    status: Literal["proposed", "confirmed", "cancelled", "completed", "no_show"]
    start: datetime
    end: datetime
    resource: str
    reason: str
    cause: str | None = None
    replaces: str | None = None
    relaxed: list[str] = Field(
        default=[], description="patient preferences the series could not honour"
    )

    @classmethod
    def from_row(cls, row: AppointmentRow) -> AppointmentOut:
        return cls.model_validate(schedule_entry(row))


def schedule_entry(row: AppointmentRow) -> dict[str, Any]:
    """An appointment in ``AppointmentOut``'s shape (its fields, in its order) without
    validating it again: a site's busy week is thousands of rows, and validating each
    one only re-checks what the table's constraints already hold."""
    return {
        "appointment_id": row.appointment_id,
        "patient_id": row.patient_id,
        "site_id": row.site_id,
        "series_id": row.series_id,
        "kind": row.kind,
        "sequence": row.sequence,
        "status": row.status,
        "start": row.start,
        "end": row.end,
        "resource": row.resource,
        "reason": row.reason,
        "cause": row.cause,
        "replaces": row.replaces,
        "relaxed": list(row.relaxed),
    }


class ActionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"by": "front-desk", "rebook": True}]},
    )
    by: Text | None = None
    note: Annotated[str, StringConstraints(strict=True, max_length=5000), NoNul] | None = None
    rebook: bool = Field(
        default=True,
        strict=True,
        description="cancel / no-show of a dose: propose a replacement pair (false ends "
        "that dose); of an integration: rebook it inside its window",
    )
    reason: (
        Annotated[
            str,
            StringConstraints(strict=True, pattern=r"^[a-z][a-z0-9_]{0,39}$"),
        ]
        | None
    ) = Field(
        default=None,
        description="why, as a short code (e.g. patient_request): recorded as the "
        "appointment's cause and in its event, so never free text",
    )


class HoldOut(BaseModel):
    held: bool
    since: datetime | None = Field(description="when the unresolved suicide_risk alert opened")


class HeldPatient(BaseModel):
    patient_id: str
    site_id: str
    since: datetime

    @classmethod
    def from_row(cls, row: HeldRow) -> HeldPatient:
        return cls(patient_id=row.patient_id, site_id=row.site_id, since=row.since)


class VitalsIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"systolic": 128, "diastolic": 82, "heart_rate": 74}]},
    )
    systolic: Annotated[int, Field(strict=True, ge=50, le=300), WholeNumber]
    diastolic: Annotated[int, Field(strict=True, ge=20, le=200), WholeNumber]
    heart_rate: Annotated[int, Field(strict=True, ge=20, le=250), WholeNumber] | None = None
    taken_at: IsoInstant | None = None


class VitalsOut(BaseModel):
    appointment: AppointmentOut
    deferred: bool
    reasons: list[str]
    rebooked: list[AppointmentOut] = []


class WaitlistEntry(BaseModel):
    patient_id: str
    site_id: str
    purpose: str
    reason: str
    since: datetime
    attempts: int

    @classmethod
    def from_row(cls, row: WaitlistRow) -> WaitlistEntry:
        return cls(
            patient_id=row.patient_id,
            site_id=row.site_id,
            purpose=row.purpose,
            reason=row.reason,
            since=row.since,
            attempts=row.attempts,
        )


class SiteBrief(BaseModel):
    site_id: str
    name: str
    timezone: str
    treatment_rooms: int
    therapists: int
    protocol: str

    @classmethod
    def from_row(cls, row: SiteRow) -> SiteBrief:
        return cls(
            site_id=row.site_id,
            name=row.name,
            timezone=row.timezone,
            treatment_rooms=row.treatment_rooms,
            therapists=row.therapists,
            protocol=row.protocol,
        )


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
