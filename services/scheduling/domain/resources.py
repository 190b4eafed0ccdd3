"""Which room or therapist is free for a slot, cached for the length of one search.

Availability depends on the calendar alone, not on the patient, so the answers
hold across every first day and preference level that a search tries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from services.scheduling.domain.calendar import Calendar
from services.scheduling.domain.grid import Slot

_NEVER = datetime.min.replace(tzinfo=UTC)


class ResourcePool:
    """Resources of one kind, for sessions of one length; answers cached by slot start."""

    def __init__(self, ids: Sequence[str], calendar: Calendar) -> None:
        self._timelines = {rid: calendar.timeline(rid) for rid in ids}
        self._first: dict[datetime, tuple[str | None, datetime | None]] = {}
        self._free: dict[tuple[str, datetime], bool] = {}
        # The last span found fully booked for this length: no session may start in it.
        self._blocked: tuple[datetime, datetime] = (_NEVER, _NEVER)

    def first_free(self, slot: Slot) -> tuple[str | None, datetime | None]:
        """The first free resource, or None and the earliest start that could do better."""
        if self._blocked[0] <= slot.start < self._blocked[1]:
            return None, self._blocked[1]
        found = self._first.get(slot.start)
        if found is None:
            found = self._first[slot.start] = self._scan(slot)
            if found[1] is not None:  # every resource is busy from here until then
                self._blocked = (slot.start, found[1])
        return found

    def _scan(self, slot: Slot) -> tuple[str | None, datetime | None]:
        soonest: datetime | None = None
        for rid, timeline in self._timelines.items():
            blocked = timeline.conflict_end(slot.start, slot.end)
            if blocked is None:
                return rid, None
            if soonest is None or blocked < soonest:
                soonest = blocked
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
