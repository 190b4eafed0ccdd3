"""HTTP bodies of the scheduling service (the public contract, extended)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from services.scheduling.domain.model import PRESETS, protocol_from
from shared.validation import IsoInstant, NoNul

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
# "localtime" is this machine's zone file, not an IANA name
_ZONES = available_timezones() - {"localtime"}

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Text = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=200),
    NoNul,
]


def _timezone(value: str) -> str:
    if value not in _ZONES:
        raise ValueError(f"unknown time zone {value!r} (an IANA name such as America/New_York)")
    return value


def _hours(value: list[str]) -> list[str]:
    if len(value) != 2:
        raise ValueError("must be [opening, closing] as two HH:MM times")
    for v in value:
        if not _HHMM.match(v):
            raise ValueError(f"{v!r} is not a time of day as HH:MM")
    if value[0] >= value[1]:
        raise ValueError("closing must be after opening")
    return value


TimeZone = Annotated[str, StringConstraints(strict=True), AfterValidator(_timezone)]
Hours = Annotated[list[Annotated[str, StringConstraints(strict=True)]], AfterValidator(_hours)]


PresetName = Literal["standard", "retreat"]
_Count = Annotated[int, Field(strict=True, ge=1, le=100)]
_Minutes = Annotated[int, Field(strict=True, ge=5, le=1440)]
_Days = Annotated[int, Field(strict=True, ge=1, le=30)]


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
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Text
    timezone: TimeZone
    hours: dict[Weekday, Hours] = Field(description="opening hours per weekday, site local time")
    treatment_rooms: Annotated[int, Field(strict=True, ge=1, le=500)]
    therapists: Annotated[int, Field(strict=True, ge=1, le=500)]
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


class SiteOut(SiteIn):
    site_id: str
    updated_at: datetime
    protocol_numbers: dict[str, int | float] = Field(
        description="every protocol number the site schedules with (the preset's where "
        "the body gave none)"
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


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
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


class VitalsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    systolic: Annotated[int, Field(strict=True, ge=50, le=300)]
    diastolic: Annotated[int, Field(strict=True, ge=20, le=200)]
    heart_rate: Annotated[int, Field(strict=True, ge=20, le=250)] | None = None
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
