"""Which room or therapist is free for a slot, cached for the length of one search.

Availability depends on the calendar alone, not on the patient, so the answers
hold across every first day and preference level that a search tries.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime, timedelta

from services.scheduling.domain.calendar import BusySpans, Calendar
from services.scheduling.domain.grid import Slot


class ResourcePool:
    """Resources of one kind, for sessions of ``minutes``; answers cached by slot start.

    A span found with every resource busy stays so while bookings are only added: it
    is noted in the calendar's ``known`` (when it has one), for later searches too.
    """

    def __init__(self, ids: Sequence[str], calendar: Calendar, minutes: int) -> None:
        self._timelines = {rid: calendar.timeline(rid) for rid in ids}
        # Per resource its busy starts and ends, plus its count, for ``_scan``'s inner loop
        # (Timeline.conflict_end, inlined: a scan asks every resource of a busy site).
        self._spans = [(rid, t.starts, t.ends, len(t)) for rid, t in self._timelines.items()]
        self._first: dict[datetime, tuple[str | None, datetime | None]] = {}
        self._free: dict[tuple[str, datetime], bool] = {}
        # The spans found fully booked for this length: no session may start in them.
        known = calendar.known
        key = ("busy", tuple(ids), minutes)
        self._busy = BusySpans() if known is None else known.busy_spans(key)
        self._length = timedelta(minutes=minutes)

    def first_free(self, slot: Slot) -> tuple[str | None, datetime | None]:
        """The first free resource, or None and the earliest start that could do better.

        ``slot`` lasts the pool's ``minutes``. When every resource is busy at the start,
        each is busy somewhere in [start, soonest), so no session of that length can
        start in that span either (see ``_scan``)."""
        if slot.end - slot.start != self._length:
            raise ValueError(f"a slot of {slot.end - slot.start}, not {self._length}")
        blocked_until = self._busy.end_of(slot.start)
        if blocked_until is not None:
            return None, blocked_until
        found = self._first.get(slot.start)
        if found is None:
            found = self._first[slot.start] = self._scan(slot)
            if found[1] is not None:  # every resource is busy from here until then
                self._busy.add(slot.start, found[1])
        return found

    def _scan(self, slot: Slot) -> tuple[str | None, datetime | None]:
        start, end = slot.start, slot.end
        soonest: datetime | None = None
        for rid, starts, ends, count in self._spans:
            i = bisect_right(ends, start)  # the first busy interval ending after start
            if i == count or starts[i] >= end:
                return rid, None
            if soonest is None or ends[i] < soonest:
                soonest = ends[i]
        return None, soonest

    def is_free(self, rid: str, slot: Slot) -> bool:
        timeline = self._timelines.get(rid)
        if timeline is None:
            return False
        key = (rid, slot.start)
        found = self._free.get(key)
        if found is None:
            found = self._free[key] = timeline.is_free(slot.start, slot.end)
        return found
