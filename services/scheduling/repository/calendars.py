"""A per-process cache of each site's bookings (live or completed), refreshed with what changed.

It lives in the repository because it reads the appointments table (by change number);
services/scheduling/app.py makes one per process and hands it to ``Deps``, which knows
it as ``deps.Calendars``.

Loading a busy site's whole calendar for every plan costs more as the site fills;
instead each process keeps the bookings it has seen and asks PostgreSQL only for
appointments whose change number is above the highest it has seen. Correctness
never depends on this cache: the exclusion constraints refuse any overlap, and a
lost race drops the site's entry (the next plan reloads it). A change committed
out of order can be missed until the entry's age limit forces a full reload; that
only makes a freed slot look busy for a while.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from services.scheduling.domain.calendar import Calendar, Known, Timeline
from services.scheduling.repository.appointments import OCCUPYING
from services.scheduling.rows import BookingRow
from shared.db import Conn

_BOOKING = "appointment_id, resource, start_at, end_at, status, change_seq"


async def occupied_bookings(conn: Conn, site_id: str, now: datetime) -> list[BookingRow]:
    """The site's bookings that take their resource's time (lifecycle.OCCUPYING)."""
    rows = await conn.fetch(
        f"SELECT {_BOOKING} FROM appointments WHERE site_id = $1 "  # noqa: S608
        "AND status = ANY($2::text[]) AND end_at > $3",
        site_id,
        list(OCCUPYING),
        now,
    )
    return [BookingRow(*r) for r in rows]


async def booking_changes(conn: Conn, site_id: str, after: int) -> list[BookingRow]:
    """Appointments of the site inserted or updated since change number ``after``."""
    rows = await conn.fetch(
        f"SELECT {_BOOKING} FROM appointments WHERE site_id = $1 AND change_seq > $2",  # noqa: S608
        site_id,
        after,
    )
    return [BookingRow(*r) for r in rows]


async def change_high_water(conn: Conn) -> int:
    """The highest change number handed out so far (0 before the first)."""
    return int(
        await conn.fetchval(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM appointment_changes"
        )
    )


@dataclass
class _Entry:
    bookings: dict[str, dict[str, tuple[datetime, datetime]]] = field(default_factory=dict)
    timelines: dict[str, Timeline] = field(default_factory=dict)
    known: Known = field(default_factory=Known)  # what searches learned; see _apply
    high_water: int = 0
    loaded_at: float = 0.0


class CalendarCache:
    def __init__(self, max_age_s: float = 60.0) -> None:
        self.max_age_s = max_age_s
        self._sites: dict[str, _Entry] = {}

    def invalidate(self, site_id: str) -> None:
        self._sites.pop(site_id, None)

    async def calendar(self, conn: Conn, site_id: str, now: datetime) -> Calendar:
        entry = self._sites.get(site_id)
        if entry is None or time.monotonic() - entry.loaded_at > self.max_age_s:
            entry = _Entry(loaded_at=time.monotonic())
            # read first: whatever changes after this is picked up as a delta next time
            high_water = await change_high_water(conn)
            rows = await occupied_bookings(conn, site_id, now)
            self._sites[site_id] = entry
            changed = self._apply(entry, rows)
            entry.high_water = max(entry.high_water, high_water)
        else:
            rows = await booking_changes(conn, site_id, entry.high_water)
            changed = self._apply(entry, rows)
        for resource in changed:
            spans = entry.bookings.get(resource, {})
            entry.timelines[resource] = Timeline.of(spans.values())
        return Calendar(dict(entry.timelines), known=entry.known)

    @staticmethod
    def _apply(entry: _Entry, rows: list[BookingRow]) -> set[str]:
        changed: set[str] = set()
        for r in rows:
            booked = entry.bookings.setdefault(r.resource, {})
            before = booked.get(r.appointment_id)
            if r.status in OCCUPYING:
                booked[r.appointment_id] = (r.start, r.end)
            else:
                booked.pop(r.appointment_id, None)
            if before is not None and booked.get(r.appointment_id) != before:
                # Time was freed (a booking ended or moved): what searches learned
                # from the fuller calendar may no longer hold (domain/calendar.py Known).
                entry.known.forget()
            entry.high_water = max(entry.high_water, r.change_seq)
            changed.add(r.resource)
        return changed
