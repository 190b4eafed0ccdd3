"""The greedy placement behind ``slots``: earliest dose, then its integration, per call.

One ``Searcher`` serves one call of ``find_series`` or ``find_single``: it caches
the site's slot grid and, per slot start, which room or therapist is free, so
that trying several first days and preference levels re-reads nothing. A series
never collides with itself: its sessions all belong to one patient and no two
sessions of a patient may overlap, so no resource is taken twice either.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time
from functools import partial

from services.scheduling.domain.calendar import Calendar, Interval, Timeline, utc
from services.scheduling.domain.grid import ONE_DAY, DayFilter, Grid, Slot
from services.scheduling.domain.model import (
    ROLLING_PERIOD,
    Kind,
    PlannedSession,
    Protocol,
    Site,
)
from services.scheduling.domain.resources import ResourcePool

# A local date and, lazily, its dose slots with a free room.
DayCandidates = tuple[date, Iterator[tuple[Slot, str]]]


def respects_spacing(start: datetime, others: Iterable[datetime], protocol: Protocol) -> bool:
    """A dose at ``start`` keeps ``min_gap`` from every other dose and the rolling cap.

    docs/domain.md ("Who is scheduled, and when": "Spacing counts every dose the
    patient has"): at least ``min_gap`` (standard 48 h, retreat 24 h) between any
    two dose starts, and no rolling 7 days (``ROLLING_PERIOD``, half-open: doses
    exactly 7 days apart are in different windows) holds more than
    ``max_doses_per_7_days`` starts (standard 2, retreat 4). ``others`` are
    assumed to keep the rules among themselves; only windows holding ``start``
    are checked.
    """
    others = list(others)
    if any(abs(start - other) < protocol.min_gap for other in others):
        return False
    near = sorted([o for o in others if abs(o - start) < ROLLING_PERIOD] + [start])
    cap = protocol.max_doses_per_7_days
    return all(
        near[i + cap] - near[i] >= ROLLING_PERIOD
        for i in range(len(near) - cap)
        if near[i] <= start <= near[i + cap]
    )


class Spacing:
    """The patient's existing doses, sorted, so that each candidate start reads only
    the few within reach (``min_gap`` or 7 days, whichever is longer)."""

    def __init__(self, protocol: Protocol, doses: Iterable[datetime]) -> None:
        self.protocol = protocol
        self.doses = tuple(sorted(utc(d) for d in doses))
        self._reach = max(protocol.min_gap, ROLLING_PERIOD)

    def __bool__(self) -> bool:
        return bool(self.doses)

    def allows(self, start: datetime, planned: Sequence[datetime] = ()) -> bool:
        """``start`` keeps the gap and the cap with the existing doses and ``planned``."""
        low, high = start - self._reach, start + self._reach
        near = self.doses[bisect_right(self.doses, low) : bisect_left(self.doses, high)]
        near += tuple(p for p in planned if low < p < high)
        return respects_spacing(start, near, self.protocol)


class Searcher:
    """Greedy placement of doses and integrations for one patient at one site."""

    def __init__(
        self,
        site: Site,
        calendar: Calendar,
        protocol: Protocol,
        now: datetime,
        patient_busy: Iterable[Interval],
        patient_doses: Iterable[datetime] = (),
    ) -> None:
        self.protocol = protocol
        self.spacing = Spacing(protocol, patient_doses)
        self.grid = Grid(site, protocol.slot_step_minutes)
        self.rooms = ResourcePool(site.room_ids(), calendar)
        self.therapists = ResourcePool(site.therapist_ids(), calendar)
        self.patient = Timeline.of(patient_busy)
        self.earliest = (now + protocol.min_lead).astimezone(UTC)

    def _patient_free(self, slot: Slot, placed: Sequence[PlannedSession]) -> bool:
        if self.patient.conflict_end(slot.start, slot.end) is not None:
            return False
        return all(s.end <= slot.start or slot.end <= s.start for s in placed)

    def doses(
        self,
        level: DayFilter,
        days: tuple[date, date],
        not_before: datetime,
        until: datetime,
        placed: Sequence[PlannedSession],
        accept: Callable[[datetime], bool] | None = None,
    ) -> Iterator[DayCandidates]:
        """Per local date in ``days`` (inclusive), earliest first, the dose slots with a
        free room that start in [max(not_before, earliest), until)."""
        not_before = max(not_before, self.earliest)
        day = max(days[0], self.grid.local_date(not_before))
        last = min(days[1], self.grid.local_date(until))
        while day <= last:
            if level.allows_day(day):
                yield day, self._dose_slots(day, level, not_before, until, placed, accept)
            day += ONE_DAY

    def _dose_slots(
        self,
        day: date,
        level: DayFilter,
        not_before: datetime,
        until: datetime,
        placed: Sequence[PlannedSession],
        accept: Callable[[datetime], bool] | None,
    ) -> Iterator[tuple[Slot, str]]:
        skip_until = not_before
        # Every start on local ``day`` is before this (UTC offsets lie within +-14 h).
        day_bound = datetime.combine(day + 2 * ONE_DAY, time(0), tzinfo=UTC)
        for slot in self.grid.slots(day, self.protocol.dosing_minutes):
            if slot.start < skip_until:
                continue
            if slot.start >= until:
                return
            if not level.allows_slot(slot) or not self._patient_free(slot, placed):
                continue
            if accept is not None and not accept(slot.start):
                continue
            room, soonest = self.rooms.first_free(slot)
            if room is None:
                skip_until = soonest or skip_until  # every room is busy until then
                if skip_until >= day_bound:
                    return
                continue
            yield slot, room

    def _integration_slots(
        self, dose_day: date, level: DayFilter, placed: Sequence[PlannedSession]
    ) -> Iterator[Slot]:
        """Integration slots 1..3 local days after the dose's date, patient free, in order.

        docs/domain.md ("People and places"): preferences apply to dosing sessions;
        each integration follows its dose, on any open day ``integration_min_days``
        to ``integration_max_days`` (site-local dates) later, in the patient's time
        window while the level keeps it. ``level`` is that integration filter: it
        never holds weekdays.
        """
        protocol = self.protocol
        for offset in range(protocol.integration_min_days, protocol.integration_max_days + 1):
            day = dose_day + offset * ONE_DAY
            for slot in self.grid.slots(day, protocol.integration_minutes):
                if (
                    slot.start >= self.earliest
                    and level.allows_slot(slot)
                    and self._patient_free(slot, placed)
                ):
                    yield slot

    def integration(
        self,
        dose_day: date,
        level: DayFilter,
        placed: Sequence[PlannedSession],
        therapist: str | None,
    ) -> tuple[Slot, str] | None:
        """The earliest slot with ``therapist`` free in the 1..3 days; failing that,
        the earliest slot with any therapist free (continuity of care beats a few hours)."""
        if therapist is not None:
            for slot in self._integration_slots(dose_day, level, placed):
                if self.therapists.is_free(therapist, slot):
                    return slot, therapist
        for slot in self._integration_slots(dose_day, level, placed):
            anyone, _ = self.therapists.first_free(slot)
            if anyone is not None:
                return slot, anyone
        return None

    def pair(
        self,
        candidates: Iterable[DayCandidates],
        talk: DayFilter,
        placed: Sequence[PlannedSession],
        therapist: str | None,
        sequence: int,
        kind: Kind,
    ) -> tuple[PlannedSession, PlannedSession] | None:
        """The earliest dose candidate whose integration session (filtered by ``talk``)
        also fits."""
        for day, slots in candidates:
            for slot, room in slots:
                dose = PlannedSession(kind, sequence, slot.start, slot.end, room)
                found = self.integration(day, talk, [*placed, dose], therapist)
                if found is None:
                    # A dose stays within its local day and its integration lies on
                    # later days: no other dose of this day can have one either.
                    break
                islot, who = found
                return dose, PlannedSession(Kind.integration, sequence, islot.start, islot.end, who)
        return None

    def series_from(
        self, first_day: date, level: DayFilter, talk: DayFilter, first_until: datetime
    ) -> list[PlannedSession] | None:
        """The greedy series whose first dose is on local ``first_day``, or None; doses
        filtered by ``level``, integrations by ``talk``."""
        protocol = self.protocol
        placed: list[PlannedSession] = []
        starts: list[datetime] = []
        therapist: str | None = None
        for sequence in range(1, protocol.doses + 1):
            if not starts:
                not_before, until = self.earliest, first_until
                days = (first_day, first_day)
            else:
                not_before = starts[-1] + protocol.min_gap
                if len(starts) >= protocol.max_doses_per_7_days:
                    capped = starts[-protocol.max_doses_per_7_days] + ROLLING_PERIOD
                    not_before = max(not_before, capped)
                until = starts[0] + protocol.window
                days = (self.grid.local_date(not_before), self.grid.local_date(until))
            accept = None
            if self.spacing:  # the series' own doses are spaced by not_before alone
                accept = partial(self.spacing.allows, planned=tuple(starts))
            candidates = self.doses(level, days, not_before, until, placed, accept)
            found = self.pair(candidates, talk, placed, therapist, sequence, Kind.dosing)
            if found is None:
                return None
            placed.extend(found)
            starts.append(found[0].start)
            therapist = therapist or found[1].resource
        return placed
