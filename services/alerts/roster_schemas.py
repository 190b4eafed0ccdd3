"""HTTP bodies of on-call people: clinicians, schedules and their overrides, and who is on
call (docs/domain.md "On-call people"). What a single field can be is checked here (a 422
naming the field, nothing stored); what needs other rows (a participant who is no known
clinician) is checked by the commands (services/alerts/rosters.py)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from services.alerts.domain import rosters
from services.alerts.rows import ClinicianRow, OverrideRow, ScheduleRow
from shared.validation import (
    HHMM_PATTERN,
    ID_MAX_LENGTH,
    ID_PATTERN,
    IsoDate,
    IsoInstant,
    NoNul,
    Text,
    TimeZone,
    WholeNumber,
)

Id = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN),
]
HHMM = Annotated[
    str,
    StringConstraints(strict=True, pattern=HHMM_PATTERN),
    Field(description="a local time of day, HH:MM", examples=["09:00"]),
]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Channel = Literal["sms", "email", "webhook"]


def hhmm(value: str) -> time:
    return time(int(value[:2]), int(value[3:5]))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- clinicians -------------------------------------------------------------------------


class ContactMethodIn(Strict):
    id: Id = Field(description="the method's name, unique within the clinician: `cell`")
    type: Channel
    address: Annotated[
        str, StringConstraints(strict=True, min_length=1, max_length=2048), NoNul
    ] = Field(
        description="sms: an E.164 number (+15555550123); email: an address; webhook: an "
        "http(s) URL with a host"
    )

    @field_validator("address")
    @classmethod
    def _address(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("type")
        if kind is None:  # the type itself was refused: that is the error to show
            return value
        return rosters.check_address(kind, value)


class RuleIn(Strict):
    contact_method: Id = Field(description="a contact method's id")
    after_s: Annotated[int, Field(strict=True, ge=0, le=86400), WholeNumber] = Field(
        description="seconds after the page is due; 0 = at once"
    )


class QuietHoursIn(Strict):
    start: HHMM
    end: HHMM

    @field_validator("end")
    @classmethod
    def _differs(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("start") == value:
            raise ValueError("end must differ from start (leave quiet_hours null for none)")
        return value


_CLINICIAN_EXAMPLE: Any = {
    "name": "Dr. Rivera",
    "timezone": "America/New_York",
    "contact_methods": [
        {"id": "cell", "type": "sms", "address": "+15555550123"},
        {"id": "work", "type": "email", "address": "rivera@clinic.example"},
    ],
    "notification_rules": [
        {"contact_method": "cell", "after_s": 0},
        {"contact_method": "work", "after_s": 300},
    ],
    "quiet_hours": {"start": "22:00", "end": "07:00"},
}


class ClinicianIn(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [_CLINICIAN_EXAMPLE]})

    name: Text
    timezone: TimeZone
    contact_methods: list[ContactMethodIn] = Field(min_length=1, max_length=10)
    notification_rules: list[RuleIn] = Field(min_length=1, max_length=20)
    quiet_hours: QuietHoursIn | None = Field(
        default=None, description="local times in the clinician's zone: only critical pages then"
    )

    def problems(self) -> list[dict[str, str]]:
        """What the fields cannot say on their own: method ids unique, rules naming one."""
        out: list[dict[str, str]] = []
        seen: set[str] = set()
        for i, m in enumerate(self.contact_methods):
            if m.id in seen:
                out.append(
                    {"field": f"contact_methods[{i}].id", "message": f"{m.id!r} is used twice"}
                )
            seen.add(m.id)
        for i, r in enumerate(self.notification_rules):
            if r.contact_method not in seen:
                out.append(
                    {
                        "field": f"notification_rules[{i}].contact_method",
                        "message": f"no contact method {r.contact_method!r}",
                    }
                )
        return out

    def to_domain(self, clinician_id: str) -> rosters.Clinician:
        return rosters.Clinician(
            clinician_id=clinician_id,
            timezone=self.timezone,
            contact_methods=tuple(
                rosters.ContactMethod(m.id, m.type, m.address) for m in self.contact_methods
            ),
            notification_rules=tuple(
                rosters.NotificationRule(r.contact_method, r.after_s)
                for r in self.notification_rules
            ),
            quiet_hours=(
                rosters.QuietHours(hhmm(self.quiet_hours.start), hhmm(self.quiet_hours.end))
                if self.quiet_hours
                else None
            ),
        )


class ContactMethodOut(BaseModel):
    id: str
    type: Channel
    address: str


class RuleOut(BaseModel):
    contact_method: str
    after_s: int


class QuietHoursOut(BaseModel):
    start: str
    end: str


class ClinicianOut(BaseModel):
    clinician_id: str
    name: str
    timezone: str
    contact_methods: list[ContactMethodOut]
    notification_rules: list[RuleOut]
    quiet_hours: QuietHoursOut | None
    version: int
    updated_at: datetime

    @classmethod
    def from_row(cls, row: ClinicianRow) -> ClinicianOut:
        return cls(
            clinician_id=row.clinician_id,
            name=row.name,
            timezone=row.timezone,
            contact_methods=[ContactMethodOut(**m) for m in row.contact_methods],
            notification_rules=[RuleOut(**r) for r in row.notification_rules],
            quiet_hours=QuietHoursOut(**row.quiet_hours) if row.quiet_hours else None,
            version=row.version,
            updated_at=row.updated_at,
        )


# --- schedules --------------------------------------------------------------------------


class RotationIn(Strict):
    participants: list[Id] = Field(
        min_length=1, max_length=100, description="clinician ids, in turn order"
    )
    shift: Literal["daily", "weekly"]
    handoff: HHMM = Field(description="local time of the handoff in the schedule's zone")
    handoff_weekday: Weekday = Field(default="mon", description="weekly shifts: the handoff day")
    start: IsoDate = Field(description="the first shift starts at the first handoff on or after it")

    def to_domain(self) -> rosters.Rotation:
        return rosters.Rotation(
            participants=tuple(self.participants),
            shift=self.shift,
            handoff=hhmm(self.handoff),
            handoff_weekday=WEEKDAYS.index(self.handoff_weekday),
            start=self.start,
        )


_SCHEDULE_EXAMPLE: Any = {
    "name": "Site A psychiatry",
    "timezone": "America/New_York",
    "rotations": [
        {
            "participants": ["c-rivera", "c-chen"],
            "shift": "weekly",
            "handoff": "09:00",
            "handoff_weekday": "mon",
            "start": "2026-12-07",
        }
    ],
}


class ScheduleIn(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [_SCHEDULE_EXAMPLE]})

    name: Text
    timezone: TimeZone
    rotations: list[RotationIn] = Field(min_length=1, max_length=10)


class RotationOut(BaseModel):
    participants: list[str]
    shift: Literal["daily", "weekly"]
    handoff: str
    handoff_weekday: Weekday
    start: date


class OverrideIn(Strict):
    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "from": "2026-12-24T17:00:00-05:00",
                    "to": "2026-12-26T09:00:00-05:00",
                    "clinician_id": "c-chen",
                    "replaces": "c-rivera",
                }
            ]
        },
    )

    from_: IsoInstant = Field(alias="from")
    to: IsoInstant = Field(description="after `from`")
    clinician_id: Id
    replaces: Id | None = Field(
        default=None, description="null: the clinician is added; else stands in for this one"
    )

    @field_validator("to")
    @classmethod
    def _after(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("from_")
        if start is not None and value <= start:
            raise ValueError("must be after `from`")
        return value


class OverrideOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    override_id: str
    from_: datetime = Field(alias="from")
    to: datetime
    clinician_id: str
    replaces: str | None

    @classmethod
    def from_row(cls, row: OverrideRow) -> OverrideOut:
        return cls(
            override_id=str(row.override_id),
            from_=row.starts_at,
            to=row.ends_at,
            clinician_id=row.clinician_id,
            replaces=row.replaces,
        )


class ScheduleOut(BaseModel):
    schedule_id: str
    name: str
    timezone: str
    rotations: list[RotationOut]
    overrides: list[OverrideOut] = Field(description="those not yet over, soonest first")
    version: int
    updated_at: datetime

    @classmethod
    def from_row(cls, row: ScheduleRow, overrides: list[OverrideRow]) -> ScheduleOut:
        return cls(
            schedule_id=row.schedule_id,
            name=row.name,
            timezone=row.timezone,
            rotations=[RotationOut(**r) for r in row.rotations],
            overrides=[OverrideOut.from_row(o) for o in overrides],
            version=row.version,
            updated_at=row.updated_at,
        )


# --- who is on call ---------------------------------------------------------------------


class OncallAt(BaseModel):
    clinician_ids: list[str]


class TierNow(BaseModel):
    clinician_ids: list[str] = Field(description="the clinicians the tier's targets name now")
    reachable: list[str] = Field(
        description="those of them a critical page reaches now (a notification rule set)"
    )
    recipients: list[dict[str, str]] = Field(description="the tier's static webhook recipients")


class OncallNow(BaseModel):
    site_id: str
    at: datetime
    tiers: list[TierNow]


class HandoffOut(BaseModel):
    at: datetime
    before: list[str] = Field(description="the clinicians on call just before `at`")
    after: list[str] = Field(description="the clinicians on call from `at`")


class GapOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime
    tier: int = Field(description="1 = first tier")
