"""Frozen values of the scheduling domain: sites, protocols, preferences, plans.

Source of every default: docs/domain.md ("The treatment, as a patient lives it",
"People and places", "Who is scheduled, and when"). Enumeration values are wire
values of the public contract (docs/asyncapi.yaml and the scheduling API): never
rename them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# Monday first, so that ``WEEKDAYS[d.weekday()]`` names a date's weekday.
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DayHours = tuple[Weekday, time, time]
# The period of the rolling dose cap (docs/domain.md, "Protocols": no rolling 7 days
# holds more than the maximum): doses exactly 7 days apart are in different windows.
ROLLING_PERIOD = timedelta(days=7)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def weekly_hours(hours: Mapping[Weekday, tuple[time, time]]) -> tuple[DayHours, ...]:
    """``{"mon": (open, close), ...}`` as ``Site.hours``, Monday first."""
    return tuple((day, *hours[day]) for day in WEEKDAYS if day in hours)


@dataclass(frozen=True)
class Site:
    """A clinic: its time zone, opening hours per weekday (local wall times) and capacity.

    ``hours`` holds ``(weekday, open, close)``; a weekday that is missing is closed.
    Dosing needs one of ``rooms`` for the whole session, integration one of
    ``therapists`` (docs/domain.md, "People and places"). Raises ``ValueError`` for an
    unknown zone, a repeated weekday, a closing time not after the opening time,
    or a negative capacity.
    """

    site_id: str
    timezone: str
    hours: tuple[DayHours, ...]
    rooms: int
    therapists: int

    def __post_init__(self) -> None:
        _zone(self.timezone)
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
    """A site's protocol; each default is docs/domain.md's ("The treatment, as a
    patient lives it"; every number is a per-site setting, "Protocols").

    - ``doses`` 6 (4-6 in all), ``min_gap`` 48 h between dose starts, at most
      ``max_doses_per_7_days`` 2 in any rolling 7 days, every dose
      starting within ``window`` 21 days of the first (the
      window is half-open: a dose exactly ``window`` after the first is outside).
      The gap and the cap hold across every dose the patient has ("Spacing counts
      every dose the patient has").
    - ``dosing_minutes`` 180: 40 min infusion + 2 h monitoring, rounded to 3 h.
    - ``integration_minutes`` 90 on a local calendar day ``integration_min_days``
      1 to ``integration_max_days`` 3 after the dose, never the dosing day.
    - ``maintenance_interval`` 28 days: the first maintenance that long after the
      last induction dose, each next one that long after the previous ("Maintenance").
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
    maintenance_interval: timedelta = timedelta(days=28)

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
        if self.maintenance_interval <= timedelta(0):
            raise ValueError("maintenance_interval must be positive")


STANDARD = Protocol(name="standard")
# docs/domain.md ("Protocols"): the intensive "retreat" preset, 6 doses within 12 days,
# >= 24 h apart, at most 4 in any 7 days (standard: at most 2).
RETREAT = Protocol(
    name="retreat",
    doses=6,
    min_gap=timedelta(hours=24),
    max_doses_per_7_days=4,
    window=timedelta(days=12),
)
# docs/domain.md ("Protocols"): `standard` and `retreat` are presets, and a site may
# give its own numbers over one; ``protocol_from`` builds any other one from a preset.
PRESETS: Mapping[str, Protocol] = MappingProxyType({"standard": STANDARD, "retreat": RETREAT})

_HOUR, _DAY = timedelta(hours=1), timedelta(days=1)
# The protocol numbers a site may set (docs/domain.md, "Protocols"), each
# with its Protocol field and unit: None for a count or minutes (an integer), else
# the unit of a duration given as a number (hours or days, fractions allowed).
PROTOCOL_KEYS: Mapping[str, tuple[str, timedelta | None]] = MappingProxyType(
    {
        "doses": ("doses", None),
        "min_gap_hours": ("min_gap", _HOUR),
        "max_doses_per_7_days": ("max_doses_per_7_days", None),
        "window_days": ("window", _DAY),
        "dosing_minutes": ("dosing_minutes", None),
        "integration_minutes": ("integration_minutes", None),
        "integration_min_days": ("integration_min_days", None),
        "integration_max_days": ("integration_max_days", None),
        "maintenance_interval_days": ("maintenance_interval", _DAY),
    }
)
_LONGEST_SESSION_MINUTES = 24 * 60  # a session lies within one local day


def _number(key: str, value: object, unit: timedelta | None) -> int | timedelta:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"protocol.{key} must be a number, got {value!r}")
    if unit is None:
        if isinstance(value, float):
            raise ValueError(f"protocol.{key} must be a whole number, got {value!r}")
        return value
    if not math.isfinite(value) or abs(value) > 10_000:
        raise ValueError(f"protocol.{key} must be a finite number of reasonable size")
    return value * unit


def shortest_span(protocol: Protocol) -> timedelta:
    """The least time from the first dose's start to the last's that the gap and the
    rolling cap allow: each dose as soon as both let it."""
    starts: list[timedelta] = []
    cap = protocol.max_doses_per_7_days
    for n in range(protocol.doses):
        soonest = starts[-1] + protocol.min_gap if starts else timedelta(0)
        if n >= cap:
            soonest = max(soonest, starts[n - cap] + ROLLING_PERIOD)
        starts.append(soonest)
    return starts[-1]


def protocol_from(
    base: Protocol, overrides: Mapping[str, object], *, name: str | None = None
) -> Protocol:
    """``base`` with the numbers in ``overrides`` (a site body's ``protocol`` object).

    Keys (docs/domain.md, "Protocols": every protocol number is a per-site
    setting): ``doses``, ``max_doses_per_7_days``, ``dosing_minutes``,
    ``integration_minutes``, ``integration_min_days``, ``integration_max_days``
    (whole numbers); ``min_gap_hours``, ``window_days``, ``maintenance_interval_days``
    (numbers, fractions allowed). ``slot_step_minutes`` and ``min_lead`` are
    scheduling choices, not protocol numbers: they stay ``base``'s. The name is
    ``name``, else ``base.name``.

    Raises ``ValueError`` naming the key for an unknown key, a value of the wrong
    type, a value ``Protocol`` refuses, a session longer than a day, or numbers
    that cannot all hold at once (``doses`` that the gap and the weekly cap cannot
    fit inside the window).
    """
    unknown = sorted(set(overrides) - set(PROTOCOL_KEYS))
    if unknown:
        raise ValueError(f"unknown protocol keys {unknown}; known: {sorted(PROTOCOL_KEYS)}")
    changes: dict[str, object] = {"name": base.name if name is None else name}
    for key, value in overrides.items():
        field, unit = PROTOCOL_KEYS[key]
        changes[field] = _number(key, value, unit)
    protocol = replace(base, **changes)  # type: ignore[arg-type]  # Protocol validates
    for key in ("dosing_minutes", "integration_minutes"):
        if getattr(protocol, key) > _LONGEST_SESSION_MINUTES:
            raise ValueError(f"protocol.{key} must be at most {_LONGEST_SESSION_MINUTES}")
    span = shortest_span(protocol)
    if span >= protocol.window:
        raise ValueError(
            f"protocol: {protocol.doses} doses at least {protocol.min_gap} apart and at most "
            f"{protocol.max_doses_per_7_days} in 7 days span at least {span}, "
            f"not within the {protocol.window} window"
        )
    return protocol


def _plain(value: timedelta, unit: timedelta) -> int | float:
    number = value / unit
    return int(number) if number.is_integer() else number


def stored_protocol(name: str, numbers: Mapping[str, object] | None) -> Protocol:
    """A protocol as a site or series stores it: by name (a preset; ``custom`` and
    unknown names start from ``STANDARD``) and, since per-site protocols, its numbers."""
    base = PRESETS.get(name, STANDARD)
    return protocol_from(base, numbers, name=name) if numbers else base


def protocol_numbers(protocol: Protocol) -> dict[str, int | float]:
    """The protocol's numbers under ``protocol_from``'s keys (durations in their
    unit, whole values as ints): ``protocol_from(base, protocol_numbers(p))``
    rebuilds ``p``'s numbers."""
    numbers: dict[str, int | float] = {}
    for key, (field, unit) in PROTOCOL_KEYS.items():
        value = getattr(protocol, field)
        numbers[key] = value if unit is None else _plain(value, unit)
    return numbers


class Relaxed(StrEnum):
    """Names of the preferences a plan could not honour, in the order they are dropped
    (docs/domain.md, "Preferences and how they are relaxed": the weekdays give way
    first, keeping the time window; then the time window, keeping the weekdays)."""

    weekdays = "weekdays"
    time_of_day = "time_of_day"


@dataclass(frozen=True)
class Preferences:
    """A patient's weekdays and times (docs/domain.md, "Preferences and how they are relaxed").

    Read in ``timezone`` when given, else in the site's zone. They apply to dosing
    sessions: a dose falls on one of ``weekdays``, starts at or after ``earliest``
    and ends at or before ``latest`` (on the same local date), in that zone's wall
    time. An integration keeps only the time window. None means no preference; an
    empty ``weekdays`` set can never be honoured. Raises ``ValueError`` for an
    unknown weekday or time zone.
    """

    weekdays: frozenset[Weekday] | None = None
    earliest: time | None = None
    latest: time | None = None
    timezone: str | None = None

    def __post_init__(self) -> None:
        if self.weekdays is not None and not self.weekdays <= set(WEEKDAYS):
            raise ValueError(f"unknown weekdays in {sorted(self.weekdays)}")
        for bound in (self.earliest, self.latest):
            if bound is not None and bound.tzinfo is not None:
                raise ValueError("preferred times are local wall times, without tzinfo")
        if self.timezone is not None:
            _zone(self.timezone)

    @classmethod
    def stored(cls, raw: Mapping[str, Any] | None) -> Preferences:
        """Preferences as an intake gave them and scheduling stores them (JSON: weekday
        names, ``HH:MM`` times, a zone name); missing or empty ones are no preference."""
        if not raw:
            return cls()
        weekdays = raw.get("weekdays")
        return cls(
            weekdays=frozenset(weekdays) if weekdays else None,
            earliest=time.fromisoformat(raw["earliest"]) if raw.get("earliest") else None,
            latest=time.fromisoformat(raw["latest"]) if raw.get("latest") else None,
            timezone=raw.get("timezone") or None,
        )

    def given(self) -> tuple[str, ...]:
        """The preferences stated, in the order they would be relaxed."""
        named: list[str] = []
        if self.weekdays is not None:
            named.append(Relaxed.weekdays.value)
        if self.earliest is not None or self.latest is not None:
            named.append(Relaxed.time_of_day.value)
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
