"""How full a site is: booked time over open time, per kind of resource, in the site's
own calendar (opening hours are wall-clock times in its time zone, DST included)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.scheduling.domain.model import WEEKDAYS

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class Utilisation:
    booked_s: float
    open_s: float  # capacity: open time x number of resources

    @property
    def fraction(self) -> float | None:
        return min(self.booked_s / self.open_s, 1.0) if self.open_s > 0 else None


def local_day(day: date, tz: ZoneInfo) -> Interval:
    return datetime.combine(day, time(0), tz), datetime.combine(
        day + timedelta(days=1), time(0), tz
    )


def local_week(day: date, tz: ZoneInfo) -> Interval:
    monday = day - timedelta(days=day.weekday())
    return datetime.combine(monday, time(0), tz), datetime.combine(
        monday + timedelta(days=7), time(0), tz
    )


def open_intervals(
    hours: Mapping[str, tuple[time, time]], tz: ZoneInfo, window: Interval
) -> list[Interval]:
    """The site's opening hours that fall inside ``window``."""
    start, end = window
    out: list[Interval] = []
    day = start.astimezone(tz).date() - timedelta(days=1)
    while datetime.combine(day, time(0), tz) < end:
        span = hours.get(WEEKDAYS[day.weekday()])
        if span is not None:
            o = max(datetime.combine(day, span[0], tz), start)
            c = min(datetime.combine(day, span[1], tz), end)
            if o < c:
                out.append((o, c))
        day += timedelta(days=1)
    return out


def utilisation(
    open_: Iterable[Interval], booked: Iterable[Interval], resources: int
) -> Utilisation:
    """Booked time inside opening hours over open time x ``resources``.

    Each booking is matched only against the opening intervals it can touch (found by
    bisection over their start times), so a busy week costs O(bookings x log days).
    """
    opened = _merged(open_)
    starts = [o for o, _ in opened]
    total_open = sum(c - o for o, c in opened) * resources
    used = 0.0
    for b0, b1 in booked:
        s, e = b0.timestamp(), b1.timestamp()
        i = max(bisect_right(starts, s) - 1, 0)
        while i < len(opened) and opened[i][0] < e:
            lo, hi = max(s, opened[i][0]), min(e, opened[i][1])
            if lo < hi:
                used += hi - lo
            i += 1
    return Utilisation(booked_s=used, open_s=total_open)


def _merged(intervals: Iterable[Interval]) -> list[tuple[float, float]]:
    """The intervals as sorted, disjoint (start, end) epoch seconds."""
    out: list[tuple[float, float]] = []
    for o, c in sorted((o.timestamp(), c.timestamp()) for o, c in intervals):
        if o >= c:
            continue
        if out and o <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], c))
        else:
            out.append((o, c))
    return out
