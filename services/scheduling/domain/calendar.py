"""An immutable index of busy intervals per resource, answering "is it free?" by bisection.

Intervals are half-open ([start, end)): a session may start the instant another
ends. Each resource's intervals are sorted and merged, so that both their starts
and their ends are sorted and one ``bisect`` finds the only candidate conflict.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

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


@dataclass(frozen=True)
class Calendar:
    """Busy time per resource id ("room-1", "therapist-2", ...); unknown ids are free."""

    timelines: Mapping[str, Timeline] = field(default_factory=dict)

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
