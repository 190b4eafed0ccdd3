"""Frozen values of the scheduling domain: sites, protocols, preferences, plans.

Source of every default: DOMAIN.md ("The treatment, as a patient lives it",
"People and places"). Enumeration values are wire values of the public contract
(CONTRACT.md, "Scheduling service"): never rename them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# Monday first, so that ``WEEKDAYS[d.weekday()]`` names a date's weekday.
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DayHours = tuple[Weekday, time, time]
# The period of the rolling dose cap ("two dosing sessions a week").
ROLLING_PERIOD = timedelta(days=7)


def weekly_hours(hours: Mapping[Weekday, tuple[time, time]]) -> tuple[DayHours, ...]:
    """``{"mon": (open, close), ...}`` as ``Site.hours``, Monday first."""
    return tuple((day, *hours[day]) for day in WEEKDAYS if day in hours)


@dataclass(frozen=True)
class Site:
    """A clinic: its time zone, opening hours per weekday (local wall times) and capacity.

    ``hours`` holds ``(weekday, open, close)``; a weekday that is missing is closed.
    Dosing needs one of ``rooms`` for the whole session, integration one of
    ``therapists`` (DOMAIN.md, "People and places"). Raises ``ValueError`` for an
    unknown zone, a repeated weekday, a closing time not after the opening time,
    or a negative capacity.
    """

    site_id: str
    timezone: str
    hours: tuple[DayHours, ...]
    rooms: int
    therapists: int

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        days = [day for day, _, _ in self.hours]
        if len(set(days)) != len(days) or not set(days) <= set(WEEKDAYS):
            raise ValueError(f"hours must name each weekday at most once, got {days}")
        for day, opens, closes in self.hours:
            if opens.tzinfo is not None or closes.tzinfo is not None:
                raise ValueError("opening hours are local wall times, without tzinfo")
            if opens >= closes:
                raise ValueError(f"{day}: closing {closes} must be after opening {opens}")
        if self.rooms < 0 or self.therapists < 0:
            raise ValueError("rooms and therapists cannot be negative")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def hours_on(self, weekday: Weekday) -> tuple[time, time] | None:
        """(open, close) on that weekday, or None when the site is closed."""
        for day, opens, closes in self.hours:
            if day == weekday:
                return opens, closes
        return None

    def room_ids(self) -> tuple[str, ...]:
        return tuple(f"room-{n}" for n in range(1, self.rooms + 1))

    def therapist_ids(self) -> tuple[str, ...]:
        return tuple(f"therapist-{n}" for n in range(1, self.therapists + 1))


@dataclass(frozen=True)
class Protocol:
    """An induction protocol; each default is DOMAIN.md's ("Induction series").

    - ``doses`` 6 (4-6 in all), ``min_gap`` 48 h between dose starts, at most
      ``max_doses_per_7_days`` 2 in any rolling 7 days ("two a week"), every dose
      starting within ``window`` 21 days of the first ("for 2-3 weeks"; the
      window is half-open: a dose exactly ``window`` after the first is outside).
    - ``dosing_minutes`` 180: 40 min infusion + 2 h monitoring, rounded to 3 h.
    - ``integration_minutes`` 90 on a local calendar day ``integration_min_days``
      1 to ``integration_max_days`` 3 after the dose, never the dosing day.
    - ``slot_step_minutes`` 30: sessions start on the half hour, local time.
    - ``min_lead`` 24 h: nothing starts sooner after planning (a scheduling choice).
    """

    name: str
    doses: int = 6
    min_gap: timedelta = timedelta(hours=48)
    max_doses_per_7_days: int = 2
    window: timedelta = timedelta(days=21)
    dosing_minutes: int = 180
    integration_minutes: int = 90
    integration_min_days: int = 1
    integration_max_days: int = 3
    slot_step_minutes: int = 30
    min_lead: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        if self.doses < 1 or self.max_doses_per_7_days < 1:
            raise ValueError("doses and max_doses_per_7_days must be at least 1")
        if self.dosing_minutes <= 0 or self.integration_minutes <= 0:
            raise ValueError("session lengths must be positive")
        if not 1 <= self.integration_min_days <= self.integration_max_days:
            raise ValueError("integration days must satisfy 1 <= min <= max (never the dose day)")
        if self.slot_step_minutes <= 0 or self.window <= timedelta(0):
            raise ValueError("slot_step_minutes and window must be positive")
        if self.min_gap < timedelta(0) or self.min_lead < timedelta(0):
            raise ValueError("min_gap and min_lead cannot be negative")


STANDARD = Protocol(name="standard")
# DOMAIN.md: intensive "retreat" programs, default 6 doses in 12 days, >= 24 h apart.
RETREAT = Protocol(
    name="retreat",
    doses=6,
    min_gap=timedelta(hours=24),
    max_doses_per_7_days=7,
    window=timedelta(days=12),
)


class Relaxed(StrEnum):
    """Names of the preferences a plan could not honour, in the order they are dropped."""

    time_of_day = "time_of_day"
    weekdays = "weekdays"


@dataclass(frozen=True)
class Preferences:
    """A patient's weekdays and times (DOMAIN.md: "in the site's time zone").

    They apply to every session: it must fall on one of ``weekdays``, start at or
    after ``earliest`` and end at or before ``latest``, in local wall time.
    None means no preference; an empty ``weekdays`` set can never be honoured.
    """

    weekdays: frozenset[Weekday] | None = None
    earliest: time | None = None
    latest: time | None = None

    def __post_init__(self) -> None:
        if self.weekdays is not None and not self.weekdays <= set(WEEKDAYS):
            raise ValueError(f"unknown weekdays in {sorted(self.weekdays)}")

    def given(self) -> tuple[str, ...]:
        """The preferences stated, in the order they would be relaxed."""
        named: list[str] = []
        if self.earliest is not None or self.latest is not None:
            named.append(Relaxed.time_of_day.value)
        if self.weekdays is not None:
            named.append(Relaxed.weekdays.value)
        return tuple(named)


class Kind(StrEnum):
    """Session kinds; a maintenance session holds a room like a dosing one."""

    dosing = "dosing"
    integration = "integration"
    maintenance = "maintenance"


@dataclass(frozen=True)
class Busy:
    """An existing booking of a room or therapist: [start, end), aware datetimes."""

    resource: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class PlannedSession:
    """A proposed session; a dose and its integration share ``sequence``. Times in UTC."""

    kind: Kind
    sequence: int
    start: datetime
    end: datetime
    resource: str


@dataclass(frozen=True)
class SeriesPlan:
    """A whole induction series, sessions ordered by start; ``relaxed`` says what gave way."""

    sessions: tuple[PlannedSession, ...]
    relaxed: tuple[str, ...]
    first_start: datetime


@dataclass(frozen=True)
class SinglePlan:
    """One dose (dosing or maintenance) and its integration session, and what gave way."""

    sessions: tuple[PlannedSession, PlannedSession]
    relaxed: tuple[str, ...]

    @property
    def dose(self) -> PlannedSession:
        return self.sessions[0]

    @property
    def integration(self) -> PlannedSession:
        return self.sessions[1]


class FitFailure(StrEnum):
    """Why nothing could be planned (the waitlist reason)."""

    no_capacity_within_horizon = "no_capacity_within_horizon"
    no_capacity_within_window = "no_capacity_within_window"
    site_closed_every_day = "site_closed_every_day"
    no_treatment_rooms = "no_treatment_rooms"
    no_therapists = "no_therapists"
    hours_too_short = "hours_too_short"


@dataclass(frozen=True)
class NoFit:
    """Nothing fits; ``reason`` is a ``FitFailure`` value."""

    reason: str
