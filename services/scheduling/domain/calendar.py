"""An immutable index of busy intervals per resource, answering "is it free?" by bisection.

Intervals are half-open ([start, end)): a session may start the instant another
ends. Each resource's intervals are sorted and merged, so that both their starts
and their ends are sorted and one ``bisect`` finds the only candidate conflict.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from services.scheduling.domain.model import Busy, PlannedSession

Interval = tuple[datetime, datetime]


def utc(moment: datetime) -> datetime:
    """The same instant in UTC; one shared tzinfo keeps comparisons cheap."""
    if moment.tzinfo is UTC:
        return moment
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: times must be aware")
    return moment.astimezone(UTC)


def _merged(intervals: Iterable[Interval]) -> tuple[tuple[datetime, ...], tuple[datetime, ...]]:
    """Sorted, disjoint (starts, ends); overlapping or touching intervals become one."""
    starts: list[datetime] = []
    ends: list[datetime] = []
    for start, end in sorted((utc(s), utc(e)) for s, e in intervals):
        if end < start:
            raise ValueError(f"interval ends before it starts: {start} > {end}")
        if end == start:
            continue  # an empty interval blocks nothing
        if ends and start <= ends[-1]:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return tuple(starts), tuple(ends)


@dataclass(frozen=True)
class Timeline:
    """The busy time of one resource (or one patient): sorted, disjoint intervals."""

    starts: tuple[datetime, ...] = ()
    ends: tuple[datetime, ...] = ()

    @classmethod
    def of(cls, intervals: Iterable[Interval]) -> Timeline:
        starts, ends = _merged(intervals)
        return cls(starts, ends)

    def conflict_end(self, start: datetime, end: datetime) -> datetime | None:
        """None when [start, end) is free; else the end of the first busy interval in it.

        No session of any length can start inside [start, that end) without the
        same conflict, so a search may jump straight there.
        """
        i = bisect_right(self.ends, start)  # the first interval ending after start
        if i < len(self.starts) and self.starts[i] < end:
            return self.ends[i]
        return None

    def is_free(self, start: datetime, end: datetime) -> bool:
        return self.conflict_end(start, end) is None

    def with_intervals(self, intervals: Iterable[Interval]) -> Timeline:
        return Timeline.of((*zip(self.starts, self.ends, strict=True), *intervals))

    def __len__(self) -> int:
        return len(self.starts)


_EMPTY = Timeline()


class BusySpans:
    """Disjoint, sorted half-open spans [low, high) in which no session of some length
    can start on any resource of some set: every one of them is busy somewhere in it."""

    def __init__(self) -> None:
        self.lows: list[datetime] = []
        self.highs: list[datetime] = []

    def end_of(self, moment: datetime) -> datetime | None:
        """The end of the span holding ``moment``; None when no span does."""
        i = bisect_right(self.lows, moment) - 1
        if i >= 0 and moment < self.highs[i]:
            return self.highs[i]
        return None

    def add(self, low: datetime, high: datetime) -> None:
        """Note [low, high), merged with the spans it overlaps or touches."""
        if low >= high:
            return
        i = bisect_left(self.highs, low)  # the first span ending at or after low
        j = bisect_right(self.lows, high)  # past the last span starting at or before high
        if i < j:
            low, high = min(low, self.lows[i]), max(high, self.highs[j - 1])
        self.lows[i:j] = [low]
        self.highs[i:j] = [high]

    def __len__(self) -> int:
        return len(self.lows)


class Known:
    """What searches learned about one site's calendar that stays true while bookings
    are only added, kept across searches: the site-local days with no free room for a
    dose, and the spans in which every resource of a kind is busy for a session's length.

    Each fact is kept under the key of what it depends on besides the bookings (the
    site, the resources, the session's length, the slot step). Whoever holds the
    calendar must call ``forget`` when a booking is removed or moved
    (services/scheduling/repository/calendars.py does), or freed time stays skipped.
    """

    def __init__(self) -> None:
        self._days: dict[Hashable, set[date]] = {}
        self._spans: dict[Hashable, BusySpans] = {}

    def full_days(self, key: Hashable) -> set[date]:
        """The (mutable) set of full days under ``key``."""
        return self._days.setdefault(key, set())

    def busy_spans(self, key: Hashable) -> BusySpans:
        """The (mutable) busy spans under ``key``."""
        return self._spans.setdefault(key, BusySpans())

    def forget(self) -> None:
        self._days.clear()
        self._spans.clear()


@dataclass(frozen=True)
class Calendar:
    """Busy time per resource id ("room-1", "therapist-2", ...); unknown ids are free.

    ``known``, when given, holds what searches learned about this calendar (or about
    an earlier one that held no more than it); a calendar built from it by
    ``with_booked`` starts without it."""

    timelines: Mapping[str, Timeline] = field(default_factory=dict)
    known: Known | None = field(default=None, compare=False)

    @classmethod
    def from_busy(cls, busy: Iterable[Busy]) -> Calendar:
        grouped: dict[str, list[Interval]] = {}
        for booking in busy:
            grouped.setdefault(booking.resource, []).append((booking.start, booking.end))
        return cls({resource: Timeline.of(spans) for resource, spans in grouped.items()})

    def timeline(self, resource: str) -> Timeline:
        return self.timelines.get(resource, _EMPTY)

    def is_free(self, resource: str, start: datetime, end: datetime) -> bool:
        """True when nothing booked on ``resource`` overlaps [start, end)."""
        return self.timeline(resource).is_free(utc(start), utc(end))

    def with_booked(self, sessions: Iterable[PlannedSession | Busy]) -> Calendar:
        """A new calendar that also holds ``sessions``; this one is left unchanged."""
        added: dict[str, list[Interval]] = {}
        for session in sessions:
            added.setdefault(session.resource, []).append((session.start, session.end))
        timelines = dict(self.timelines)
        for resource, spans in added.items():
            timelines[resource] = self.timeline(resource).with_intervals(spans)
        return Calendar(timelines)

    def __len__(self) -> int:
        """The number of (merged) busy intervals over all resources."""
        return sum(len(timeline) for timeline in self.timelines.values())
