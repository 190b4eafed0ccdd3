"""Candidate start times of one site: local wall times on the slot grid, DST-safe.

docs/domain.md ("Daylight saving time"): a time change never puts a session outside
opening hours. Starts are built as local wall times (on the
``slot_step_minutes`` grid from local midnight, at or after opening), converted
to UTC with ``zoneinfo``; a wall time that does not exist (the spring-forward
gap) is skipped and an ambiguous one (the fall-back hour) is taken at its first
occurrence (``fold=0``). The end is the start plus the real duration, and its
local wall time must still be on the same local date and at or before closing.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from services.scheduling.domain.model import WEEKDAYS, Preferences, Site

ONE_DAY = timedelta(days=1)


class Slot(NamedTuple):
    """One candidate session: UTC instants and the local wall times they show."""

    start: datetime
    end: datetime
    local_start: time
    local_end: time


@dataclass(frozen=True)
class DayFilter:
    """Preferences in the form the search tests them (weekday numbers, Monday 0).

    ``zone`` is the zone they are read in when it is not the site's (docs/domain.md,
    "People and places": "read in ``preferences.timezone`` when given, else in the
    site's zone"). In the site's zone a slot's local times are already known and
    the weekday is its site-local date's; in another zone each slot is converted
    (its weekday there may differ), and the answer is kept per slot.
    A time window holds a session that starts at or after ``earliest`` and ends at
    or before ``latest`` on the same local date.
    """

    weekdays: frozenset[int] | None
    earliest: time | None
    latest: time | None
    zone: ZoneInfo | None = None
    _seen: dict[tuple[datetime, datetime], bool] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, prefs: Preferences, site_timezone: str | None = None) -> DayFilter:
        """The filter of ``prefs`` at a site in ``site_timezone``; ``NO_FILTER`` when
        nothing is preferred, whatever the zone."""
        days = None if prefs.weekdays is None else frozenset(map(WEEKDAYS.index, prefs.weekdays))
        if days is None and prefs.earliest is None and prefs.latest is None:
            return NO_FILTER
        zone = None
        if prefs.timezone is not None and prefs.timezone != site_timezone:
            zone = ZoneInfo(prefs.timezone)
        return cls(days, prefs.earliest, prefs.latest, zone)

    @property
    def is_open(self) -> bool:
        """True when the filter lets every slot through."""
        return self.weekdays is None and self.earliest is None and self.latest is None

    def allows_day(self, day: date) -> bool:
        """False when no slot of site-local ``day`` can pass (the weekday, in the site's
        zone); in another zone a site day can be either of two weekdays: per slot."""
        if self.weekdays is None or self.zone is not None:
            return True
        return day.weekday() in self.weekdays

    def allows_slot(self, slot: Slot) -> bool:
        """The slot keeps the time window (and, in another zone, the weekday); in the
        site's zone the weekday is ``allows_day``'s."""
        if self.zone is None:
            if self.earliest is not None and slot.local_start < self.earliest:
                return False
            return self.latest is None or slot.local_end <= self.latest
        key = (slot.start, slot.end)  # one filter serves doses and integrations
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = self._allows_elsewhere(slot, self.zone)
        return found

    def _allows_elsewhere(self, slot: Slot, zone: ZoneInfo) -> bool:
        start = slot.start.astimezone(zone)
        if self.weekdays is not None and start.weekday() not in self.weekdays:
            return False
        if self.earliest is not None and start.time() < self.earliest:
            return False
        if self.latest is None:
            return True
        end = slot.end.astimezone(zone)
        return end.date() == start.date() and end.time() <= self.latest


NO_FILTER = DayFilter(None, None, None)


class _DaySlots:
    """The slots of one local date and duration, built only as far as a search reads."""

    def __init__(
        self, zone: ZoneInfo, day: date, hours: tuple[time, time] | None, minutes: int, step: int
    ) -> None:
        self.found: list[Slot] = []
        self._starts: list[datetime] | None = None
        self._zone, self._day, self._step = zone, day, step
        self._duration = timedelta(minutes=minutes)
        self._next: int | None = None
        if hours is None:
            return
        opens, self._closes = hours
        open_s = opens.hour * 3600 + opens.minute * 60 + opens.second + (opens.microsecond > 0)
        self._next = -(-open_s // step) * step  # the first grid time at/after opening
        # A guess at each start, exact unless the UTC offset changes during the day;
        # every guess is checked by converting it back, so a change costs only speed.
        offset = datetime.combine(day, opens, tzinfo=zone).utcoffset() or timedelta(0)
        self._base = datetime.combine(day, time(0), tzinfo=UTC) - offset

    def __iter__(self) -> Iterator[Slot]:
        i = 0
        while i < len(self.found) or self._extend():
            yield self.found[i]
            i += 1

    def complete(self) -> tuple[list[Slot], list[datetime]]:
        """Every slot of the day, built to the end, and their starts (sorted: wall
        times rise through the day and a repeated hour is taken once), for bisection."""
        if self._starts is None:
            while self._extend():
                pass
            self._starts = [slot.start for slot in self.found]
        return self.found, self._starts

    def _extend(self) -> bool:
        """Build the next slot that fits; False when the day has no more."""
        while self._next is not None and self._next < 24 * 3600:
            seconds = self._next
            self._next += self._step
            wall = time(seconds // 3600, seconds // 60 % 60, seconds % 60)
            if wall >= self._closes:
                break
            start = self._to_utc(self._base + timedelta(seconds=seconds), wall)
            if start is None:
                continue  # the wall time falls in the spring-forward gap
            end = start + self._duration
            local_end = end.astimezone(self._zone)
            if local_end.date() == self._day and local_end.time() <= self._closes:
                self.found.append(Slot(start, end, wall, local_end.time()))
                return True
        self._next = None
        return False

    def _to_utc(self, guess: datetime, wall: time) -> datetime | None:
        """The first instant (fold=0) showing ``wall`` on the day; None in a gap."""
        back = guess.astimezone(self._zone)
        if back.fold == 0 and back.time() == wall and back.date() == self._day:
            return guess
        start = datetime.combine(self._day, wall, tzinfo=self._zone).astimezone(UTC)  # fold=0
        back = start.astimezone(self._zone)
        return start if back.time() == wall and back.date() == self._day else None


class Grid:
    """The site's candidate slots per local date and duration, cached for one search."""

    def __init__(self, site: Site, step_minutes: int) -> None:
        self.zone = site.zone
        self._step = step_minutes * 60
        self._hours = {WEEKDAYS.index(day): (opens, closes) for day, opens, closes in site.hours}
        self._cache: dict[tuple[date, int], _DaySlots] = {}

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def is_open(self, day: date) -> bool:
        return day.weekday() in self._hours

    def slots(self, day: date, minutes: int) -> Iterator[Slot]:
        """Every session of ``minutes`` that fits the opening hours of local ``day``, in order."""
        return iter(self._day(day, minutes))

    def indexed(self, day: date, minutes: int) -> tuple[list[Slot], list[datetime]]:
        """``slots`` as a list, with the list of their starts: a search that learns no
        session can start before some moment bisects to it instead of stepping there."""
        return self._day(day, minutes).complete()

    def _day(self, day: date, minutes: int) -> _DaySlots:
        key = (day, minutes)
        found = self._cache.get(key)
        if found is None:
            hours = self._hours.get(day.weekday())
            found = self._cache[key] = _day_slots(self.zone, day, hours, minutes, self._step)
        return found


@functools.lru_cache(maxsize=8192)
def _day_slots(
    zone: ZoneInfo, day: date, hours: tuple[time, time] | None, minutes: int, step: int
) -> _DaySlots:
    """One site-day's slots, shared by every search (a day's slots depend on nothing
    else, and are only ever appended to): a worker plans many patients at one site, and
    building the same days again was a tenth of its time. Bounded, least recent out."""
    return _DaySlots(zone, day, hours, minutes, step)
